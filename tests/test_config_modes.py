"""A folder action's ``mode`` and ``group`` keys: read, checked, and refused with the fix."""

from __future__ import annotations

import grp
import os
from pathlib import Path

import pytest

from faxd.config import FolderSpec, load_config
from faxd.errors import ConfigError

PASSWORD = "Ex4mple-faxage-pw"


def config_with(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "faxd.toml"
    path.write_text(
        '[faxage]\nusername = "acme"\ncompany = "12345"\n'
        '[[routes]]\nname = "default"\n'
        f'actions = [{{ type = "folder", path = "{tmp_path}/in/{{recvid}}.{{ext}}"{extra} }}]\n'
    )
    path.chmod(0o600)
    return path


def folder(tmp_path: Path, extra: str) -> FolderSpec:
    config = load_config(config_with(tmp_path, extra), env={"FAXD_FAXAGE_PASSWORD": PASSWORD})
    spec = config.routes[0].actions[0]
    assert isinstance(spec, FolderSpec)
    return spec


def refusal(tmp_path: Path, extra: str) -> str:
    with pytest.raises(ConfigError) as caught:
        folder(tmp_path, extra)
    (problem,) = caught.value.problems
    return problem


def test_defaults_are_private() -> None:
    spec = FolderSpec("/srv/fax/in/{recvid}.pdf")
    assert (spec.mode, spec.dir_mode, spec.gid) == (0o640, 0o750, None)


def test_mode_and_group_are_read(tmp_path: Path) -> None:
    name = grp.getgrgid(os.getegid()).gr_name
    spec = folder(tmp_path, f', mode = "0660", group = "{name}"')
    assert (spec.mode, spec.dir_mode, spec.group, spec.gid) == (0o660, 0o770, name, os.getegid())
    assert folder(tmp_path, ', mode = "644"').dir_mode == 0o755


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ('"rw-r-----"', "not a file mode; write it in octal"),
        ('"0980"', "not a file mode"),
        ("640", "must be text in quotes"),
        ('"4640"', "setuid/setgid/sticky"),
        ('"0040"', "does not let the owner (faxd) read"),
        ('"0750"', "makes a fax executable"),
        ('"0646"', "lets every user on the machine change"),
    ],
)
def test_a_bad_mode_is_refused_with_the_fix(tmp_path: Path, value: str, says: str) -> None:
    problem = refusal(tmp_path, f", mode = {value}")
    assert "routes[0].actions[0].mode" in problem and says in problem


def test_an_unknown_group_is_refused_with_the_fix(tmp_path: Path) -> None:
    problem = refusal(tmp_path, ', group = "no-such-group-x9"')
    assert "routes[0].actions[0].group" in problem
    assert "there is no group 'no-such-group-x9'" in problem and "groupadd" in problem
