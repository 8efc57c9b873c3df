"""The pipeline with providers that list a date window (VoIP.ms, iFax) and with several at once.

A window listing shows a fax again at every poll until it leaves the window,
so the ledger, keyed by (provider, account, remote id), is what keeps it from
being taken twice.  ``WindowInbox`` is a small
:class:`~faxd.providers.base.InboundProvider` serving files from a dict (the
interface itself, passed in through the constructor: no module is patched).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from inbound_helpers import (
    PDF,
    SALES,
    ActionBook,
    FixedRandom,
    ManualClock,
    events,
    make_config,
    recorder_route,
)

from faxd.actions.base import Action, build_action
from faxd.config import ActionSpec, CommandSpec, Config, FolderSpec, RouteSpec, SmtpSettings
from faxd.errors import AuthError, NotFoundError
from faxd.inbound.dispatch import Dispatcher
from faxd.inbound.pipeline import InboundPipeline
from faxd.providers.base import (
    Capabilities,
    Downloaded,
    ListingBatch,
    Release,
    RemoteFax,
    Unreadable,
)
from faxd.store.models import InboundFax

T0 = datetime(2024, 3, 4, 9, 0)


@dataclass
class Held:
    """One fax on the fake provider."""

    remote_id: str
    dnis: str
    data: bytes
    gone: bool = False


class WindowInbox:
    """A provider that lists everything it holds (a date window), in batches of ``batch``.

    ``release`` is what delivery does: ``Release.KEEP`` leaves the fax listed
    for ever (iFax), ``DELETE`` removes it, unless ``lagging`` (the provider
    still lists it for a while, as a window listing may).
    """

    def __init__(self, name: str, release: Release, *, batch: int = 2) -> None:
        self.name = name
        self.account = f"{name}-account"
        self.capabilities = Capabilities(receive=True, send=False, release=release)
        self.faxes: dict[str, Held] = {}
        self.batch = batch
        self.lagging = False
        self.calls: list[tuple[str, str | None]] = []
        self.fail_listing: list[Exception] = []
        self.before_download: Callable[[str], None] | None = None

    def add(self, remote_id: str, dnis: str = SALES) -> Held:
        fax = Held(remote_id, dnis, PDF + f"{self.name} {remote_id}\n".encode())
        self.faxes[remote_id] = fax
        return fax

    def _listing(self) -> Iterator[ListingBatch]:
        if self.fail_listing:
            raise self.fail_listing.pop(0)
        shown = [f for f in self.faxes.values() if not f.gone or self.lagging]
        for start in range(0, max(len(shown), 1), self.batch):
            part = shown[start : start + self.batch]
            yield ListingBatch(
                faxes=tuple(
                    RemoteFax(f.remote_id, T0 + timedelta(minutes=i), "3035550100", f.dnis)
                    for i, f in enumerate(part, start)
                ),
                unreadable=(Unreadable(1, "{garbled", "no id"),) if start == 0 else (),
                cursor="2024-03-04" if start + self.batch >= len(shown) else None,
            )

    def list_new(self, cursor: str | None, *, now: datetime) -> Iterator[ListingBatch]:
        self.calls.append(("list_new", cursor))
        yield from self._listing()

    def list_all(self, *, now: datetime) -> Iterator[ListingBatch]:
        self.calls.append(("list_all", None))
        yield from self._listing()

    def download(self, remote_id: str, dest: Path, *, max_bytes: int | None) -> Downloaded:
        self.calls.append(("download", remote_id))
        if self.before_download is not None:
            self.before_download(remote_id)
        fax = self.faxes[remote_id]
        dest.write_bytes(fax.data)
        return Downloaded(dest, len(fax.data), hashlib.sha256(fax.data).hexdigest(), "pdf")

    def release(self, remote_id: str) -> None:
        self.calls.append(("release", remote_id))
        fax = self.faxes[remote_id]
        if fax.gone:
            raise NotFoundError(f"{remote_id} is gone", operation="release")
        fax.gone = True

    def count(self, operation: str) -> int:
        return sum(1 for op, _ in self.calls if op == operation)


def pipeline(
    inbox: WindowInbox, db: Any, config: Config, book: ActionBook, clock: ManualClock, **kw: Any
) -> InboundPipeline:
    def actions_for(spec: ActionSpec, *, smtp: SmtpSettings | None) -> Action:
        """Recorders for commands; real folder actions (they render {provider})."""
        return (
            book(spec, smtp=smtp)
            if isinstance(spec, CommandSpec)
            else build_action(spec, smtp=smtp)
        )

    return InboundPipeline(
        inbox, db, config, actions_for=actions_for, clock=clock, rng=FixedRandom(0.0), **kw
    )


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return make_config(tmp_path, (recorder_route("all", "rec"),))


def rows(db: Any) -> list[tuple[str, str, str]]:
    with db.session() as session:
        return sorted((f.provider, f.remote_id, f.state) for f in session.query(InboundFax).all())


def test_a_fax_listed_at_every_poll_is_taken_once(
    db: Any, config: Config, book: ActionBook, clock: ManualClock
) -> None:
    """Kept on the server (iFax): three polls list it three times; one row, one delivery."""
    inbox = WindowInbox("ifax", Release.KEEP)
    a, b, c = inbox.add("77:a1"), inbox.add("78:b2"), inbox.add("79:c3")
    pipe = pipeline(inbox, db, config, book, clock)
    for _ in range(3):
        pipe.poll()
        clock.advance(60)
    assert rows(db) == [("ifax", "77:a1", "done"), ("ifax", "78:b2", "done"),
                        ("ifax", "79:c3", "done")]  # fmt: skip
    assert sorted(book["rec"].delivered) == sorted((f.remote_id, f.data) for f in (a, b, c))
    assert inbox.count("download") == 3
    assert inbox.count("release") == 0  # Release.KEEP: nothing is called on the provider
    assert pipe.ledger.cursor().cursor == "2024-03-04"  # the window start the adapter gave


def test_a_kept_fax_is_never_taken_again_nor_released_by_the_sweep(
    db: Any, config: Config, book: ActionBook, clock: ManualClock, logs: list[Any]
) -> None:
    """A done fax kept on the server is no leftover: the sweep neither re-releases nor redoes it."""
    inbox = WindowInbox("ifax", Release.KEEP)
    fax = inbox.add("5001:t1")
    pipe = pipeline(inbox, db, config, book, clock)
    assert pipe.poll().done == 1
    outcome = pipe.sweep()
    assert (outcome.new, outcome.done, outcome.errors) == (0, 0, 1)  # 1: the unreadable record
    assert inbox.count("release") == 0 and inbox.count("download") == 1
    assert book["rec"].delivered == [(fax.remote_id, fax.data)]
    assert not events(logs, "inbound.deleted_fax_listed_again")
    assert rows(db) == [("ifax", "5001:t1", "done")]


def test_a_deleted_fax_still_listed_by_a_lagging_window_is_not_delivered_twice(
    db: Any, config: Config, book: ActionBook, clock: ManualClock
) -> None:
    """VoIP.ms-like: deleted, yet the window still shows it; polls skip it, the sweep deletes it."""
    inbox = WindowInbox("voipms", Release.DELETE)
    fax = inbox.add("104")
    inbox.lagging = True
    pipe = pipeline(inbox, db, config, book, clock)
    assert pipe.poll().done == 1
    assert pipe.poll().new == 0
    assert inbox.count("download") == 1 and inbox.count("release") == 1
    assert pipe.sweep().new == 0
    assert inbox.count("release") == 2  # released again, its NotFoundError counts as done
    assert book["rec"].delivered == [(fax.remote_id, fax.data)]


def test_a_fax_twice_in_one_listing_makes_one_row(
    db: Any, config: Config, book: ActionBook, clock: ManualClock
) -> None:
    """Overlapping pages of one answer show a fax twice: still one row, one delivery."""
    inbox = WindowInbox("voipms", Release.DELETE, batch=1)
    fax = inbox.add("9")
    doubled = next(inbox.list_new(None, now=clock()))
    pipe = pipeline(inbox, db, config, book, clock)
    assert pipe.ledger.record_listing(doubled.faxes + doubled.faxes) == ["9"]
    assert pipe.ledger.record_listing(doubled.faxes) == []
    assert pipe.process_due().done == 1
    assert rows(db) == [("voipms", "9", "done")]
    assert book["rec"].delivered == [(fax.remote_id, fax.data)]


def test_two_providers_with_the_same_id_are_two_faxes_routed_by_provider(
    tmp_path: Path, db: Any, book: ActionBook, clock: ManualClock
) -> None:
    """Same remote id at two providers: two rows, each routed by `provider`, one dispatcher."""
    routes = (
        RouteSpec("voip", providers=("voipms",), actions=(CommandSpec(argv=("voip",)),)),
        RouteSpec(
            "rest",
            actions=(
                CommandSpec(argv=("rest",)),
                FolderSpec(f"{tmp_path}/fax/{{provider}}/{{recvid}}.{{ext}}"),
            ),
        ),
    )
    config = make_config(tmp_path, routes, concurrency=2)
    shared = Dispatcher(2)
    voipms, ifax = WindowInbox("voipms", Release.DELETE), WindowInbox("ifax", Release.KEEP)
    from_voipms, from_ifax = voipms.add("17"), ifax.add("17")
    pipes = [pipeline(p, db, config, book, clock, dispatcher=shared) for p in (voipms, ifax)]
    assert [p.poll().done for p in pipes] == [1, 1]
    assert rows(db) == [("ifax", "17", "done"), ("voipms", "17", "done")]
    assert book["voip"].delivered == [("17", from_voipms.data)]
    assert book["rest"].delivered == [("17", from_ifax.data)]
    assert (tmp_path / "fax" / "ifax" / "17.pdf").read_bytes() == from_ifax.data
    assert from_voipms.gone and not from_ifax.gone


def test_a_shared_dispatcher_claims_a_fax_per_provider_not_per_id(
    tmp_path: Path, db: Any, book: ActionBook, clock: ManualClock
) -> None:
    """While voipms fax 17 is being downloaded, ifax fax 17 is not "taken": it runs too."""
    config = make_config(tmp_path, (recorder_route("all", "rec"),), concurrency=2)
    shared = Dispatcher(2)
    voipms, ifax = WindowInbox("voipms", Release.DELETE), WindowInbox("ifax", Release.KEEP)
    voipms.add("17")
    ifax.add("17")
    inside, go_on = threading.Event(), threading.Event()

    def hold(remote_id: str) -> None:
        inside.set()
        assert go_on.wait(10)

    voipms.before_download = hold
    slow, quick = (pipeline(p, db, config, book, clock, dispatcher=shared) for p in (voipms, ifax))
    slow.ledger.record_listing(next(voipms.list_new(None, now=clock())).faxes)
    worker = threading.Thread(target=slow.process_due)
    worker.start()
    try:
        assert inside.wait(10)
        assert quick.poll().done == 1  # not skipped as "claimed by another pass"
    finally:
        go_on.set()
        worker.join(10)
    assert rows(db) == [("ifax", "17", "done"), ("voipms", "17", "done")]


def test_a_refused_login_pauses_only_that_provider_and_names_it(
    tmp_path: Path, db: Any, book: ActionBook, clock: ManualClock, logs: list[Any]
) -> None:
    """voipms refuses the login: its polling pauses with its name; ifax goes on delivering."""
    config = make_config(tmp_path, (recorder_route("all", "rec"),))
    voipms, ifax = WindowInbox("voipms", Release.DELETE), WindowInbox("ifax", Release.KEEP)
    voipms.add("1")
    ifax.add("2")
    voipms.fail_listing = [
        AuthError("VoIP.ms says invalid_credentials: check the API password", operation="list")
    ]
    broken, fine = (pipeline(p, db, config, book, clock) for p in (voipms, ifax))
    assert broken.poll().paused and not fine.poll().paused
    reason = broken.ledger.cursor().paused_reason
    assert reason is not None and reason.startswith("voipms: ") and "API password" in reason
    assert "voipms-account" in reason and fine.ledger.cursor().paused_reason is None
    assert [e["provider"] for e in events(logs, "inbound.login_refused")] == ["voipms"]
    assert rows(db) == [("ifax", "2", "done")]
    assert broken.poll().done == 1  # the login works again: resumed, nothing lost
    assert broken.ledger.cursor().paused_reason is None


def test_unreadable_records_are_kept_per_provider(
    db: Any, config: Config, book: ActionBook, clock: ManualClock
) -> None:
    """The same unreadable record from two providers is two problems, each warned once."""
    first, second = WindowInbox("voipms", Release.DELETE), WindowInbox("ifax", Release.KEEP)
    for inbox in (first, second):
        pipeline(inbox, db, config, book, clock).poll()
    from faxd.tables import problem_rows

    assert sorted((r["provider"], r["count"]) for r in problem_rows(db)) == [
        ("ifax", 1),
        ("voipms", 1),
    ]


def test_a_route_limited_to_another_provider_holds_the_fax(
    tmp_path: Path, db: Any, book: ActionBook, clock: ManualClock
) -> None:
    """A route with `provider` takes no fax of other providers; without a default it is held."""
    only = RouteSpec("voip", providers=("voipms",), actions=(CommandSpec(argv=("voip",)),))
    config = make_config(tmp_path, (only,))
    inbox = WindowInbox("ifax", Release.KEEP)
    inbox.add("3")
    assert pipeline(inbox, db, config, book, clock).poll().held == 1
    assert book["voip"].delivered == []
    config = replace(config, routes=(only, recorder_route("all", "rec")))
    pipe = pipeline(inbox, db, config, book, clock)
    pipe.retry("3")
    assert pipe.poll().done == 1 and book["rec"].delivered[0][0] == "3"
