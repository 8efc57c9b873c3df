"""Faults on the wire, once per provider that receives: each kind on 20% of requests.

Every kind the provider's simulator knows (HTTP 500, resets, timeouts,
truncated downloads and the provider's own: FAXAGE's ERR01/ERR13, VoIP.ms's
``api_limit_exceeded`` and damaged base64, iFax's HTTP 429 and damaged base64)
fires on a fifth of the requests it applies to, plus an answer lost after the
provider acted (a delete, or on iFax a download).  Every fax must still be
delivered exactly once with its bytes, released only after, and end done.

Faults are counted by the handle ``inject`` returns: the simulator fires at
most one fault per kind on a request, in injection order, so the lost-answer
fault is injected before the general ``http500`` (or that one would shadow it)
and only its own handle tells whether it really fired.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import (
    DOWNLOAD_OPERATION,
    RELEASE_OPERATION,
    ManualClock,
    Receiver,
    provider_config_file,
    provider_path,
    provider_require_delivered,
    rounds_until,
)

from faxd.config import load_config
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.registry import make_inbound
from faxd.sim.kits import KITS
from faxd.store.db import Database
from faxd.store.models import InboundFax

#: The kinds each simulator injects (each on 20% of the requests it applies to).
KINDS = {
    "faxage": ("http500", "err01", "reset", "slow", "truncate", "err13"),
    "voipms": ("http500", "reset", "slow", "truncate", "api_limit", "corrupt_base64"),
    "ifax": ("http500", "reset", "slow", "truncate", "rate_limit", "corrupt_base64"),
}

#: The listing operation of each date-window provider.
LIST_OPERATION = {"voipms": "getFaxMessages", "ifax": "fax-list-all"}


def fast_client(name: str, sim: Any) -> Any:
    """The provider's client with a read timeout below the ``slow`` fault and no sleeping."""
    sim.slow_seconds = 0.5
    quick: dict[str, Any] = {"timeout": 0.2, "retries": 2, "backoff": 0.0, "sleep": lambda _s: None}
    if name == "faxage":
        from faxd.providers.faxage.client import FaxageClient

        return FaxageClient(sim.username, sim.company, sim.password, base_url=sim.base_url, **quick)
    if name == "voipms":
        from faxd.providers.voipms.client import VoipmsClient

        return VoipmsClient(
            sim.username, sim.password, base_url=sim.base_url, rate_limit_backoff=0.0, **quick
        )
    from faxd.providers.ifax.client import IfaxClient

    return IfaxClient(sim.token, base_url=sim.base_url, **quick)


@pytest.fixture
def clock() -> ManualClock:
    """A hand-moved clock starting now: the date-window providers list around today."""
    return ManualClock(datetime.now(UTC))


@pytest.fixture
def client(receiver: Receiver) -> Iterator[Any]:
    made = fast_client(receiver.name, receiver.sim)
    yield made
    made.close()


def test_faults_on_a_fifth_of_requests_lose_no_fax_on_any_provider(
    receiver: Receiver, client: Any, tmp_path: Path, db: Database, clock: ManualClock
) -> None:
    """Each fault kind on 20%, and lost answers: all delivered once, released only after."""
    name, sim = receiver.name, receiver.sim
    inbound = "max_attempts = 100\nbackoff_base = 5\nbackoff_max = 60\n"
    config = load_config(
        provider_config_file(tmp_path, name, receiver.kit.section(sim), inbound=inbound)
    )
    root = tmp_path / "fax"
    # Larger than one read chunk (64 KiB), so damage can sit in the middle of a download.
    faxes = receiver.seed(15, size=150_000)
    sim.delete_check = provider_require_delivered(root)
    # The provider acted, its answer was lost: once for certain (the first time),
    # then on a fifth of the rest.  Injected first, so the general http500
    # cannot shadow it.  iFax releases nothing: its answer lost is a download's.
    acted = RELEASE_OPERATION[name] or DOWNLOAD_OPERATION[name]
    lost_answers = [
        sim.inject("http500", operation=acted, times=1, after=True),
        sim.inject("http500", operation=acted, rate=0.2, after=True),
    ]
    general = [sim.inject(kind, rate=0.2) for kind in KINDS[name]]
    provider = make_inbound(config, name, client=client, clock=clock)
    pipe = InboundPipeline(provider, db, config, clock=clock)

    def finished() -> bool:
        # A release whose answer was lost has released the fax while the
        # database still says delivered: the next round must find it gone.
        with db.session() as session:
            states = [row.state for row in session.query(InboundFax)]
        released = receiver.keeps or all(f.released for f in faxes)
        return released and len(states) == len(faxes) and set(states) == {"done"}

    rounds = rounds_until(pipe, clock, finished)

    fired = {f.kind: f.fired for f in general}
    assert all(count > 0 for count in fired.values()), fired  # each fault really happened
    assert lost_answers[0].fired == 1, f"no {acted} answer was lost"
    assert sim.violations == []
    assert finished(), f"not all delivered and released after {rounds} rounds"
    files = {p for p in root.rglob("*") if p.is_file()}
    assert files == {provider_path(root, f) for f in faxes}  # each once, nothing else
    for fax in faxes:
        assert provider_path(root, fax).read_bytes() == fax.data
    if receiver.keeps:
        assert all(f.downloads >= 1 for f in faxes)


def old_faxes(name: str, sim: Any) -> list[Any]:
    """Faxes spread over past days (a date-window provider must still list every one)."""
    if name == "ifax":
        sim.page_size = 4  # three pages, newest first
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        return [
            sim.seed_inbound(1, dnis=("+13035550101",), received_at=now - timedelta(days=k))[0]
            for k in range(12)
        ]
    # VoIP.ms: since 200 days ago is three windows of at most 92 days, oldest first.
    return [
        sim.add_fax("3035550101", "3035550100", when=sim.now() - timedelta(days=k))
        for k in (150, 120, 100, 60, 30, 10, 5, 2)
    ]


@pytest.mark.parametrize("name", ["voipms", "ifax"])
def test_listing_broken_midway_moves_no_window_past_an_unrecorded_fax(
    name: str, tmp_path: Path, db: Database
) -> None:
    """The third listing request fails: the next poll still lists (and takes) every fax.

    The window start may move only with the last batch of a listing read to
    its end; moved by an earlier batch, the next poll would start yesterday and
    the older faxes would wait for the sweep.
    """
    kit = KITS[name]
    sim = kit.start(seed=0)
    try:
        since = (datetime.now(UTC) - timedelta(days=200 if name == "voipms" else 20)).date()
        section = kit.section(sim) + f"since = {since.isoformat()}\n"
        config = load_config(provider_config_file(tmp_path, name, section))
        faxes = old_faxes(name, sim)
        # Seed 0 draws 0.84, 0.76, 0.42: the first two listing requests pass, the third fails.
        fault = sim.inject("http500", operation=LIST_OPERATION[name], rate=0.5, times=1)
        client = fast_client(name, sim)
        client.retries = 0
        try:
            pipe = InboundPipeline(make_inbound(config, name, client=client), db, config)
            first = pipe.poll()
            assert fault.fired == 1 and 0 < first.new < len(faxes) and first.errors == 1
            second = pipe.poll()  # no sweep: the window alone must hold the rest
        finally:
            client.close()
        assert first.new + second.new == len(faxes)
        assert first.done + second.done == len(faxes)
        root = tmp_path / "fax"
        for fax in faxes:
            assert provider_path(root, fax).read_bytes() == fax.data
    finally:
        sim.stop()


@pytest.mark.parametrize("name", ["voipms", "ifax"])
def test_damaged_base64_is_never_delivered(
    name: str, tmp_path: Path, db: Database, clock: ManualClock
) -> None:
    """The first two downloads come with damaged base64: refused, fetched again, right bytes."""
    kit = KITS[name]
    sim = kit.start()
    try:
        config = load_config(provider_config_file(tmp_path, name, kit.section(sim)))
        root = tmp_path / "fax"
        # Larger than one read chunk (64 KiB): the damage sits mid-download.
        faxes = Receiver(name, kit, sim).seed(3, size=150_000)
        sim.delete_check = provider_require_delivered(root)
        fault = sim.inject("corrupt_base64", operation=DOWNLOAD_OPERATION[name], times=2)
        client = fast_client(name, sim)
        client.retries = 0
        try:
            provider = make_inbound(config, name, client=client, clock=clock)
            pipe = InboundPipeline(provider, db, config, clock=clock)
            for _ in range(4):
                pipe.poll()
                clock.advance(3600)  # past any backoff
        finally:
            client.close()
        assert fault.fired == 2
        assert sim.violations == []
        assert {p for p in root.rglob("*") if p.is_file()} == {
            provider_path(root, f) for f in faxes
        }
        for fax in faxes:
            assert provider_path(root, fax).read_bytes() == fax.data
        with db.session() as session:
            assert {row.state for row in session.query(InboundFax)} == {"done"}
    finally:
        sim.stop()
