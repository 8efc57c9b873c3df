"""faxnummer.de behind the provider interface, and its simulator's own contract."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import requests

from faxd.config import Config
from faxd.config.model import FaxnummerSettings
from faxd.errors import AuthError, PermanentError
from faxd.providers import registry
from faxd.providers.base import JobOutcome, OnlineCheck, SendRequest
from faxd.providers.faxnummer import provider
from faxd.providers.faxnummer.sim import FaxnummerSimulator
from faxd.sim.documents import make_pdf


def config_for(sim: FaxnummerSimulator, **changes: str) -> Config:
    values: dict[str, Any] = {
        "product_login": sim.login,
        "product_code": sim.code,
        "base_url": sim.base_url,
        "status_email": "fax@acme.example",
    }
    values.update(changes)
    # The provider module reads only config.faxnummer; parsing [faxnummer] is the loader's job.
    return cast(Config, SimpleNamespace(faxnummer=FaxnummerSettings(**values)))


def request_for(tmp_path: Path, number: str = "+4930555") -> SendRequest:
    data = make_pdf("provider test")
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return SendRequest(
        job_id=42,
        number=number,
        recipient="Berlin office",
        path=path,
        filename="doc.pdf",
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
    )


def test_capabilities_say_send_pdf_only_without_reconcile_or_cancel() -> None:
    caps = provider.CAPABILITIES
    assert (caps.receive, caps.send, caps.send_types) == (False, True, frozenset({"pdf"}))
    assert (caps.send_returns_id, caps.reconcile, caps.cancel) == (True, False, False)
    assert not hasattr(provider, "make_inbound")


def test_configured_follows_the_section() -> None:
    assert provider.configured(cast(Config, SimpleNamespace(faxnummer=None))) is False
    with FaxnummerSimulator() as sim:
        assert provider.configured(config_for(sim)) is True


def test_outbound_sends_and_follows_through_the_registry(tmp_path: Path) -> None:
    with FaxnummerSimulator(answer_format="xml", settle_seconds=0) as sim:
        sim.fail_numbers.add("+4930666")
        outbound = registry.make_outbound(config_for(sim), "faxnummer", sleep=lambda _: None)
        assert (outbound.name, outbound.account) == ("faxnummer", sim.login)
        ok = outbound.send(request_for(tmp_path))
        bad = outbound.send(request_for(tmp_path, "+4930666"))
        assert ok is not None
        assert bad is not None
        answer = outbound.statuses([ok, bad, "faxsend-unknown"])
        outcomes = {job.remote_id: job.outcome for job in answer.jobs}
        assert outcomes == {ok: JobOutcome.SENT, bad: JobOutcome.FAILED}
        assert sim.jobs[0].reference == "faxd job 42: doc.pdf"
        outbound.forget(ok)


def test_reconcile_and_cancel_refuse_with_a_reason() -> None:
    with FaxnummerSimulator() as sim:
        outbound = provider.make_outbound(config_for(sim))
        with pytest.raises(PermanentError, match="customer centre"):
            outbound.recent_jobs(sim.clock())
        with pytest.raises(PermanentError, match="no function to cancel"):
            outbound.cancel("faxsend-x")


def test_checker_reports_honestly_and_refuses_a_wrong_code() -> None:
    with FaxnummerSimulator(answer_format="json") as sim:
        checker = registry.make_checker(config_for(sim), "faxnummer")
        assert isinstance(checker, OnlineCheck)
        said = checker.check_login()
        assert "no read-only call" in said
        assert "Job not found" in said
        assert [op for op, _ in sim.requests] == ["GetSentFaxStatus"]
        assert sim.jobs == []
        wrong = provider.make_checker(config_for(sim, product_code="not-it"))
        with pytest.raises(AuthError, match="sProductCode"):
            wrong.check_login()


def test_registry_refuses_inbound() -> None:
    with FaxnummerSimulator() as sim, pytest.raises(ValueError, match="cannot receive"):
        registry.make_inbound(config_for(sim), "faxnummer")


@pytest.mark.parametrize(
    ("kind", "kw", "words"),
    [
        ("err02", {}, "unknown fault kind"),
        ("auth", {"after": True}, "after=True"),
        ("http500", {"operation": "getfax"}, "unknown operation"),
        ("slow", {"times": 0}, "at least 1"),
        ("reset", {"rate": 2.0}, "probability"),
    ],
)
def test_sim_refuses_faults_it_cannot_inject(kind: str, kw: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match=words):
        FaxnummerSimulator().inject(kind, **kw)


def test_sim_rate_faults_are_reproducible_by_seed() -> None:
    """The same seed fires the same faults on the same requests."""

    def fired(seed: int) -> list[int]:
        with FaxnummerSimulator(seed=seed) as sim:
            sim.inject("http500", rate=0.5)
            form = {"sProductLogin": sim.login, "sProductCode": sim.code}
            codes = []
            for _ in range(12):
                files = {k: (None, v) for k, v in {**form, "sCommand": "GetSentFaxStatus"}.items()}
                codes.append(requests.post(sim.base_url, files=files, timeout=10).status_code)
            return codes

    first = fired(7)
    assert first == fired(7)
    assert 200 in first
    assert 500 in first


def test_sim_refuses_a_non_pdf_and_a_wrong_path() -> None:
    with FaxnummerSimulator() as sim:
        form: dict[str, Any] = {
            "sProductLogin": (None, sim.login),
            "sProductCode": (None, sim.code),
            "sCommand": (None, "SendFax"),
            "sDestination": (None, "004930555"),
            "sEmail": (None, "a@b.example"),
            "sFax": ("x.pdf", b"GIF89a not a pdf", "application/pdf"),
        }
        answer = requests.post(sim.base_url, files=form, timeout=10)
        assert "Fax wrong format" in answer.text
        assert requests.post(sim.base_url + "x", files=form, timeout=10).status_code == 404
        assert sim.jobs == []


def test_sim_main_prints_where_it_listens_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from faxd.providers.faxnummer.sim import main; "
            "sys.exit(main(sys.argv[1:]))",
            "--port",
            "0",
            "--format",
            "xml",
            "--code",
            "s3cr3t-code",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "faxnummer.de simulator listening on http://127.0.0.1:" in banner
        assert "s3cr3t-code" not in banner
        url = banner.rsplit("base_url for faxd: ", 1)[1].strip()
        assert requests.get(url, timeout=10).status_code == 200
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
