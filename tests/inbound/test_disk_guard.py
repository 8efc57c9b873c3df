"""The low-disk guard with its free-space function injected: which folders it measures,
that the pause covers downloads only, and how ``[inbound] min_free_mb`` is read.

The real small file system (a tmpfs) is in ``test_disk_guard_mount.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import (
    FAKE_FAXAGE,
    SALES,
    SUPPORT,
    ActionBook,
    FakeInbox,
    FixedRandom,
    ManualClock,
    config_file,
    events,
    fail_transient,
    faxage_inbound,
    make_config,
    recorder_route,
)

from faxd.config import FolderSpec, RouteSpec, load_config
from faxd.errors import ConfigError
from faxd.inbound.diskguard import MIB
from faxd.inbound.pipeline import InboundPipeline
from faxd.store.states import FaxState

PLENTY = 10_000 * MIB


class FreeSpace:
    """Free bytes per path, set by the test; remembers every path it was asked about."""

    def __init__(self) -> None:
        self.free: dict[Path, int] = {}
        self.asked: list[Path] = []

    def __call__(self, path: Path) -> int:
        self.asked.append(path)
        return self.free.get(path, PLENTY)


def test_a_delivery_folder_not_made_yet_is_measured_where_it_will_be_made(
    tmp_path: Path, db: Any, inbox: FakeInbox, book: ActionBook, clock: ManualClock,
    logs: list[Any],
) -> None:  # fmt: skip
    """Another route's folder counts too; a missing root is measured at its nearest folder."""
    (tmp_path / "archive").mkdir()
    archive = FolderSpec(f"{tmp_path}/archive/new/{{dnis}}/{{recvid}}.pdf")
    routes = (
        recorder_route("sales", "sales-a", dnis=(SALES,)),
        RouteSpec("support", dnis=(SUPPORT,), actions=(archive,)),
    )
    space = FreeSpace()
    space.free[tmp_path / "archive"] = 100 * MIB
    pipe = InboundPipeline(
        faxage_inbound(inbox), db, make_config(tmp_path, routes, min_free_mb=500), actions_for=book,
        clock=clock, rng=FixedRandom(), free_bytes=space,
    )  # fmt: skip
    fax = inbox.add(SALES)

    for _ in range(3):
        pipe.poll()
    assert tmp_path / "archive" in space.asked
    assert inbox.count("getfax") == 0 and not fax.deleted
    row = pipe.ledger.get(fax.remote_id)
    assert row is not None and row.state is FaxState.LISTED and row.attempts == 0
    (line,) = events(logs, "inbound.disk_low")
    assert f"{tmp_path}/archive/new has 100 MB free, below [inbound] min_free_mb = 500" in (
        line["message"]
    )

    space.free[tmp_path / "archive"] = 600 * MIB
    pipe.poll()
    assert fax.deleted and book["sales-a"].delivered[0][0] == fax.remote_id
    assert len(events(logs, "inbound.disk_ok")) == 1


def test_faxes_already_spooled_are_still_delivered_while_downloads_wait(
    tmp_path: Path, db: Any, inbox: FakeInbox, book: ActionBook, clock: ManualClock
) -> None:
    """The pause is for downloads only: a spooled fax is delivered (and its spool file freed)."""
    space = FreeSpace()
    pipe = InboundPipeline(
        faxage_inbound(inbox), db,
        make_config(tmp_path, (recorder_route("sales", "sales-a"),), min_free_mb=1),
        actions_for=book, clock=clock, rng=FixedRandom(), free_bytes=space,
    )  # fmt: skip
    first = inbox.add(SALES)
    book["sales-a"].failures.append(fail_transient())
    pipe.poll()
    row = pipe.ledger.get(first.remote_id)
    assert row is not None and row.state is FaxState.DOWNLOADED

    space.free[tmp_path / "spool"] = MIB // 2
    second = inbox.add(SALES)
    clock.advance(3600)
    pipe.poll()
    assert first.deleted and not list((tmp_path / "spool").iterdir())
    assert inbox.count("getfax") == 1 and not second.deleted
    row = pipe.ledger.get(second.remote_id)
    assert row is not None and row.state is FaxState.LISTED and row.attempts == 0


def test_a_folder_that_cannot_be_measured_is_warned_about_once_and_does_not_pause(
    tmp_path: Path, db: Any, inbox: FakeInbox, book: ActionBook, clock: ManualClock,
    logs: list[Any],
) -> None:  # fmt: skip
    """No permission to measure: one warning naming the folder; faxes keep coming."""
    space = FreeSpace()
    (tmp_path / "spool").mkdir()

    def no_entry(path: Path) -> int:
        if path == tmp_path / "spool":
            raise PermissionError(13, "Permission denied", str(path))
        return space(path)

    pipe = InboundPipeline(
        faxage_inbound(inbox), db, make_config(tmp_path, (recorder_route("sales", "sales-a"),)),
        actions_for=book, clock=clock, rng=FixedRandom(), free_bytes=no_entry,
    )  # fmt: skip
    faxes = [inbox.add(SALES), inbox.add(SALES)]
    pipe.poll()
    pipe.poll()
    assert all(f.deleted for f in faxes)
    (line,) = events(logs, "inbound.disk_unmeasured")
    assert line["folder"] == str(tmp_path / "spool") and "Permission denied" in line["error"]
    assert not events(logs, "inbound.disk_low")


@pytest.mark.parametrize(("line", "expected"), [("", 500.0), ("min_free_mb = 0", 0.0),
                                                ("min_free_mb = 0.5", 0.5)])  # fmt: skip
def test_min_free_mb_defaults_to_500_and_takes_zero_and_fractions(
    tmp_path: Path, line: str, expected: float
) -> None:
    assert load_config(config_file(tmp_path, FAKE_FAXAGE, line)).inbound.min_free_mb == expected


@pytest.mark.parametrize("value", ["-1", '"lots"', "inf"])
def test_min_free_mb_refuses_what_is_no_size(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(config_file(tmp_path, FAKE_FAXAGE, f"min_free_mb = {value}"))
    assert any("min_free_mb" in p and "number of MB" in p for p in caught.value.problems)
