"""Injected faults: each kind, how often it fires, and latency."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from simapi import Api

from faxd.sim import FaxageSimulator


def test_http500(sim: FaxageSimulator, api: Api) -> None:
    """http500 answers HTTP 500 with a text body, then the fault is used up."""
    sim.inject("http500", times=1)
    first = api.call("listfax")
    assert first.status_code == 500 and "Internal Server Error" in first.text
    assert api.call("listfax").status_code == 200


def test_err01_and_err02_per_endpoint(sim: FaxageSimulator, api: Api) -> None:
    """err01/err02 use each endpoint's own text (lower case on getcdr.php and provision.php)."""
    sim.inject("err01", times=2)
    assert api.text("listlines") == "ERR01: Database connection failed"
    assert api.getcdr(nuidgt="0") == "ERR01: database connection failed"
    sim.inject("err02", times=2)
    assert api.text("listlines") == "ERR02: Login incorrect"
    assert api.provision("listac") == "ERR02: login incorrect"
    assert api.text("listlines").startswith("3035550101")


def test_err08_echoes_the_whole_post(sim: FaxageSimulator, api: Api) -> None:
    """err08 answers ERR08 with the POST echoed like PHP's print_r, password and files included."""
    (fax,) = sim.seed_inbound(1)
    sim.inject("err08", operation="sendfax", times=1)
    pairs = [*api.login(), ("operation", "sendfax"), ("faxno", "3035550199"),
             ("faxfilenames[]", "a.pdf"), ("faxfiledata[]", "JVBERi0xLjQK+/=")]
    answer = api.raw("/httpsfax.php", pairs)
    assert answer.status_code == 200
    unknown = api.raw("/httpsfax.php", [*pairs[:3], ("operation", "nosuchop"), *pairs[4:]])
    assert answer.text == unknown.text.replace("[operation] => nosuchop", "[operation] => sendfax")
    assert answer.text.startswith("ERR08: Unknown operation specified or bad POST Array\n(\n")
    assert f"    [password] => {sim.password}\n" in answer.text
    assert "            [0] => JVBERi0xLjQK+/=\n" in answer.text
    assert sim.jobs == {} and sim.sendfax_posts == 1  # answered instead of the operation
    assert api.text("listfax").startswith(str(fax.recvid))  # other operations unaffected
    sim.inject("err08", operation="delfax", times=1, after=True)
    deleted = api.text("delfax", faxid=str(fax.recvid))
    assert deleted.startswith("ERR08: ") and f"[faxid] => {fax.recvid}" in deleted
    assert fax.deleted


def test_fault_limited_to_operation(sim: FaxageSimulator, api: Api) -> None:
    """A fault for one operation leaves the others alone and is not used up by them."""
    (fax,) = sim.seed_inbound(1)
    sim.inject("err01", operation="delfax", times=1)
    assert api.text("listfax").startswith(str(fax.recvid))
    assert api.text("delfax", faxid=str(fax.recvid)) == "ERR01: Database connection failed"
    assert not fax.deleted
    assert api.text("delfax", faxid=str(fax.recvid)) == f"{fax.recvid} Deleted"


def test_err13_only_getfax(sim: FaxageSimulator, api: Api) -> None:
    """err13 answers 'ERR13: File could not be opened' to getfax and nothing else."""
    (fax,) = sim.seed_inbound(1)
    sim.inject("err13")
    assert api.text("listfax").startswith(str(fax.recvid))
    assert api.text("getfax", faxid=str(fax.recvid)) == "ERR13: File could not be opened"
    sim.clear_faults()
    assert api.call("getfax", faxid=str(fax.recvid)).content == fax.data
    with pytest.raises(ValueError, match="getfax"):
        sim.inject("err13", operation="listfax")


def test_reset_closes_without_answer(sim: FaxageSimulator, api: Api) -> None:
    """reset drops the connection with no answer; the request is logged, nothing is done."""
    sim.inject("reset", operation="sendfax", times=1)
    with pytest.raises(requests.ConnectionError):
        api.call("sendfax", ("faxurl", "https://example.com/x"), faxno="3035550199")
    assert sim.jobs == {} and sim.sendfax_posts == 1
    assert api.text("listlines").startswith("3035550101")


def test_reset_after_applies_then_drops(sim: FaxageSimulator, api: Api) -> None:
    """With after=True the job is created but its answer never arrives."""
    sim.inject("reset", operation="sendfax", times=1, after=True)
    with pytest.raises(requests.ConnectionError):
        api.call("sendfax", ("faxurl", "https://example.com/x"), faxno="3035550199")
    assert len(sim.jobs) == 1


def test_http500_after_delfax_deleted(sim: FaxageSimulator, api: Api) -> None:
    """An after=True http500 on delfax deletes the fax yet answers 500."""
    (fax,) = sim.seed_inbound(1)
    sim.inject("http500", operation="delfax", after=True)
    assert api.call("delfax", faxid=str(fax.recvid)).status_code == 500
    assert fax.deleted


def test_slow_delays_answer(sim: FaxageSimulator, api: Api) -> None:
    """slow holds the answer back slow_seconds; a shorter client timeout gives up."""
    sim.slow_seconds = 0.4
    sim.inject("slow", operation="listlines", times=2)
    started = time.monotonic()
    assert api.text("listlines").startswith("3035550101")
    assert time.monotonic() - started >= 0.4
    url = sim.base_url + "/httpsfax.php"
    with pytest.raises(requests.Timeout):
        requests.post(url, data=[*api.login(), ("operation", "listlines")], timeout=0.1)


def test_truncate_getfax(sim: FaxageSimulator, api: Api) -> None:
    """truncate sends the full Content-Length but only part of the body, then closes."""
    (fax,) = sim.seed_inbound(1, size=40_000)
    sim.inject("truncate", times=1)
    api.text("listfax")  # not a download: the fault waits for one
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.call("getfax", faxid=str(fax.recvid))
    assert api.call("getfax", faxid=str(fax.recvid)).content == fax.data


def test_truncate_dlstatus_streamed(sim: FaxageSimulator, api: Api) -> None:
    """truncate applies to dlstatus too; a streamed read sees fewer bytes than announced."""
    url = sim.base_url + "/httpsfax.php"
    answer = api.text("sendfax", ("faxurl", "https://example.com/x"), faxno="3035550199")
    jobid = answer.split()[1]
    sim.inject("truncate", operation="dlstatus")
    pairs = [*api.login(), ("operation", "dlstatus"), ("jobid", jobid), ("viewtype", "pdf")]
    with requests.post(url, data=pairs, stream=True, timeout=5) as response:
        announced = int(response.headers["Content-Length"])
        got = b""
        with pytest.raises(requests.exceptions.ChunkedEncodingError):
            for chunk in response.iter_content(64):
                got += chunk
    assert 0 < len(got) < announced


def test_truncate_data_path(sim: FaxageSimulator, api: Api, tmp_path: Path) -> None:
    """A file served from disk is truncated the same way."""
    path = tmp_path / "f.pdf"
    path.write_bytes(b"%PDF-1.4\n" + b"x" * 3_000_000)
    fax = sim.add_fax("3035550101", data_path=path)
    sim.inject("truncate", operation="getfax", times=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        api.call("getfax", faxid=str(fax.recvid))


def test_rate_is_reproducible_with_seed() -> None:
    """The same seed makes the same requests fail."""

    def pattern(seed: int) -> list[bool]:
        with FaxageSimulator(seed=seed) as sim, requests.Session() as session:
            api = Api(sim, session)
            sim.inject("err01", operation="listlines", rate=0.5)
            return [api.call("listlines").text.startswith("ERR01") for _ in range(24)]

    first, second = pattern(7), pattern(7)
    assert first == second
    assert 0 < sum(first) < 24


def test_times_with_rate_stops_after_times(sim: FaxageSimulator, api: Api) -> None:
    """times and rate together fire at random until times is used up."""
    sim.inject("err01", operation="listlines", rate=0.5, times=2)
    answers = [api.text("listlines") for _ in range(60)]
    assert sum(a.startswith("ERR01") for a in answers) == 2
    assert sim.faults.active == []


def test_clear_faults(sim: FaxageSimulator, api: Api) -> None:
    """clear_faults removes every fault."""
    sim.inject("http500")
    sim.inject("err01", operation="listfax")
    sim.clear_faults()
    assert api.call("listlines").status_code == 200


def test_latency_added_to_every_answer(sim: FaxageSimulator, api: Api) -> None:
    """latency delays every answer."""
    sim.latency = 0.2
    started = time.monotonic()
    api.text("listlines")
    api.text("listfax")
    assert time.monotonic() - started >= 0.4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "explode"}, "unknown fault kind"),
        ({"kind": "err01", "times": 0}, "times"),
        ({"kind": "err01", "rate": 1.5}, "rate"),
        ({"kind": "truncate", "operation": "listfax"}, "truncate"),
        ({"kind": "slow", "after": True}, "after"),
    ],
)
def test_inject_rejects_nonsense(
    sim: FaxageSimulator, kwargs: dict[str, object], message: str
) -> None:
    """inject names what is wrong with a bad fault."""
    kind = str(kwargs.pop("kind"))
    with pytest.raises(ValueError, match=message):
        sim.inject(kind, **kwargs)  # type: ignore[arg-type]


def test_stop_does_not_wait_for_slow_answers() -> None:
    """stop() returns promptly even while a slow answer is being held back.

    The answer is held for 600 s, so a stop that waited for it would take that
    long; the bound below is generous for a loaded machine and still tells.
    """
    sim = FaxageSimulator(slow_seconds=600).start()
    sim.inject("slow")
    url = sim.base_url + "/httpsfax.php"
    caller = threading.Thread(
        target=lambda: _swallow(lambda: requests.post(url, data={"operation": "x"}, timeout=10)),
        daemon=True,
    )
    caller.start()
    time.sleep(0.2)
    started = time.monotonic()
    sim.stop()
    assert time.monotonic() - started < 60
    caller.join(timeout=60)


def _swallow(call: Callable[[], object]) -> None:
    with contextlib.suppress(requests.RequestException):
        call()
