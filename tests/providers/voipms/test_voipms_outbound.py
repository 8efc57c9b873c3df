"""VoIP.ms outbound through the provider interface: send (no id), then find and follow in SENT."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from voipms_helpers import VOIPMS_PASSWORD, VOIPMS_USER, FakeClock, settings_for, write_pdf

from faxd.errors import AuthError, PermanentError
from faxd.providers.base import JobOutcome, SendRequest
from faxd.providers.voipms import provider
from faxd.providers.voipms.client import VoipmsClient
from faxd.providers.voipms.sim import VoipmsSimulator
from faxd.sim.documents import make_pdf


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def timed_sim(clock: FakeClock) -> Iterator[VoipmsSimulator]:
    with VoipmsSimulator(VOIPMS_USER, VOIPMS_PASSWORD, clock=clock, settle_seconds=60) as sim:
        yield sim


def outbound(sim: VoipmsSimulator, clock: FakeClock, **changes: Any) -> provider.VoipmsOutbound:
    values: dict[str, Any] = {"from_number": "3035550101", "from_name": "Acme", **changes}
    settings = settings_for(sim, **values)
    client = VoipmsClient(VOIPMS_USER, VOIPMS_PASSWORD, base_url=sim.base_url, backoff=0.0)
    config: Any = SimpleNamespace(voipms=settings)
    return provider.make_outbound(config, client=client, clock=clock)


def request(tmp_path: Path, number: str, job_id: int = 1) -> SendRequest:
    data = make_pdf(f"job {job_id}")
    path = write_pdf(tmp_path, data, f"job{job_id}.pdf")
    return SendRequest(
        job_id=job_id,
        number=number,
        recipient="Bob",
        path=path,
        filename=path.name,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def test_send_returns_no_id_and_the_job_is_found_and_followed_in_sent(
    timed_sim: VoipmsSimulator, clock: FakeClock, tmp_path: Path
) -> None:
    out = outbound(timed_sim, clock)
    assert out.capabilities.send and not out.capabilities.send_returns_id
    before = clock.now
    timed_sim.fail_numbers.add("3035550177")
    assert out.send(request(tmp_path, "+13035550199", 1)) is None
    assert out.send(request(tmp_path, "+13035550177", 2)) is None
    assert [(j.number, j.from_number) for j in timed_sim.jobs] == [
        ("3035550199", "3035550101"),
        ("3035550177", "3035550101"),
    ]
    found = out.recent_jobs(before).jobs
    assert {(j.number, j.outcome) for j in found} == {
        ("3035550199", JobOutcome.PENDING),
        ("3035550177", JobOutcome.PENDING),
    }
    ids = {j.number: j.remote_id for j in found}
    clock.now += timedelta(seconds=61)
    done = {j.remote_id: j for j in out.statuses(list(ids.values())).jobs}
    assert done[ids["3035550199"]].outcome is JobOutcome.SENT
    failed = done[ids["3035550177"]]
    assert failed.outcome is JobOutcome.FAILED
    assert failed.reason == "NO ANSWER"
    assert out.statuses([ids["3035550199"]]).jobs[0].remote_id == ids["3035550199"]
    assert out.statuses([]).jobs == ()


def test_recent_jobs_leaves_out_older_sends(
    timed_sim: VoipmsSimulator, clock: FakeClock, tmp_path: Path
) -> None:
    out = outbound(timed_sim, clock)
    out.send(request(tmp_path, "+13035550111", 1))
    clock.now += timedelta(hours=1)
    since = clock.now
    out.send(request(tmp_path, "+13035550122", 2))
    assert [j.number for j in out.recent_jobs(since).jobs] == ["3035550122"]
    assert len(out.recent_jobs(since - timedelta(hours=2)).jobs) == 2


def test_international_numbers_are_dialled_with_011() -> None:
    assert provider.to_number("+13035550199") == "3035550199"
    assert provider.to_number("+493012345678") == "011493012345678"


def test_send_without_from_number_is_refused(
    timed_sim: VoipmsSimulator, clock: FakeClock, tmp_path: Path
) -> None:
    out = outbound(timed_sim, clock, from_number="")
    assert not out.capabilities.send
    with pytest.raises(PermanentError, match="from_number"):
        out.send(request(tmp_path, "+13035550199"))
    assert timed_sim.requests == []


def test_cancel_is_not_supported(timed_sim: VoipmsSimulator, clock: FakeClock) -> None:
    out = outbound(timed_sim, clock)
    assert not out.capabilities.cancel
    with pytest.raises(PermanentError, match="portal"):
        out.cancel("1")
    out.forget("1")
    assert timed_sim.requests == []


def test_check_login_reads_the_folders(voipms_sim: VoipmsSimulator) -> None:
    config: Any = SimpleNamespace(voipms=settings_for(voipms_sim))
    checker = provider.make_checker(config)
    assert checker.check_login() == (
        f"logged in as {VOIPMS_USER}; 3 fax folders (ARCHIVE, INBOX, SENT)"
    )
    assert [m for m, _ in voipms_sim.requests] == ["getFaxFolders"]
    voipms_sim.inject("ip")
    with pytest.raises(AuthError, match="allow-list"):
        checker.check_login()
