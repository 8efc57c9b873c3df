"""The date-window rules of VoIP.ms inbound listing (injected clock, real simulator)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import structlog
from voipms_helpers import settings_for

from faxd.errors import TransientError
from faxd.providers.base import ListingBatch
from faxd.providers.voipms import provider
from faxd.providers.voipms.client import VoipmsClient
from faxd.providers.voipms.sim import VoipmsSimulator

NOW = datetime(2026, 6, 15, 16, 0, tzinfo=UTC)  # 12:00 in New York


def inbound(sim: VoipmsSimulator, client: VoipmsClient, **changes: Any) -> provider.VoipmsInbound:
    config: Any = SimpleNamespace(voipms=settings_for(sim, **changes))
    return provider.make_inbound(config, client=client, clock=lambda: NOW)


def ranges(sim: VoipmsSimulator) -> list[tuple[str, str]]:
    return [(p["from"], p["to"]) for m, p in sim.requests if m == "getFaxMessages"]


def at(day: date, hour: int = 9) -> datetime:
    return datetime(day.year, day.month, day.day, hour)


def test_fresh_install_looks_back_90_days_to_today(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    today = date(2026, 6, 15)
    inside = voipms_sim.add_fax("3035550101", "1", when=at(today - timedelta(days=90)))
    voipms_sim.add_fax("3035550101", "2", when=at(today - timedelta(days=91)))
    batches = list(inbound(voipms_sim, voipms_client).list_new(None, now=NOW))
    assert ranges(voipms_sim) == [("2026-03-17", "2026-06-15")]
    assert [f.remote_id for b in batches for f in b.faxes] == [inside.remote_id]
    assert batches[-1].cursor == (NOW - provider.SAFETY_MARGIN).isoformat()


def test_since_overrides_the_fresh_install_window(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    list(inbound(voipms_sim, voipms_client, since=date(2026, 5, 1)).list_new(None, now=NOW))
    assert ranges(voipms_sim) == [("2026-05-01", "2026-06-15")]


def test_the_window_starts_on_the_cursor_day_in_the_api_zone(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    # 03:00 UTC on the 10th is 23:00 on the 9th in New York.
    list(inbound(voipms_sim, voipms_client).list_new("2026-06-10T03:00:00+00:00", now=NOW))
    assert ranges(voipms_sim) == [("2026-06-09", "2026-06-15")]


def test_today_is_the_api_zone_day(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    late = datetime(2026, 6, 16, 2, 0, tzinfo=UTC)  # 22:00 on the 15th in New York
    source = inbound(voipms_sim, voipms_client)
    list(source.list_new("2026-06-14T12:00:00+00:00", now=late))
    tokyo = inbound(voipms_sim, voipms_client, timezone="Asia/Tokyo")
    list(tokyo.list_new("2026-06-14T12:00:00+00:00", now=late))
    assert ranges(voipms_sim) == [("2026-06-14", "2026-06-15"), ("2026-06-14", "2026-06-16")]


def test_a_late_fax_inside_the_safety_margin_is_still_listed(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    source = inbound(voipms_sim, voipms_client)
    (first,) = list(source.list_new(None, now=NOW))
    # VoIP.ms files a fax dated before the last poll only after that poll.
    late = voipms_sim.add_fax("3035550101", "1", when=datetime(2026, 6, 15, 11, 30))
    later = NOW + timedelta(minutes=5)
    (second,) = list(source.list_new(first.cursor, now=later))
    assert [f.remote_id for f in second.faxes] == [late.remote_id]


def test_a_long_gap_is_listed_in_windows_of_at_most_92_days(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    old = voipms_sim.add_fax("3035550101", "1", when=at(date(2026, 6, 15) - timedelta(days=150)))
    cursor = (NOW - timedelta(days=200)).isoformat()
    batches = list(inbound(voipms_sim, voipms_client).list_new(cursor, now=NOW))
    spans = [(date.fromisoformat(a), date.fromisoformat(b)) for a, b in ranges(voipms_sim)]
    assert len(spans) == 3
    assert spans[0][0] == date(2025, 11, 27)
    assert spans[-1][1] == date(2026, 6, 15)
    for (_, end), (next_start, _) in itertools.pairwise(spans):
        assert next_start == end + timedelta(days=1)
    assert all((end - start).days + 1 <= 92 for start, end in spans)
    assert [b.cursor is not None for b in batches] == [False, False, True]
    assert old.remote_id in {f.remote_id for b in batches for f in b.faxes}


def test_no_cursor_when_the_listing_is_not_read_to_its_end(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    cursor = (NOW - timedelta(days=120)).isoformat()
    listing = inbound(voipms_sim, voipms_client).list_new(cursor, now=NOW)
    got: list[ListingBatch] = [next(listing)]
    voipms_sim.inject("http500")
    with pytest.raises(TransientError):
        got.extend(listing)
    assert [b.cursor for b in got] == [None]


def test_an_unreadable_cursor_falls_back_to_90_days(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    with structlog.testing.capture_logs() as logs:
        list(inbound(voipms_sim, voipms_client).list_new("garbage", now=NOW))
    assert ranges(voipms_sim) == [("2026-03-17", "2026-06-15")]
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["voipms.cursor_unreadable"]


def test_the_sweep_covers_the_last_90_days(
    voipms_sim: VoipmsSimulator, voipms_client: VoipmsClient
) -> None:
    batches = list(inbound(voipms_sim, voipms_client).list_all(now=NOW))
    assert ranges(voipms_sim) == [("2026-03-17", "2026-06-15")]
    assert all(b.cursor is None for b in batches)


@pytest.mark.parametrize("days", [0, 1, 91, 92, 93, 183, 184, 185, 400])
def test_windows_cover_every_day_once(days: int) -> None:
    start = date(2025, 1, 1)
    end = start + timedelta(days=days)
    spans = provider.windows(start, end)
    covered = [s + timedelta(days=i) for s, e in spans for i in range((e - s).days + 1)]
    assert covered == [start + timedelta(days=i) for i in range(days + 1)]
    assert max((e - s).days + 1 for s, e in spans) <= provider.WINDOW_DAYS


def test_capabilities_follow_the_settings(voipms_sim: VoipmsSimulator) -> None:
    settings = settings_for(voipms_sim)
    caps = provider.capabilities(settings)
    assert (caps.receive, caps.send, caps.send_returns_id, caps.cursor_listing) == (
        True,
        False,
        False,
        False,
    )
    assert caps.send_types == {"pdf", "txt", "jpg", "gif", "png", "tif"}
    assert provider.capabilities(dataclasses.replace(settings, from_number="3035550101")).send
    assert provider.configured(SimpleNamespace(voipms=settings))  # type: ignore[arg-type]
    assert not provider.configured(SimpleNamespace(voipms=None))  # type: ignore[arg-type]
