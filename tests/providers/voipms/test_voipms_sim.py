"""The VoIP.ms simulator speaks the wire format the notes describe, over real HTTP."""

from __future__ import annotations

import base64
import re
import signal
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
import requests
from voipms_helpers import VOIPMS_PASSWORD, VOIPMS_USER, FakeClock

from faxd.providers.voipms.sim import VoipmsSimulator


def call(sim: VoipmsSimulator, method: str, *, post: bool = False, **params: str) -> Any:
    fields = {"api_username": VOIPMS_USER, "api_password": VOIPMS_PASSWORD, "method": method}
    fields.update(params)
    if post:
        answer = requests.post(sim.base_url, data=fields, timeout=5)
    else:
        answer = requests.get(sim.base_url, params=fields, timeout=5)
    assert answer.status_code == 200
    assert answer.headers["Content-Type"] == "application/json"
    return answer.json()


def test_get_urlencoded_post_and_multipart_post_all_work(voipms_sim: VoipmsSimulator) -> None:
    expected = {
        "status": "success",
        "folders": [
            {"id": "1", "name": "INBOX"},
            {"id": "2", "name": "SENT"},
            {"id": "3", "name": "ARCHIVE"},
        ],
    }
    assert call(voipms_sim, "getFaxFolders") == expected
    assert call(voipms_sim, "getFaxFolders", post=True) == expected
    fields = {"api_username": VOIPMS_USER, "api_password": VOIPMS_PASSWORD}
    multipart = {k: (None, v) for k, v in {**fields, "method": "getFaxFolders"}.items()}
    assert requests.post(voipms_sim.base_url, files=multipart, timeout=5).json() == expected


def test_listing_has_string_numbers_and_empty_is_no_message(voipms_sim: VoipmsSimulator) -> None:
    assert call(voipms_sim, "getFaxMessages") == {"status": "no_message"}
    (fax,) = voipms_sim.seed_inbound(1)
    (record,) = call(voipms_sim, "getFaxMessages", folder="INBOX")["faxes"]
    assert record["id"] == fax.remote_id
    assert record["pages"] == "1"
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", record["date"])
    assert call(voipms_sim, "getFaxMessages", folder="SENT") == {"status": "no_message"}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"from": "2026-01-01", "to": "2026-04-04"}, "invalid_daterange"),
        ({"from": "2026-02-01", "to": "2026-01-01"}, "invalid_daterange"),
        ({"from": "01/02/2026"}, "invalid_date"),
        ({"folder": "NOPE"}, "invalid_folder"),
    ],
)
def test_listing_refusals(voipms_sim: VoipmsSimulator, params: dict[str, str], status: str) -> None:
    assert call(voipms_sim, "getFaxMessages", **params) == {"status": status}


def test_login_and_method_refusals(voipms_sim: VoipmsSimulator) -> None:
    assert call(voipms_sim, "") == {"status": "missing_method"}
    assert call(voipms_sim, "getDIDsInfo") == {"status": "invalid_method"}
    answer = requests.get(voipms_sim.base_url, params={"method": "getFaxFolders"}, timeout=5)
    assert answer.json() == {"status": "missing_credentials"}
    wrong = {"api_username": VOIPMS_USER, "api_password": "nope", "method": "getFaxFolders"}
    assert requests.get(voipms_sim.base_url, params=wrong, timeout=5).json() == {
        "status": "invalid_credentials"
    }


def test_pdf_comes_as_base64_with_php_escapes(voipms_sim: VoipmsSimulator) -> None:
    (fax,) = voipms_sim.seed_inbound(1, size=5000)
    fields = {
        "api_username": VOIPMS_USER,
        "api_password": VOIPMS_PASSWORD,
        "method": "getFaxMessagePDF",
        "id": fax.remote_id,
    }
    raw = requests.get(voipms_sim.base_url, params=fields, timeout=5).content
    assert b"\\/" in raw
    assert (
        base64.b64decode(
            requests.get(voipms_sim.base_url, params=fields, timeout=5).json()["message_base64"]
        )
        == fax.data
    )
    assert fax.downloads == 2
    assert call(voipms_sim, "getFaxMessagePDF", id="1") == {"status": "invalid_fax_id"}


def test_send_answers_without_an_id_and_settles() -> None:
    clock = FakeClock()
    with VoipmsSimulator(VOIPMS_USER, VOIPMS_PASSWORD, clock=clock, settle_seconds=30) as sim:
        sim.fail_numbers.add("3035550177")
        doc = base64.b64encode(b"%PDF-1.4 tiny").decode()
        for number in ("3035550199", "3035550177"):
            answer = call(
                sim,
                "sendFaxMessage",
                post=True,
                to_number=number,
                from_name="Acme",
                from_number="3035550101",
                file=doc,
            )
            assert answer == {"status": "success"}
        statuses = [r["status"] for r in call(sim, "getFaxMessages", folder="SENT")["faxes"]]
        assert statuses == ["PENDING", "PENDING"]
        clock.now += timedelta(seconds=31)
        listing = call(sim, "getFaxMessages", folder="SENT")["faxes"]
        assert {(r["destination"], r["status"]) for r in listing} == {
            ("3035550199", "SUCCESS"),
            ("3035550177", "FAILED"),
        }
        assert [j.status for j in sim.jobs] == ["SUCCESS", "FAILED"]
        assert call(sim, "sendFaxMessage", post=True, to_number="1") == {"status": "missing_params"}


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("api_limit", "api_limit_exceeded"),
        ("auth", "invalid_credentials"),
        ("ip", "ip_not_enabled"),
    ],
)
def test_provider_status_faults(voipms_sim: VoipmsSimulator, kind: str, status: str) -> None:
    fault = voipms_sim.inject(kind, times=1)
    assert call(voipms_sim, "getFaxFolders") == {"status": status}
    assert call(voipms_sim, "getFaxFolders")["status"] == "success"
    assert fault.fired == 1


def test_http500_and_fault_validation(voipms_sim: VoipmsSimulator) -> None:
    voipms_sim.inject("http500", operation="getFaxFolders", times=1)
    assert (
        requests.get(voipms_sim.base_url, params={"method": "getFaxFolders"}, timeout=5).status_code
        == 500
    )
    with pytest.raises(ValueError, match="unknown fault kind"):
        voipms_sim.inject("err02")
    with pytest.raises(ValueError, match="getFaxMessagePDF"):
        voipms_sim.inject("corrupt_base64", operation="getFaxMessages")
    with pytest.raises(ValueError, match="after"):
        voipms_sim.inject("api_limit", after=True)
    voipms_sim.clear_faults()
    assert voipms_sim.faults.active == []


def test_the_request_log_never_holds_the_password(voipms_sim: VoipmsSimulator) -> None:
    call(voipms_sim, "getFaxFolders")
    call(voipms_sim, "getFaxFolders", post=True)
    assert [m for m, _ in voipms_sim.requests] == ["getFaxFolders", "getFaxFolders"]
    assert VOIPMS_PASSWORD not in repr(voipms_sim.requests)
    assert VOIPMS_PASSWORD not in repr(voipms_sim)


def test_main_serves_until_terminated() -> None:
    code = "import sys; from faxd.providers.voipms.sim import main; sys.exit(main(sys.argv[1:]))"
    args = ["--provider", "voipms", "--port", "0", "--faxes", "2", "--password", "cli-Secret-pw"]
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        banner = proc.stdout.readline()
        assert "cli-Secret-pw" not in banner
        match = re.search(r"base_url for faxd: (\S+)", banner)
        assert match, banner
        fields = {
            "api_username": "demo@example.com",
            "api_password": "cli-Secret-pw",
            "method": "getFaxMessages",
        }
        answer = requests.get(match.group(1), params=fields, timeout=5).json()
        assert len(answer["faxes"]) == 2
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
