"""Two ``faxd run`` processes, one PostgreSQL database, one FAXAGE account (issue 14).

Each test runs real daemons (``python -m faxd run``, :mod:`instances_helper`)
against the real PostgreSQL server (a fresh database per test), the FAXAGE
simulator in this process (its ``delete_check`` sees every delfax) and real
folders that both instances share as they would a network share.  One
instance ("steady") keeps running; the other ("victim") is killed with
SIGKILL, at random moments while it holds claims, and started again, or
stopped for good.  The seed of the random moments is printed (pytest shows it
with a failure) and can be set with ``FAXD_INSTANCES_SEED``.

What may legitimately repeat after a SIGKILL is known exactly: only a fax
the killed instance held a claim on when it died (its lease outlives it, so
the rows it held are read right after the kill) may be downloaded or deleted
a second time (the provider's answer to a repeated delete is "not found").
A fax downloaded or deleted twice that no dead instance held was worked by
two instances at once: a missing claim.
"""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from instances_helper import (
    Office,
    all_faxes_done,
    delete_after_delivery,
    delivered_once,
    running_office,
    wait_until,
)

from faxd.sim.documents import make_pdf

#: The SIGKILLs each crash test lands, and the waves of work between them.
KILLS = 10
#: Seconds a test waits for work to finish: generous, never a measurement.
DRAIN_TIMEOUT = 180.0
#: Seconds the takeover after a death may take beyond lease_seconds + one poll interval:
#: the work on the faxes taken over (well below the default lease of 60 s).
TAKEOVER_ROOM = 20.0
#: Seconds to wait for the killed instance to hold a claim before killing it anyway.
AT_WORK_TIMEOUT = 10.0

FAXES = "inbound_faxes"

pytestmark = pytest.mark.slow


def seeded_random(test: str) -> random.Random:
    seed = int(os.environ.get("FAXD_INSTANCES_SEED", "1414"))
    print(f"{test}: random seed {seed} (set FAXD_INSTANCES_SEED to replay another)")
    return random.Random(seed)


def kill_at_work(victim: Any, rng: random.Random, busy: Callable[[], object]) -> bool:
    """SIGKILL ``victim`` at a random moment once ``busy()`` says it is at work (or after
    AT_WORK_TIMEOUT without); whether it was still at work when it died."""
    deadline = time.monotonic() + AT_WORK_TIMEOUT
    while not busy() and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 0.4))
    assert victim.kill(), f"{victim.name} had exited on its own:\n{victim.log_tail()}"
    return bool(busy())  # what a dead instance held stays recorded until taken over


def test_two_instances_deliver_100_faxes_once_while_one_is_killed_again_and_again(
    tmp_path: Path, sim: Any, pg_url: Any
) -> None:
    """100 faxes, 10 SIGKILLs of one instance: each fax delivered once, deleted after."""
    rng = seeded_random("100 faxes")
    sim.latency = 0.15  # a fax takes a while, so both take some and the kills land inside
    office = Office(tmp_path, sim, pg_url)
    sim.delete_check = delete_after_delivery(office)
    steady, victim = office.instance("steady"), office.instance("victim")
    faxes: list[Any] = []
    held_at_death: set[str] = set()
    kills = at_work = 0
    with running_office(office):
        steady.start().wait_ready()  # migrates the empty database first
        for _wave in range(KILLS):
            victim.start().wait_ready()
            faxes += sim.seed_inbound(100 // KILLS)
            at_work += kill_at_work(victim, rng, lambda: office.held_by(FAXES, victim.name))
            held_at_death |= set(office.held_by(FAXES, victim.name))  # its lease outlives it
            kills += 1
        victim.start().wait_ready()
        wait_until(
            all_faxes_done(office, faxes), DRAIN_TIMEOUT, "every fax deleted and done",
            office=office, seen=office.fax_states,
        )  # fmt: skip
        assert steady.running, steady.log_tail()

    print(f"{kills} kills, {at_work} while the victim held a claim")
    assert at_work >= KILLS // 2, f"only {at_work} of {kills} kills hit the victim at work"
    assert sim.violations == []
    assert delivered_once(office, faxes) == []
    assert all(fax.deleted for fax in faxes)
    # What a SIGKILL may repeat: the faxes the victim was in the middle of, no other.
    assert office.repeated("getfax") <= held_at_death, office.repeated("getfax") - held_at_death
    assert office.repeated("delfax") <= held_at_death, office.repeated("delfax") - held_at_death
    worked = Counter(office.worked_by(FAXES).values())
    assert set(worked) == {"steady", "victim"}, worked  # both shared the work


def test_shared_hot_folder_posts_each_of_200_drops_once_despite_kills(
    tmp_path: Path, sim: Any, pg_url: Any
) -> None:
    """200 files dropped into one hot folder two instances poll: one sendfax each."""
    rng = seeded_random("200 drops")
    office = sending_office(tmp_path, sim, pg_url)
    steady, victim = office.instance("steady"), office.instance("victim")
    documents = unique_documents(200)
    names: dict[str, bytes] = {}
    kills = at_work = 0
    wave = len(documents) // KILLS
    with running_office(office):
        for first in range(0, len(documents), wave):
            if first == 0:
                # Both start at once on a full hot folder: they migrate the empty
                # database together and their first scans race for the same files.
                for n in range(wave):
                    names[office.drop(n, documents[n]).name] = documents[n]
                steady.start()
                victim.start()
                steady.wait_ready()
                victim.wait_ready()
            else:
                victim.start().wait_ready()
                for n in range(first, first + wave):
                    names[office.drop(n, documents[n]).name] = documents[n]
            at_work += kill_at_work(victim, rng, lambda: office.in_hand(victim.name))
            kills += 1
        victim.start().wait_ready()

        wait_until(
            all_sent(office, len(documents)), DRAIN_TIMEOUT, "every drop sent, none left",
            office=office, seen=lambda: sending_state(office),
        )  # fmt: skip
        assert steady.running, steady.log_tail()

    print(f"{kills} kills, {at_work} while the victim had drops in hand")
    assert at_work >= KILLS // 2, f"only {at_work} of {kills} kills hit the victim at work"
    assert_each_posted_once(office, names)


def sending_office(tmp_path: Path, sim: Any, pg_url: Any) -> Office:
    """Two instances' office sending only, on a simulator whose answers take a while."""
    sim.latency = 0.1  # a POST takes a while, so the kills land inside the submissions
    sim.job_seconds = 0.2
    # Some sendfax answers come late: the job is "submitting" on one instance all that
    # while, and the other, reconciling, must leave it alone rather than post it again.
    sim.slow_seconds = 0.3  # well below a restart, so a killed POST is recorded by then
    sim.faults.inject("slow", operation="sendfax", rate=0.3)
    return Office(tmp_path, sim, pg_url, inbound=False, outbound=True)


def unique_documents(count: int) -> dict[int, bytes]:
    """``count`` PDFs, each with text of its own (so each is told apart by its sha256)."""
    tag = uuid.uuid4().hex[:8]
    return {n: make_pdf(f"drop {n} {tag}") for n in range(count)}


def all_sent(office: Office, count: int) -> Callable[[], bool]:
    """A condition: at least ``count`` jobs, all finished, nothing left in the hot folder
    (more jobs than drops end the wait too: :func:`assert_each_posted_once` says so)."""

    def check() -> bool:
        states = office.job_states()
        finished = not set(states) - {"sent", "failed", "cancelled"}
        return states.total() >= count and finished and not office.hot_leftovers()

    return check


def sending_state(office: Office) -> object:
    """What a failed wait for the outbound drain shows."""
    return office.unfinished_jobs()[:5], office.hot_leftovers()[:5], office.roles()


def assert_each_posted_once(office: Office, names: dict[str, bytes]) -> None:
    """Each dropped document (file name -> bytes) posted once and filed in sent/ once."""
    assert office.job_states() == Counter({"sent": len(names)})
    posted = office.sent_documents()
    assert set(posted.values()) == {1}, [h for h, n in posted.items() if n > 1]
    assert len(posted) == len(names)
    assert office.sim.sendfax_posts == len(names)
    in_sent = {p.name: p.read_bytes() for p in office.sent.iterdir() if p.is_file()}
    assert in_sent == names
    assert list(office.failed.iterdir()) == []
    assert office.hot_leftovers() == []


def test_survivor_sends_the_dead_instances_drops(tmp_path: Path, sim: Any, pg_url: Any) -> None:
    """One of two instances dies for good with drops in hand: once its claims lapse the
    other sends them, once each, and adopts what lay in the dead one's claim folder."""
    office = sending_office(tmp_path, sim, pg_url)
    first, second = office.instance("first"), office.instance("second")
    documents = unique_documents(43)
    names: dict[str, bytes] = {}
    with running_office(office):
        first.start().wait_ready()
        second.start().wait_ready()
        for n in range(40):
            names[office.drop(n, documents[n]).name] = documents[n]
        wait_until(
            lambda: office.in_hand(second.name), 60, "the victim holding drops",
            office=office, seen=lambda: sending_state(office),
        )  # fmt: skip
        assert second.kill()
        in_hand = office.in_hand(second.name)
        # What a death right after its rename into the claim folder leaves there.
        for n in range(40, 43):
            names[office.drop(n, documents[n], claimed_by=second.name).name] = documents[n]
        # Its claims lapse after the lease, and so does its claim folder: the survivor
        # takes both over at its next pass or rescan.
        takeover = office.lease_seconds + office.rescan_interval + TAKEOVER_ROOM
        took = wait_until(
            all_sent(office, len(documents)), takeover, "the survivor sending every drop",
            office=office, seen=lambda: sending_state(office),
        )  # fmt: skip
        print(f"{in_hand} in the dead one's hand; all sent {took:.1f} s after its death")
        assert first.running, first.log_tail()

    assert in_hand, "the victim held nothing when it died"
    assert_each_posted_once(office, names)


def test_survivor_finishes_the_dead_instances_work_within_its_lease(
    tmp_path: Path, sim: Any, pg_url: Any
) -> None:
    """The lister dies for good mid-drain: within lease_seconds + one poll interval the
    other has taken over its faxes and the listing, and it finishes everything."""
    sim.latency = 0.15
    office = Office(tmp_path, sim, pg_url, lease_seconds=6, poll_interval=1)
    sim.delete_check = delete_after_delivery(office)
    first, second = office.instance("first"), office.instance("second")
    with running_office(office):
        first.start().wait_ready()
        second.start().wait_ready()
        faxes = sim.seed_inbound(24)  # a short backlog: the takeover is not queued behind it

        def lister_at_work() -> bool:
            lister = office.lister()
            return lister is not None and bool(office.held_by(FAXES, lister))

        wait_until(
            lister_at_work, 60, "the lister holding a fax",
            office=office, seen=lambda: (office.lister(), office.fax_states()),
        )  # fmt: skip
        victim = first if office.lister() == "first" else second
        survivor = second if victim is first else first
        assert victim.kill()
        held = set(office.held_by(FAXES, victim.name))  # until its lease ends
        late = sim.seed_inbound(10)  # only a live lister finds these
        faxes += late
        # Taking over waits for the lease to end, then for the survivor's next poll;
        # ROOM is for the few faxes' own work on a loaded machine.
        takeover = office.lease_seconds + office.poll_interval + TAKEOVER_ROOM

        def taken_over() -> bool:
            rows = office.worked_by(FAXES)
            return all(rows.get(str(fax.recvid)) for fax in late) and all(
                office.fax_row(remote_id) == ("done", survivor.name) for remote_id in held
            )

        took = wait_until(
            taken_over, takeover, "the survivor finishing the dead one's faxes and listing",
            office=office, seen=lambda: {r: office.fax_row(r) for r in held},
        )  # fmt: skip
        wait_until(
            all_faxes_done(office, faxes), DRAIN_TIMEOUT, "the survivor finishing every fax",
            office=office, seen=office.fax_states,
        )  # fmt: skip
        print(f"{sorted(held)} held by {victim.name} at its death; taken over in {took:.1f} s")
        assert survivor.running, survivor.log_tail()
        assert office.lister() == survivor.name

    assert held, "the victim held nothing when it died"
    assert sim.violations == []
    assert delivered_once(office, faxes) == []
    assert office.repeated("getfax") <= held, office.repeated("getfax") - held
    assert office.repeated("delfax") <= held, office.repeated("delfax") - held


def test_two_idle_instances_list_the_account_about_as_often_as_one(
    tmp_path: Path, sim: Any, pg_url: Any
) -> None:
    """listfax divides between two instances: at most one per poll interval, plus slack."""
    office = Office(tmp_path, sim, pg_url, poll_interval=1)
    instances = [office.instance("first"), office.instance("second")]
    intervals = 8
    with running_office(office):
        for instance in instances:
            instance.start().wait_ready()
        time.sleep(2 * office.poll_interval)  # past the start-up polls
        before = len(office.requests("listfax"))
        time.sleep(intervals * office.poll_interval)  # an observation window, not a timing
        listed = len(office.requests("listfax")) - before
        lister = office.lister()
        assert all(i.running for i in instances), office.logs()
    print(f"{listed} listfax calls in {intervals} poll intervals with two instances")
    assert listed <= intervals + 2, f"{listed} listfax calls in {intervals} intervals"
    assert listed >= intervals // 2, f"only {listed} listfax calls in {intervals} intervals"
    assert lister in ("first", "second")  # one of them holds the listing role
