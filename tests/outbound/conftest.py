"""Fixtures for the outbound half: real folders, the real service, and a way to wait.

- ``folders``: hot/sent/failed/spool folders under the test's temp dir.
- ``make_settings(**overrides)``: an :class:`OutboundSettings` for those folders
  with short settle and rescan times.
- ``make_outbound(**overrides)``: a started :class:`Outbound` wired to the real
  simulator client and the real migrated database; stopped after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from send_helpers import Folders

from faxd.config import OutboundSettings
from faxd.outbound.service import Outbound
from faxd.providers.faxage.provider import FaxageOutbound


@pytest.fixture
def folders(tmp_path: Path) -> Folders:
    return Folders.under(tmp_path)


@pytest.fixture
def make_settings(folders: Folders) -> Callable[..., OutboundSettings]:
    def build(**overrides: Any) -> OutboundSettings:
        values: dict[str, Any] = {
            "enabled": True,
            "hot_folder": folders.hot,
            "sent_folder": folders.sent,
            "failed_folder": folders.failed,
            "spool_dir": folders.spool,
            "settle_seconds": 0.5,
            "status_interval": 60.0,
            "poll_seconds": None,
            "rescan_interval": 300.0,
            "max_attempts": 5,
            "clear_after_status": True,
            "tagname": None,
            "tagnumber": None,
            "resolution": None,
            "priority": None,
        }
        values.update(overrides)
        return OutboundSettings(**values)

    return build


@pytest.fixture
def make_outbound(
    make_settings: Callable[..., OutboundSettings], db: Any, client: Any
) -> Iterator[Callable[..., Outbound]]:
    started: list[Outbound] = []

    def build(**overrides: Any) -> Outbound:
        settings = make_settings(**overrides)
        service = Outbound(settings, db, FaxageOutbound(client, settings))
        service.start()
        started.append(service)
        return service

    yield build
    for service in started:
        service.stop()
