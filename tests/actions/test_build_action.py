"""build_action: each config spec becomes the action that delivers it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from faxd.actions import Deliverable, build_action
from faxd.actions.command import CommandAction
from faxd.actions.email import EmailAction
from faxd.actions.folder import FolderAction
from faxd.actions.print import PrintAction
from faxd.config import CommandSpec, EmailSpec, FolderSpec, PrintSpec, SmtpSettings
from faxd.errors import ConfigError

MakeItem = Callable[..., Deliverable]
SMTP = SmtpSettings(host="127.0.0.1", port=2525, from_addr="faxd@example.com")


@pytest.mark.parametrize(
    ("spec", "cls", "target"),
    [
        (FolderSpec("/srv/fax/{recvid}.pdf"), FolderAction, "folder /srv/fax/{recvid}.pdf"),
        (PrintSpec(printer="sales-laser"), PrintAction, "printer sales-laser"),
        (EmailSpec(to=("a@example.com",)), EmailAction, "email a@example.com"),
        (
            CommandSpec(argv=("/usr/local/bin/ocr", "-q")),
            CommandAction,
            "command /usr/local/bin/ocr",
        ),
    ],
)
def test_each_spec_builds_its_action(spec: Any, cls: type, target: str) -> None:
    """The action built has the spec's type and a target naming where it delivers."""
    action = build_action(spec, smtp=SMTP)
    assert isinstance(action, cls)
    assert action.type == spec.type
    assert action.target == target


def test_email_without_smtp_settings_is_a_config_error() -> None:
    """An email action cannot be built without an [smtp] section, and says so."""
    with pytest.raises(ConfigError, match=r"\[smtp\]"):
        build_action(EmailSpec(to=("a@example.com",)), smtp=None)


def test_actions_run_programs_with_the_environment_given(
    tmp_path: Path, make_item: MakeItem
) -> None:
    """The env passed to build_action is what a command action's program sees."""
    out = tmp_path / "seen"
    script = tmp_path / "show-env"
    script.write_text(f'#!/bin/sh\nprintf %s "$GREETING" > "{out}"\n')
    script.chmod(0o755)
    action = build_action(
        CommandSpec(argv=(str(script),)), smtp=None, env={"GREETING": "hello", "PATH": "/bin"}
    )
    action.deliver(make_item())
    assert out.read_text() == "hello"
