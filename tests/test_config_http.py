"""``[http]``: off when absent, the token found like a password and kept secret, URL checks."""

from __future__ import annotations

from pathlib import Path

import pytest

from faxd.check_config import render_config
from faxd.config import load_config
from faxd.errors import ConfigError
from faxd.redact import redact

TOKEN = "cb-token-0123456789abcdef"
BASE = """
[faxage]
username = "acme"
company = "12345"

[[routes]]
name = "default"
actions = [{ type = "folder", path = "/srv/fax/{recvid}.{ext}" }]
"""
ENV = {"FAXD_FAXAGE_PASSWORD": "Ex4mple-faxage-pw"}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "faxd.toml"
    path.write_text(BASE + text)
    path.chmod(0o600)
    return path


def problems(tmp_path: Path, text: str, **env: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text), env={**ENV, **env})
    return caught.value.problems


def test_no_http_section_means_no_listener(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, ""), env=ENV).http is None


def test_defaults_loopback_and_token_from_the_environment(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "[http]\n"), env={**ENV, "FAXD_HTTP_TOKEN": TOKEN})
    http = config.http
    assert http is not None
    assert (http.listen_host, http.listen_port, http.public_url) == ("127.0.0.1", 8025, "")
    assert http.token == TOKEN and "FAXD_HTTP_TOKEN" in http.token_source
    assert TOKEN not in repr(http)
    assert redact(f"GET /hook/{TOKEN}/faxage") == "GET /hook/********/faxage"


def test_token_file_credential_and_hook_url(tmp_path: Path) -> None:
    token_file = tmp_path / "callback-token"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o600)
    text = '[http]\nlisten = "[::1]:9000"\npublic_url = "https://fax.example.com/faxd/"\n'
    config = load_config(write(tmp_path, text + f'token_file = "{token_file}"\n'), env=ENV)
    http = config.http
    assert http is not None and http.token == TOKEN
    assert (http.listen_host, http.listen_port) == ("::1", 9000)
    assert http.hook_url("faxage") == f"https://fax.example.com/faxd/hook/{TOKEN}/faxage"
    shown = render_config(config)
    assert TOKEN not in shown
    assert "https://fax.example.com/faxd/hook/<TOKEN>/faxage" in shown
    assert "token_file" in shown

    credentials = tmp_path / "creds"
    credentials.mkdir()
    (credentials / "callback-token").write_text(TOKEN)
    config = load_config(
        write(tmp_path, "[http]\n"), env={**ENV, "CREDENTIALS_DIRECTORY": str(credentials)}
    )
    assert config.http is not None and config.http.token == TOKEN
    assert config.http.token_source == "systemd credential callback-token"


def test_token_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    token_file = tmp_path / "callback-token"
    token_file.write_text(TOKEN)
    token_file.chmod(0o644)
    found = problems(tmp_path, f'[http]\ntoken_file = "{token_file}"\n')
    assert any("chmod 600" in p and "token_file" in p for p in found), found


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[http]\n", "no callback token"),
        ('[http]\ntoken = "short"\n', "at least 16"),
        (f'[http]\ntoken = "{TOKEN}/x"\n', "at least 16"),
        (f'[http]\ntoken = "{TOKEN}"\nlisten = "8025"\n', "must be host:port"),
        (f'[http]\ntoken = "{TOKEN}"\npublic_url = "fax.example.com"\n', "https://"),
        (f'[http]\ntoken = "{TOKEN}"\npublic_url = "https://x.com/f?t=1"\n', "query string"),
        (f'[http]\ntoken = "{TOKEN}"\nlisen = "1.2.3.4:1"\n', "lisen"),
    ],
)
def test_bad_http_settings_are_named(tmp_path: Path, text: str, fragment: str) -> None:
    found = problems(tmp_path, text)
    assert any(fragment in p and "[http]" in p for p in found), found
    assert all(TOKEN not in p for p in found)


def test_check_config_shows_each_configured_providers_callback_url(tmp_path: Path) -> None:
    """VoIP.ms and iFax get their hook URL and where it goes in their portal; never the token."""
    text = (
        '[http]\npublic_url = "https://fax.example.com/faxd"\n'
        '[voipms]\nusername = "office@example.com"\npassword = "Ex4mple-voipms-pw"\n'
        'from_number = "3035550100"\n'
        '[ifax]\naccess_token = "Ex4mple-ifax-token-0123"\n'
    )
    config = load_config(write(tmp_path, text), env={**ENV, "FAXD_HTTP_TOKEN": TOKEN})
    shown = render_config(config)
    assert TOKEN not in shown
    lines = " ".join(shown.split())
    hook = "https://fax.example.com/faxd/hook/<TOKEN>"
    assert f"URL Callback of each fax number (with retry): {hook}/voipms" in lines
    assert f"inbound fax events and sent fax status: {hook}/ifax" in lines
    assert f"{hook}/faxage" in lines
