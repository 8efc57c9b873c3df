"""`[notify]` in the config file and `faxd notify --test` against a real SMTP server."""

from __future__ import annotations

from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from faxd.cli import main
from faxd.config import NOTIFY_EVENTS, NotifySettings, load_config
from faxd.errors import ConfigError

BASE = '[faxage]\nusername = "a"\ncompany = "1"\npassword = "secret-pw-1"\n'


def write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "faxd.toml"
    path.write_text(BASE + f'[inbound]\nenabled = false\nspool_dir = "{tmp_path}/spool"\n' + body)
    path.chmod(0o600)
    return path


def smtp_section(server: Any) -> str:
    return f'[smtp]\nhost = "{server.host}"\nport = {server.port}\nfrom = "faxd@example.com"\n'


def test_notify_section_is_read_with_every_event_by_default(
    tmp_path: Path, smtp_server: Any
) -> None:
    """email is required; events default to every kind; min_interval and attach are read."""
    path = write(tmp_path, smtp_section(smtp_server) + '[notify]\nemail = ["it@example.com"]\n'
                 "min_interval = 600\nattach = true\n")  # fmt: skip
    assert load_config(path, env={}).notify == NotifySettings(
        email=("it@example.com",), events=frozenset(NOTIFY_EVENTS), min_interval=600, attach=True
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[notify]\nemail = ["it@example.com"]\n', "[notify] email: needs an [smtp] section"),
        ('[notify]\nevents = ["fax_failed"]\n', "[notify] email: is required"),
        ('[notify]\nemail = ["it@example.com"]\nevents = ["fax_fail"]\n',
         "'fax_fail' is not an event"),
        ('[notify]\nemail = ["not an address"]\n', "is not one email address"),
    ],
)  # fmt: skip
def test_notify_mistakes_are_named(tmp_path: Path, body: str, expected: str) -> None:
    """Each slip in [notify] is refused with the key and what to do."""
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, body), env={})
    assert any(expected in problem for problem in caught.value.problems), caught.value.problems


def test_notify_test_sends_a_mail(
    tmp_path: Path, smtp_server: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    """faxd notify --test mails the admins now and prints the server's answer."""
    path = write(tmp_path, smtp_section(smtp_server) + '[notify]\nemail = ["it@example.com"]\n')
    assert main(["--config", str(path), "notify", "--test"]) == 0
    assert "test mail sent to it@example.com: the server answered 250" in capsys.readouterr().out
    (_mail_from, rcpt, raw) = smtp_server.messages[0]
    assert rcpt == ["it@example.com"]
    assert "test notification" in str(message_from_bytes(raw)["Subject"])

    smtp_server.stop()
    assert main(["--config", str(path), "notify", "--test"]) == 1
    assert "the test mail was not sent" in capsys.readouterr().err
