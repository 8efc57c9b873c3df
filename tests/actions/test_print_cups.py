"""The print action against a real CUPS scheduler (a private ``cupsd``, see cupsd_helper).

What only CUPS can show: the job id ``lp`` prints is a job CUPS really took,
the bytes reach the printer's device unchanged, copies and options reach the
job, and a paused or rejecting queue, or a CUPS that is down, fails the action
with a reason a person can act on (so the fax is kept).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from cupsd_helper import PrivateCups, unavailable_reason

from faxd.actions.base import Deliverable
from faxd.actions.print import PrintAction
from faxd.config import PrintSpec
from faxd.errors import DeliveryError

MakeItem = Callable[..., Deliverable]

pytestmark = pytest.mark.skipif(unavailable_reason() is not None, reason=str(unavailable_reason()))


@pytest.fixture(scope="module")
def cups() -> Iterator[PrivateCups]:
    server = PrivateCups().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def queue(cups: PrivateCups, request: pytest.FixtureRequest) -> tuple[str, PrivateCups]:
    """A fresh, enabled queue named after the test."""
    name = "q" + str(abs(hash(request.node.name)) % 10**8)
    cups.add_queue(name)
    return name, cups


def test_cups_takes_the_job_and_the_bytes_reach_the_device(
    queue: tuple[str, PrivateCups], make_item: MakeItem
) -> None:
    """lp's job id names a job CUPS completes; the device receives the fax's exact bytes."""
    name, cups = queue
    data = b"%PDF-1.4\n% a real fax body\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
    item = make_item(recvid=8101, data=data)

    job = PrintAction(PrintSpec(printer=name), env=cups.env).deliver(item)

    assert job.startswith(f"{name}-")
    cups.wait_for_job(job)
    assert (cups.devices / name).read_bytes() == data


def test_copies_sides_and_title_reach_the_job(
    queue: tuple[str, PrivateCups], make_item: MakeItem
) -> None:
    """copies and -o options given in the route are what CUPS hands its filters."""
    name, cups = queue
    spec = PrintSpec(printer=name, options=("sides=two-sided-long-edge",), copies=2)

    job = PrintAction(spec, env=cups.env).deliver(make_item(recvid=8102, cid="7205550142"))

    cups.wait_for_job(job)
    argv = cups.job_argv(job)
    assert argv[3] == "Fax 8102 from 7205550142"
    assert argv[4] == "2"
    assert "sides=two-sided-long-edge" in argv[5].split()


def test_a_paused_queue_fails_the_action_and_says_how_to_resume(
    queue: tuple[str, PrivateCups], make_item: MakeItem
) -> None:
    """CUPS would accept and hold the job; faxd refuses, so the fax stays until it prints."""
    name, cups = queue
    cups.run("cupsdisable", "-r", "toner low", name)

    with pytest.raises(DeliveryError) as caught:
        PrintAction(PrintSpec(printer=name), env=cups.env).deliver(make_item(recvid=8103))

    assert caught.value.transient is True
    message = str(caught.value)
    assert "paused" in message and "toner low" in message and f"cupsenable {name}" in message
    assert cups.run("lpstat", "-o", name, check=False).stdout == ""  # nothing was queued


def test_a_rejecting_queue_fails_the_action_and_says_how_to_accept(
    queue: tuple[str, PrivateCups], make_item: MakeItem
) -> None:
    """A queue that rejects jobs fails the print with the cupsaccept command."""
    name, cups = queue
    cups.run("cupsreject", "-r", "maintenance", name)

    with pytest.raises(DeliveryError) as caught:
        PrintAction(PrintSpec(printer=name), env=cups.env).deliver(make_item(recvid=8104))

    assert caught.value.transient is True
    message = str(caught.value)
    assert "rejecting" in message and "maintenance" in message
    assert f"cupsaccept {name}" in message


def test_the_default_queue_is_checked_too(
    queue: tuple[str, PrivateCups], make_item: MakeItem
) -> None:
    """printer = "" prints to CUPS's default, and a paused default is refused the same way."""
    name, cups = queue
    cups.run("lpadmin", "-d", name)
    job = PrintAction(PrintSpec(printer=""), env=cups.env).deliver(make_item(recvid=8105))
    assert job.startswith(f"{name}-")

    cups.run("cupsdisable", name)
    with pytest.raises(DeliveryError, match=f"cupsenable {name}"):
        PrintAction(PrintSpec(printer=""), env=cups.env).deliver(make_item(recvid=8106))


def test_cups_down_fails_the_action_retryably(make_item: MakeItem) -> None:
    """With the scheduler stopped, lp fails; the error is transient and points at CUPS."""
    cups = PrivateCups().start()
    try:
        name = "gone"
        cups.add_queue(name)
        cups.stop_scheduler_only()
        with pytest.raises(DeliveryError) as caught:
            PrintAction(PrintSpec(printer=name), env=cups.env).deliver(make_item(recvid=8107))
    finally:
        cups.stop()
    assert caught.value.transient is True
    assert "lpstat -r" in str(caught.value)
