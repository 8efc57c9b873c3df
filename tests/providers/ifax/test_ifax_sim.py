"""The iFax simulator itself, spoken to with plain requests, and its command line."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from typing import Any

import pytest
import requests
from ifax_support import IFAX_TOKEN, StepClock

from faxd.providers.ifax.sim import IfaxSimulator
from faxd.sim.documents import make_pdf


def _post(sim: IfaxSimulator, path: str, body: dict[str, Any], **headers: str) -> requests.Response:
    sent = {"accessToken": IFAX_TOKEN, **headers}
    return requests.post(f"{sim.base_url}/customer/{path}", json=body, headers=sent, timeout=5)


def test_contract_attributes(ifax_sim: IfaxSimulator) -> None:
    assert ifax_sim.base_url.startswith("http://127.0.0.1:") and ifax_sim.base_url.endswith("/v1")
    assert ifax_sim.token == IFAX_TOKEN and IFAX_TOKEN not in repr(ifax_sim)
    (fax,) = ifax_sim.seed_inbound(1, dnis=("+13035550111",))
    assert fax.remote_id == f"{fax.job_id}:{fax.transaction_id}"
    assert fax.data.startswith(b"%PDF-") and fax.dnis == "+13035550111" and not fax.released
    assert ifax_sim.delete_check is None and ifax_sim.violations == []


def test_listing_is_newest_first_and_pages_on_last_fax_id(ifax_sim: IfaxSimulator) -> None:
    faxes = ifax_sim.seed_inbound(5)
    window = {"startDate": "03/10/2026", "endDate": "03/10/2026"}
    first = _post(ifax_sim, "inbound/fax-list-all", window).json()
    assert first["status"] == 1
    assert [r["jobId"] for r in first["data"]] == [f.job_id for f in reversed(faxes)][:3]
    after = {**window, "lastFaxId": str(first["data"][-1]["jobId"])}
    second = _post(ifax_sim, "inbound/fax-list-all", after).json()
    assert [r["jobId"] for r in second["data"]] == [faxes[1].job_id, faxes[0].job_id]


def test_a_date_not_in_mm_dd_yyyy_is_refused_and_recorded(ifax_sim: IfaxSimulator) -> None:
    answer = _post(ifax_sim, "inbound/fax-list-all", {"startDate": "2026-03-10"}).json()
    assert (answer["status"], answer["code"]) == (0, -2040)
    assert ifax_sim.violations and "MM/DD/YYYY" in ifax_sim.violations[0]


def test_a_missing_or_wrong_token_is_refused(ifax_sim: IfaxSimulator) -> None:
    answer = requests.post(f"{ifax_sim.base_url}/customer/fax-lists", json={}, timeout=5).json()
    assert (answer["status"], answer["code"]) == (0, 12001)
    assert "no accessToken header" in ifax_sim.violations[0]
    wrong = _post(ifax_sim, "fax-lists", {}, accessToken="nope").json()
    assert wrong["code"] == 12001


def test_download_marks_released_and_answers_base64(ifax_sim: IfaxSimulator) -> None:
    (fax,) = ifax_sim.seed_inbound(1)
    body = {"jobId": str(fax.job_id), "transactionId": str(fax.transaction_id)}
    answer = _post(ifax_sim, "inbound/fax-download", body).json()
    assert base64.b64decode(answer["data"]) == fax.data and fax.released
    wrong = _post(ifax_sim, "inbound/fax-download", {"jobId": fax.job_id, "transactionId": 1})
    assert wrong.json()["code"] == 12130


def test_sends_settle_by_the_clock(ifax_sim: IfaxSimulator, clock: StepClock) -> None:
    ifax_sim.fail_numbers.add("+13035550102")
    pdf = base64.b64encode(make_pdf("x")).decode()
    ids = []
    for number in ("+13035550101", "+13035550102"):
        answer = _post(
            ifax_sim,
            "fax-send",
            {"faxNumber": number, "faxData": [{"fileName": "a.pdf", "fileData": pdf}]},
        ).json()
        ids.append(answer["data"]["jobId"])
    assert [j.status for j in ifax_sim.jobs] == ["sending", "sending"]
    clock.advance(seconds=2)
    assert [j.status for j in ifax_sim.jobs] == ["delivered", "failed"]
    status = _post(ifax_sim, "fax-status", {"jobId": ids[1]}).json()["data"]
    assert (status["faxStatus"], status["code"]) == ("failed", 3931)


def test_a_send_without_a_document_is_refused(ifax_sim: IfaxSimulator) -> None:
    answer = _post(ifax_sim, "fax-send", {"faxNumber": "+13035550101", "faxData": []}).json()
    assert answer["status"] == 0 and ifax_sim.jobs == []
    text = base64.b64encode(b"plain text").decode()
    bad = {"faxNumber": "+13035550101", "faxData": [{"fileName": "a.txt", "fileData": text}]}
    assert _post(ifax_sim, "fax-send", bad).json()["code"] == 120109


def test_fault_kinds_and_their_limits(ifax_sim: IfaxSimulator) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        ifax_sim.inject("err02")
    with pytest.raises(ValueError, match="only applies to fax-download"):
        ifax_sim.inject("corrupt_base64", operation="fax-send")
    with pytest.raises(ValueError, match="after=True"):
        ifax_sim.inject("slow", after=True)
    fault = ifax_sim.inject("rate_limit", operation="fax-lists", times=1)
    assert _post(ifax_sim, "fax-lists", {}).status_code == 429
    assert fault.fired == 1 and ifax_sim.faults.active == []
    ifax_sim.inject("http500")
    assert _post(ifax_sim, "fax-lists", {}).status_code == 500
    ifax_sim.clear_faults()
    assert _post(ifax_sim, "fax-lists", {}).status_code == 200


def test_main_serves_until_terminated() -> None:
    code = "import sys; from faxd.providers.ifax.sim import main; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--faxes", "2", "--token", IFAX_TOKEN],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "iFax simulator listening on http://127.0.0.1:" in banner
        base_url = banner.rsplit("base_url for faxd: ", 1)[1].strip()
        answer = requests.post(
            f"{base_url}/customer/inbound/fax-list-all",
            data=json.dumps({"startDate": "01/01/2000", "endDate": "12/31/2099"}),
            headers={"accessToken": IFAX_TOKEN, "Content-Type": "application/json"},
            timeout=5,
        ).json()
        assert len(answer["data"]) == 2
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
