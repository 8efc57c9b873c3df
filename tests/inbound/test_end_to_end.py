"""End to end: the pipeline against the FAXAGE simulator with real folder actions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import (
    MAIN,
    SALES,
    SUPPORT,
    events,
    expected_path,
    faxage_inbound,
    make_config,
    office_routes,
    require_delivered,
    sim_settings,
)

from faxd.config import Config
from faxd.inbound.pipeline import InboundPipeline
from faxd.store.models import Delivery, InboundFax, PollCursor


@pytest.fixture
def office(tmp_path: Path, sim: Any) -> Config:
    return make_config(tmp_path, office_routes(tmp_path / "fax"), faxage=sim_settings(sim))


def all_files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_thirty_faxes_over_three_numbers_land_in_their_folders(
    office: Config, sim: Any, client: Any, db: Any, tmp_path: Path
) -> None:
    """30 faxes, 2 routes and a default: right folder, right bytes, deleted only after."""
    root = tmp_path / "fax"
    faxes = sim.seed_inbound(30, dnis=(SALES, SUPPORT, MAIN))
    sim.delete_check = require_delivered(root)
    outcome = InboundPipeline(faxage_inbound(client, office), db, office).poll()

    assert (outcome.new, outcome.done, outcome.failed, outcome.errors) == (30, 30, 0, 0)
    assert sim.violations == []
    assert all(f.deleted for f in sim.faxes.values())
    for fax in faxes:
        assert expected_path(root, fax).read_bytes() == fax.data
    assert all_files(root) == {expected_path(root, f) for f in faxes}  # nothing else written
    assert {len(list((root / d).rglob("*.pdf"))) for d in ("sales", "support", "inbox")} == {10}
    assert list(office.inbound.spool_dir.iterdir()) == []

    with db.session() as session:
        rows = session.query(InboundFax).all()
        assert {r.state for r in rows} == {"done"}
        assert all(r.deleted_at is not None and r.delivered_at is not None for r in rows)
        assert {r.route for r in rows if r.dnis == MAIN} == {"default"}
        assert session.query(Delivery).filter(Delivery.state != "done").count() == 0
        cursor = session.get(PollCursor, ("faxage", office.faxage.account))
        assert cursor is not None and cursor.cursor == str(max(f.recvid for f in faxes))
        assert cursor.last_poll_outcome == "30 new, 30 done, 0 failed, 0 held, 0 errors"


def test_next_poll_asks_only_for_faxes_after_the_cursor(
    office: Config, sim: Any, client: Any, db: Any
) -> None:
    """The second listfax sends idgt = highest recvid, idasc and the fixed column flags."""
    first = sim.seed_inbound(3, dnis=(SALES,))
    pipe = InboundPipeline(faxage_inbound(client, office), db, office)
    pipe.poll()
    later = sim.add_fax(SUPPORT)
    assert pipe.poll().done == 1 and later.deleted
    listings = [r.fields for r in sim.requests if r.operation == "listfax"]
    assert "idgt" not in listings[0] or listings[0]["idgt"] in ("", "0")
    assert listings[1]["idgt"] == str(first[-1].recvid)
    for flag in ("idasc", "starttime", "filename", "pagecount"):
        assert listings[1][flag] == "1"


def test_kept_on_faxage_when_delete_after_delivery_is_off(
    tmp_path: Path, sim: Any, client: Any, db: Any
) -> None:
    """delete_after_delivery = false: delivered and done, but never deleted, even by a sweep."""
    config = make_config(
        tmp_path,
        office_routes(tmp_path / "fax"),
        faxage=sim_settings(sim),
        delete_after_delivery=False,
    )
    sim.seed_inbound(4, dnis=(SALES, MAIN))
    pipe = InboundPipeline(faxage_inbound(client, config), db, config)
    assert pipe.poll().done == 4
    assert pipe.sweep().done == 0
    assert not any(f.deleted for f in sim.faxes.values())
    assert not [r for r in sim.requests if r.operation == "delfax"]
    assert len(all_files(tmp_path / "fax")) == 4


def test_login_refused_by_faxage_pauses_quietly_and_resumes(
    office: Config, sim: Any, client: Any, db: Any, logs: list[Any]
) -> None:
    """ERR02 from the real wire: one listfax and one error line per poll, then it resumes."""
    fax = sim.add_fax(SALES)
    sim.inject("err02", times=3)
    pipe = InboundPipeline(faxage_inbound(client, office), db, office)
    for _ in range(3):
        assert pipe.poll().paused
    assert [r.operation for r in sim.requests] == ["listfax"] * 3  # no storm, no retries
    assert len(events(logs, "inbound.login_refused")) == 3
    assert not fax.deleted
    assert pipe.poll().done == 1 and fax.deleted
    assert pipe.ledger.cursor().paused_reason is None
    assert sim.password not in repr(logs)
