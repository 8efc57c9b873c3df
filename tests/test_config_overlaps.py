"""Config slips that would cost a fax are refused before the first one arrives (issue 10 #2).

The headline case: ``spool_dir = X`` with a route writing ``X/{recvid}.{ext}``.
The folder action found faxd's own spool file, called it "already delivered",
``delfax`` ran and the spool clean-up deleted the only copy.  Now both
``faxd check-config`` and ``faxd run`` refuse such a config, naming the key.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from faxd.config import load_config
from faxd.config.overlaps import fixed_root
from faxd.errors import ConfigError

EXIT_USAGE = 2
SIM_PASSWORD = "s3cr3t-Pa55word-x9"  # the password the ``sim`` fixture expects


def site_config(
    tmp_path: Path,
    route_path: str,
    *,
    base_url: str = "http://127.0.0.1:9",
    outbound: bool = True,
) -> Path:
    """A config with its state and fax folders under ``tmp_path``; ``route_path`` may use
    ``{root}`` for ``tmp_path``."""
    root = tmp_path
    text = f"""
[faxage]
username = "acme"
company = "12345"
password = "{SIM_PASSWORD}"
base_url = "{base_url}"
timeout = 5

[database]
url = "sqlite:///{root}/state/faxd.db"

[inbound]
spool_dir = "{root}/state/spool"
backoff_base = 1
backoff_max = 2

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "{route_path.replace("{root}", str(root))}" }}]
"""
    if outbound:
        text += f"""
[outbound]
hot_folder = "{root}/fax/outbox"
sent_folder = "{root}/fax/sent"
failed_folder = "{root}/fax/failed"
spool_dir = "{root}/state/outbound"
"""
    config = tmp_path / "faxd.toml"
    config.write_text(text)
    config.chmod(0o600)
    return config


def refusals(config: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(config, env={})
    return caught.value.problems


def faxd(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faxd", *args, "--config", str(config)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_a_route_into_the_spool_is_refused_by_check_config_and_run(
    tmp_path: Path, sim: Any
) -> None:
    """The finding itself: the fax stays on FAXAGE, both commands name the key and the fix."""
    (fax,) = sim.seed_inbound(1, dnis=("3035550101",))
    config = site_config(
        tmp_path, "{root}/state/spool/{recvid}.{ext}", base_url=sim.base_url, outbound=False
    )
    for command in (("check-config",), ("run", "--once")):
        done = faxd(config, *command)
        assert done.returncode == EXIT_USAGE, done.stdout + done.stderr
        assert "routes[0].actions[0].path" in done.stderr
        assert "[inbound] spool_dir" in done.stderr and "the only copy" in done.stderr
    assert not sim.faxes[fax.recvid].deleted
    assert sim.requests == []  # refused before anything was asked of FAXAGE


@pytest.mark.parametrize(
    ("route_path", "protected"),
    [
        ("{root}/state/spool/{recvid}.{ext}", "[inbound] spool_dir"),  # equal
        ("{root}/state/spool/in/{recvid}.{ext}", "[inbound] spool_dir"),  # inside
        ("{root}/state/{route}/{recvid}.{ext}", "[inbound] spool_dir"),  # above, via a field
        ("{root}/state/outbound/{recvid}.{ext}", "[outbound] spool_dir"),
        ("{root}/fax/sent/{dnis}/{recvid}.{ext}", "[outbound] sent_folder"),
        ("{root}/fax/failed/{recvid}.{ext}", "[outbound] failed_folder"),
        ("{root}/fax/outbox/{recvid}.{ext}", "[outbound] hot_folder"),
    ],
)
def test_a_delivery_reaching_a_protected_folder_is_refused(
    tmp_path: Path, route_path: str, protected: str
) -> None:
    """Inside, equal to or (with a field naming folders) above a spool or outbox folder."""
    found = refusals(site_config(tmp_path, route_path))
    (problem,) = [p for p in found if protected in p]
    assert "routes[0].actions[0].path" in problem
    assert "give the folder action a folder of its own" in problem


def test_a_hot_folder_inside_a_delivery_tree_is_refused(tmp_path: Path) -> None:
    """``/x/fax/{route}/...`` could deliver into ``/x/fax/outbox``: every fax faxed out again."""
    found = refusals(site_config(tmp_path, "{root}/fax/{route}/{recvid}.{ext}"))
    (problem,) = [p for p in found if ": [outbound] hot_folder:" in p]
    assert "inside the delivery tree" in problem and "faxed out again" in problem


def test_a_link_to_the_spool_is_seen_through(tmp_path: Path) -> None:
    """A delivery folder that is a symlink to the spool is the spool."""
    (tmp_path / "state" / "spool").mkdir(parents=True)
    (tmp_path / "incoming").symlink_to(tmp_path / "state" / "spool")
    found = refusals(site_config(tmp_path, "{root}/incoming/{recvid}.{ext}", outbound=False))
    assert any("[inbound] spool_dir" in p for p in found)


@pytest.mark.parametrize(
    "route_path",
    [
        "{root}/fax/inbox/{recvid}.{ext}",
        "{root}/fax/inbox/{route}/{received:%Y-%m}/{recvid}.{ext}",
        "{root}/fax/{recvid}.{ext}",  # files land in fax/ itself, never in fax/outbox
        "{root}/state-copy/{recvid}.{ext}",  # a name that only starts like the state folder
    ],
)
def test_separate_folders_are_accepted(tmp_path: Path, route_path: str) -> None:
    """Folders of their own load fine (no false alarms for neighbours)."""
    config = load_config(site_config(tmp_path, route_path), env={})
    assert config.routes[0].actions


@pytest.mark.parametrize(
    ("template", "root", "fields_name_folders"),
    [
        ("/srv/fax/{dnis}/fax-{recvid}.pdf", "/srv/fax", True),
        ("/srv/fax/in/{recvid}.pdf", "/srv/fax/in", False),
        ("/srv/fax/in/fax-{dnis}x/{recvid}.pdf", "/srv/fax/in", True),
        ("/srv/fax/in/all.pdf", "/srv/fax/in", False),
    ],
)
def test_fixed_root(template: str, root: str, fields_name_folders: bool) -> None:
    assert fixed_root(template) == (Path(root), fields_name_folders)


def test_retention_protects_sent_and_failed_even_with_the_outbox_off(tmp_path: Path) -> None:
    """[retention] removes old files from sent/ and failed/: a delivery there would be
    removed too, so it is refused even when [outbound] is disabled."""
    config = site_config(tmp_path, "{root}/fax/sent/{recvid}.{ext}", outbound=False)
    with config.open("a") as out:
        out.write(
            f'[outbound]\nenabled = false\nsent_folder = "{tmp_path}/fax/sent"\n'
            "[retention]\nsent_days = 90\n"
        )
    (problem,) = [p for p in refusals(config) if "[outbound] sent_folder" in p]
    assert "routes[0].actions[0].path" in problem
    text = config.read_text().replace("sent_days = 90", "sent_days = 0")  # keeps forever
    config.write_text(text)
    assert load_config(config, env={}).retention is not None
