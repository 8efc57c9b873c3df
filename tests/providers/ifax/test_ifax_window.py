"""The iFax inbound window: where it starts, when the cursor moves, and that no fax is skipped."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from ifax_support import IFAX_TOKEN, StepClock

from faxd.config import load_config
from faxd.config.model import IfaxSettings
from faxd.demo import DemoLayout, write_config
from faxd.errors import PermanentError, TransientError
from faxd.providers import registry
from faxd.providers.base import JobOutcome, ListingBatch, Release, SendRequest
from faxd.providers.ifax import wire
from faxd.providers.ifax.client import IfaxClient
from faxd.providers.ifax.provider import IfaxInbound, IfaxOutbound
from faxd.providers.ifax.sim import IfaxSimulator
from faxd.sim.documents import make_pdf


def _settings(sim: IfaxSimulator, since: date | None = None) -> IfaxSettings:
    return IfaxSettings(access_token=IFAX_TOKEN, base_url=sim.base_url, since=since)


@pytest.fixture
def inbound(ifax_sim: IfaxSimulator, ifax_client: IfaxClient) -> IfaxInbound:
    return IfaxInbound(_settings(ifax_sim), ifax_client)


def _windows(sim: IfaxSimulator) -> list[tuple[str, str]]:
    return [(b["startDate"], b["endDate"]) for op, b in sim.requests if op == "fax-list-all"]


def _drain(batches: Iterator[ListingBatch]) -> tuple[list[str], list[str | None]]:
    ids: list[str] = []
    cursors: list[str | None] = []
    for batch in batches:
        ids += [f.remote_id for f in batch.faxes]
        cursors.append(batch.cursor)
    return ids, cursors


def test_fresh_install_starts_the_day_before_the_first_poll(
    ifax_sim: IfaxSimulator, inbound: IfaxInbound, clock: StepClock
) -> None:
    today = clock.now.replace(tzinfo=None)
    old = ifax_sim.seed_inbound(2, received_at=today - timedelta(days=2))
    recent = ifax_sim.seed_inbound(2, received_at=today - timedelta(days=1, hours=-1))
    ids, cursors = _drain(inbound.list_new(None, now=clock.now))
    assert sorted(ids) == sorted(f.remote_id for f in recent)
    assert not set(ids) & {f.remote_id for f in old}
    assert _windows(ifax_sim)[0] == ("03/09/2026", "03/11/2026")
    assert cursors[-1] == "2026-03-09" and set(cursors[:-1]) <= {None}


def test_since_overrides_the_fresh_install_start(
    ifax_sim: IfaxSimulator, ifax_client: IfaxClient, clock: StepClock
) -> None:
    inbound = IfaxInbound(_settings(ifax_sim, since=date(2026, 1, 5)), ifax_client)
    old = ifax_sim.seed_inbound(1, received_at=datetime(2026, 1, 5, 8, 0))
    ids, _ = _drain(inbound.list_new(None, now=clock.now))
    assert ids == [old[0].remote_id]
    assert _windows(ifax_sim)[0][0] == "01/05/2026"


def test_the_cursor_is_set_only_on_the_last_batch_of_a_whole_listing(
    ifax_sim: IfaxSimulator, inbound: IfaxInbound, clock: StepClock
) -> None:
    ifax_sim.seed_inbound(7)  # pages of 3: 3 + 3 + 1 (+ the empty page)
    ids, cursors = _drain(inbound.list_new("2026-03-08", now=clock.now))
    assert len(ids) == 7
    assert cursors == [None, None, "2026-03-09"]
    assert _windows(ifax_sim)[0][0] == "03/08/2026"


def test_a_listing_cut_short_never_moves_the_cursor(
    ifax_sim: IfaxSimulator, ifax_sim_client_no_retry: IfaxClient, clock: StepClock
) -> None:
    inbound = IfaxInbound(_settings(ifax_sim), ifax_sim_client_no_retry)
    ifax_sim.seed_inbound(7)
    batches = inbound.list_new("2026-03-01", now=clock.now)
    first = next(batches)
    ifax_sim.inject("http500", operation="fax-list-all")
    seen = [first]
    with pytest.raises(TransientError):
        seen.extend(batches)
    assert all(batch.cursor is None for batch in seen)


@pytest.fixture
def ifax_sim_client_no_retry(ifax_sim: IfaxSimulator) -> Iterator[IfaxClient]:
    client = IfaxClient(IFAX_TOKEN, base_url=ifax_sim.base_url, retries=0, sleep=lambda s: None)
    yield client
    client.close()


def test_an_unreadable_cursor_falls_back_to_the_sweep_window(
    ifax_sim: IfaxSimulator, inbound: IfaxInbound, clock: StepClock
) -> None:
    _drain(inbound.list_new("not a date", now=clock.now))
    assert _windows(ifax_sim)[0][0] == (clock.now.date() - timedelta(days=90)).strftime("%m/%d/%Y")


def test_list_all_is_wide_and_leaves_the_cursor(
    ifax_sim: IfaxSimulator, inbound: IfaxInbound, clock: StepClock
) -> None:
    old = ifax_sim.seed_inbound(1, received_at=datetime(2026, 1, 1, 9, 0))
    ids, cursors = _drain(inbound.list_all(now=clock.now))
    assert ids == [old[0].remote_id]
    assert cursors == [None]
    assert _windows(ifax_sim)[0] == ("12/10/2025", "03/11/2026")


def test_polls_over_days_never_skip_a_fax(ifax_sim: IfaxSimulator, clock: StepClock) -> None:
    """Faxes arrive at random times, some listed late (stamped before the last poll)."""
    client = IfaxClient(IFAX_TOKEN, base_url=ifax_sim.base_url, sleep=lambda s: None)
    inbound = IfaxInbound(_settings(ifax_sim), client)
    rng = random.Random(7)
    taken: set[str] = set()
    cursor: str | None = None
    expected: set[str] = set()
    for _ in range(40):
        clock.advance(hours=rng.choice([1, 3, 7, 13]))
        now = clock.now.replace(tzinfo=None)
        for _ in range(rng.randint(0, 4)):
            # Stamped up to 20 hours back: iFax shows some faxes after a delay.
            stamp = now - timedelta(hours=rng.uniform(0, 20))
            (fax,) = ifax_sim.seed_inbound(1, received_at=stamp.replace(microsecond=0))
            expected.add(fax.remote_id)
        for batch in inbound.list_new(cursor, now=clock.now):
            taken.update(f.remote_id for f in batch.faxes)
            if batch.cursor is not None:
                cursor = batch.cursor
    assert expected <= taken
    assert len(expected) > 40


class _OverlappingPages:
    """A listing whose pages overlap, as an inclusive ``lastFaxId`` would make them."""

    def __init__(self, pages: list[wire.FaxPage]) -> None:
        self.pages = pages

    def inbound_pages(self, start: date, end: date) -> Iterator[wire.FaxPage]:
        yield from self.pages


def test_duplicates_across_pages_are_listed_once(ifax_sim: IfaxSimulator, clock: StepClock) -> None:
    def page(*ids: int) -> wire.FaxPage:
        records = [{"jobId": i, "transactionId": i + 1, "receivedTime": "2026-03-10"} for i in ids]
        return wire.parse_fax_page(records)

    pages = _OverlappingPages([page(9, 8, 7), page(7, 6), page(6), page()])
    inbound = IfaxInbound(_settings(ifax_sim), pages)  # type: ignore[arg-type]
    ids, cursors = _drain(inbound.list_new(None, now=clock.now))
    assert ids == ["9:10", "8:9", "7:8", "6:7"]
    assert cursors == [None, None, "2026-03-09"]


def test_release_keeps_the_fax_and_calls_nothing(
    ifax_sim: IfaxSimulator, inbound: IfaxInbound, tmp_path: Path
) -> None:
    (fax,) = ifax_sim.seed_inbound(1)
    result = inbound.download(fax.remote_id, tmp_path / "f.pdf", max_bytes=None)
    assert result.sha256 and fax.released
    before = len(ifax_sim.requests)
    inbound.release(fax.remote_id)
    assert len(ifax_sim.requests) == before and fax in ifax_sim.faxes
    assert inbound.capabilities.release is Release.KEEP
    assert not inbound.capabilities.cursor_listing


def test_a_malformed_remote_id_is_refused_before_any_request(
    ifax_sim: IfaxSimulator, inbound: IfaxInbound, tmp_path: Path
) -> None:
    with pytest.raises(PermanentError):
        inbound.download("../../etc/passwd", tmp_path / "f.pdf", max_bytes=None)
    assert ifax_sim.requests == []


# ---------------------------------------------------------------- through the registry


def test_registry_builds_both_halves_and_they_work(
    ifax_sim: IfaxSimulator, clock: StepClock, tmp_path: Path
) -> None:
    layout = DemoLayout(tmp_path / "site")
    base = load_config(write_config(layout, base_url="http://127.0.0.1:9"))
    config = dataclasses.replace(base, ifax=_settings(ifax_sim))
    assert registry.configured(config) == ("faxage", "ifax")
    checker = registry.make_checker(config, "ifax")
    assert checker.check_login().startswith("token accepted")
    outbound = registry.make_outbound(config, "ifax", clock=clock)
    assert isinstance(outbound, IfaxOutbound)
    data = make_pdf("via registry")
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    import hashlib

    request = SendRequest(
        job_id=1,
        number="+13035550101",
        recipient="Bob",
        path=path,
        filename="doc.pdf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )
    since = clock.now - timedelta(minutes=1)
    remote = outbound.send(request)
    assert remote is not None
    (job,) = outbound.statuses([remote, "424242"]).jobs
    assert job.outcome is JobOutcome.PENDING
    assert [j.remote_id for j in outbound.recent_jobs(since).jobs] == [remote]
    assert outbound.recent_jobs(clock.now + timedelta(hours=1)).jobs == ()
    with pytest.raises(PermanentError, match="dashboard"):
        outbound.cancel(remote)
    inbound = registry.make_inbound(config, "ifax", clock=clock)
    ifax_sim.seed_inbound(2)
    assert len(_drain(inbound.list_new(None, now=clock.now.astimezone(UTC)))[0]) == 2
