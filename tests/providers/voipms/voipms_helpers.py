"""Helpers the VoIP.ms tests share (a module of its own: the tests are not a package)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from faxd.config.model import VoipmsSettings
from faxd.providers.voipms.sim import VoipmsSimulator

VOIPMS_USER = "office@example.com"
VOIPMS_PASSWORD = "Vp-api-S3cret-77q"


class FakeClock:
    """A clock tests move by hand (aware UTC)."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 6, 15, 16, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def settings_for(sim: VoipmsSimulator, **changes: object) -> VoipmsSettings:
    values: dict[str, object] = {
        "username": VOIPMS_USER,
        "password": VOIPMS_PASSWORD,
        "base_url": sim.base_url,
        "timeout": 5.0,
    }
    values.update(changes)
    return VoipmsSettings(**values)  # type: ignore[arg-type]


def write_pdf(tmp_path: Path, data: bytes, name: str = "doc.pdf") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path
