"""``[database] url`` and where a PostgreSQL password comes from (issue 14).

The password never stays in the URL faxd shows: it comes from
``FAXD_DATABASE_PASSWORD`` or the systemd credential ``database-password``, and
one written into the URL is taken out of it, with a warning.  The end-to-end
proof that it reaches the server and never the output is in
tests/store/test_pg_migrations.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from faxd.check_config import render_config
from faxd.config import Config, load_config
from faxd.errors import ConfigError
from faxd.redact import MASK, redact

FAXAGE = '[faxage]\nusername = "acme"\ncompany = "12345"\n'
ROUTE = """[[routes]]
name = "default"
actions = [{ type = "folder", path = "/srv/fax/{recvid}.{ext}" }]
"""
SECRET = "Db9+pass/WORD=7"
ENV = {"FAXD_FAXAGE_PASSWORD": "Ex4mple-faxage-pw"}


def load(tmp_path: Path, url: str, **env: str) -> Config:
    path = tmp_path / "faxd.toml"
    path.write_text(f'{FAXAGE}[database]\nurl = "{url}"\n{ROUTE}')
    path.chmod(0o600)
    return load_config(path, env={**ENV, **env})


def test_password_from_the_environment(tmp_path: Path) -> None:
    config = load(tmp_path, "postgresql+psycopg://faxd@db/faxd", FAXD_DATABASE_PASSWORD=SECRET)
    assert config.database.url == "postgresql+psycopg://faxd@db/faxd"
    assert config.database.password == SECRET
    assert config.database.password_source == "environment variable FAXD_DATABASE_PASSWORD"
    assert config.warnings == ()
    assert SECRET not in repr(config.database)
    assert redact(f"connect with {SECRET}") == f"connect with {MASK}"


def test_password_from_a_systemd_credential(tmp_path: Path) -> None:
    credentials = tmp_path / "credentials"
    credentials.mkdir()
    (credentials / "database-password").write_text(SECRET + "\n")
    config = load(
        tmp_path, "postgresql+psycopg://faxd@db/faxd", CREDENTIALS_DIRECTORY=str(credentials)
    )
    assert config.database.password == SECRET
    assert config.database.password_source == "systemd credential database-password"
    text = render_config(config)
    assert "set (from systemd credential database-password)" in text and SECRET not in text


def test_password_in_the_url_is_taken_out_with_a_warning(tmp_path: Path) -> None:
    config = load(tmp_path, "postgresql://faxd:Db9%2Bpass%2FWORD%3D7@db:5433/faxd")
    assert config.database.url == "postgresql+psycopg://faxd@db:5433/faxd"
    assert config.database.password == SECRET
    [warning] = config.warnings
    assert "[database] url holds the database password" in warning
    assert "FAXD_DATABASE_PASSWORD" in warning and "LoadCredential=database-password" in warning
    text = render_config(config)
    assert SECRET not in text and "Db9%2Bpass" not in text
    assert "postgresql+psycopg://faxd@db:5433/faxd" in text


def test_password_in_the_url_and_the_environment_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "postgresql+psycopg://faxd:other@db/faxd", FAXD_DATABASE_PASSWORD=SECRET)
    [problem] = [p for p in caught.value.problems if "[database] url" in p]
    assert "remove the password from the url" in problem
    assert "other" not in problem and SECRET not in problem


def test_a_database_faxd_does_not_run_on_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, "mysql://faxd@db/faxd")
    assert any("'mysql' is not a database faxd runs on" in p for p in caught.value.problems)


def test_sqlite_needs_no_password_and_keeps_its_relative_path(tmp_path: Path) -> None:
    config = load(tmp_path, "sqlite:///state/faxd.db", FAXD_DATABASE_PASSWORD=SECRET)
    assert config.database.url == f"sqlite:///{tmp_path / 'state' / 'faxd.db'}"
    assert config.database.password is None


def test_any_url_password_in_a_text_is_masked() -> None:
    """A URL quoted in a driver's error keeps its user and host, never its password."""
    line = "cannot reach postgresql+psycopg://faxd:unregistered-pw@db.example.com:5432/faxd"
    assert redact(line) == f"cannot reach postgresql+psycopg://faxd:{MASK}@db.example.com:5432/faxd"
    assert redact("see https://example.com/a:b@c") == "see https://example.com/a:b@c"


def load_keys(tmp_path: Path, keys: str) -> Config:
    path = tmp_path / "faxd.toml"
    path.write_text(f'{FAXAGE}[database]\nurl = "postgresql://faxd@db/faxd"\n{keys}\n{ROUTE}')
    path.chmod(0o600)
    return load_config(path, env={**ENV, "FAXD_DATABASE_PASSWORD": SECRET})


def test_instance_name_and_lease(tmp_path: Path) -> None:
    """Each server names itself; the hostname unless set; a lease of 60 s unless set."""
    import socket

    config = load_keys(tmp_path, 'instance = "fax-2.b"\nlease_seconds = 20')
    assert (config.database.instance, config.database.lease_seconds) == ("fax-2.b", 20.0)
    default = load_keys(tmp_path, "")
    assert default.database.instance == socket.gethostname().split(".")[0][:64]
    assert default.database.lease_seconds == 60.0


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('instance = "fax 1"', r"\[database\] instance: must be 1 to 64 letters"),
        (f'instance = "{"x" * 65}"', r"\[database\] instance: must be 1 to 64 letters"),
        ("lease_seconds = 2", r"\[database\] lease_seconds: must be at least 5"),
        ("lease_seconds = -1", r"\[database\] lease_seconds: must be a number of seconds"),
    ],
)
def test_bad_instance_or_lease_is_refused_with_the_key(
    tmp_path: Path, keys: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_keys(tmp_path, keys)


def test_check_config_shows_the_instance_and_lease_of_a_shared_database(tmp_path: Path) -> None:
    text = render_config(load_keys(tmp_path, 'instance = "fax2"\nlease_seconds = 30'))
    assert "fax2 (this server's name" in text and "30s (a dead server" in text
