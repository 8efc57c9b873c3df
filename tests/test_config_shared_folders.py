"""``check-config`` warns when a shared database's outbound spool is not beside the hot folder.

Several servers on one PostgreSQL database send each other's queued jobs, so
the spool must be on the share with the hot folder (faxd/config/shared_folders.py).
The two file systems here are real: the test's temp folder and /dev/shm (``other_mount``).
"""

from __future__ import annotations

from pathlib import Path

from faxd.check_config import render_config
from faxd.config import Config, load_config

SHM = Path("/dev/shm")
PG_URL = "postgresql+psycopg://faxd@db.example.com/faxd"
ENV = {"FAXD_FAXAGE_PASSWORD": "Ex4mple-faxage-pw", "FAXD_DATABASE_PASSWORD": "Db-pass-7"}


def load(tmp_path: Path, url: str, spool: Path) -> Config:
    path = tmp_path / "faxd.toml"
    path.write_text(
        f"""[faxage]
username = "acme"
company = "12345"

[database]
url = "{url}"

[inbound]
enabled = false
spool_dir = "{tmp_path / "inbound-spool"}"

[outbound]
hot_folder = "{tmp_path / "share" / "outbox"}"
sent_folder = "{tmp_path / "share" / "sent"}"
failed_folder = "{tmp_path / "share" / "failed"}"
spool_dir = "{spool}"
poll_seconds = 5
"""
    )
    path.chmod(0o600)
    return load_config(path, env=ENV)


def spool_warnings(config: Config) -> list[str]:
    return [w for w in config.warnings if w.startswith("[outbound] spool_dir")]


def test_a_local_spool_with_a_shared_database_is_warned_about(
    tmp_path: Path, other_mount: Path
) -> None:
    config = load(tmp_path, PG_URL, other_mount / "spool")
    (warning,) = spool_warnings(config)
    assert str(other_mount / "spool") in warning and "same share" in warning
    assert "spool_dir" in render_config(config)


def test_a_spool_beside_the_hot_folder_is_not_warned_about(tmp_path: Path) -> None:
    # Neither folder exists yet: the nearest existing folder above each is compared.
    assert spool_warnings(load(tmp_path, PG_URL, tmp_path / "share" / "spool")) == []


def test_sqlite_is_one_machine_and_needs_no_shared_spool(tmp_path: Path, other_mount: Path) -> None:
    config = load(tmp_path, f"sqlite:///{tmp_path / 'faxd.db'}", other_mount / "spool")
    assert spool_warnings(config) == []
