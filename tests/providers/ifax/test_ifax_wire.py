"""iFax answers as the notes and public clients show them, and the tolerant cases."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime

import pytest

from faxd.errors import AuthError, NotFoundError, PermanentError, TransientError
from faxd.providers.base import JobOutcome
from faxd.providers.ifax import wire
from faxd.providers.ifax.b64json import CorruptData, DataScanner
from faxd.redact import register_secret
from faxd.web.hooks import PROVIDERS, HintKind


def test_dates_are_mm_dd_yyyy() -> None:
    assert wire.format_date(date(2026, 3, 7)) == "03/07/2026"
    body = wire.list_all_body(date(2026, 1, 2), date(2026, 1, 31), "123")
    assert body == {
        "startDate": "01/02/2026",
        "endDate": "01/31/2026",
        "sortBy": "newest",
        "lastFaxId": "123",
    }
    assert "lastFaxId" not in wire.list_all_body(date(2026, 1, 2), date(2026, 1, 3), None)


def test_success_envelope_gives_data() -> None:
    body = b'{"status":1,"message":"Fax processed for sending","data":{"jobId":123456}}'
    assert wire.envelope_data(body, "fax-send") == {"jobId": 123456}
    assert wire.parse_job_id({"jobId": 123456}) == "123456"
    assert wire.envelope_data(b'{"status":"1","data":[]}', "fax-lists") == []


@pytest.mark.parametrize(
    ("envelope", "kind"),
    [
        ({"status": 0, "message": "USER_BLOCKED", "code": 12001}, AuthError),
        ({"status": 0, "message": "accessToken invalid"}, AuthError),
        ({"status": 0, "message": "SERVICE_UNAVAILABLE", "code": -2036}, TransientError),
        ({"status": 0, "message": "Too many requests"}, TransientError),
        ({"status": 0, "message": "Fax with this id does not exist", "code": 12021}, NotFoundError),
        ({"status": -1, "message": "Can not find Fax.", "code": "12130"}, NotFoundError),
        ({"status": 0, "message": "Invalid faxNumber", "code": 120100}, PermanentError),
    ],
)
def test_error_envelopes_map_to_the_error_tree(envelope: dict[str, object], kind: type) -> None:
    error = wire.error_for(envelope, "fax-send")
    assert type(error) is kind
    assert error is not None
    assert str(envelope["message"]) in error.message


def test_auth_error_says_what_to_fix_in_the_portal() -> None:
    error = wire.error_for({"status": 0, "message": "USER_BLOCKED", "code": 12001}, "fax-lists")
    assert isinstance(error, AuthError)
    assert "Settings page of the iFax dashboard" in error.message
    assert "access_token_file" in error.message


def test_permanent_error_names_what_ifax_said() -> None:
    error = wire.error_for({"status": 0, "message": "Invalid file format", "code": 120109}, "x")
    assert isinstance(error, PermanentError) and not isinstance(error, NotFoundError)
    assert "Invalid file format" in error.message and "120109" in error.message


def test_an_answer_that_is_not_json_is_transient() -> None:
    with pytest.raises(TransientError, match="not JSON"):
        wire.envelope_data(b"<html>502 Bad Gateway</html>", "fax-status")
    with pytest.raises(TransientError, match="not an object"):
        wire.envelope_data(b"[1, 2]", "fax-status")


def test_an_echoed_token_is_masked() -> None:
    register_secret("tok-abcdef-123456")
    error = wire.error_for({"status": 0, "message": "accessToken tok-abcdef-123456 invalid"}, "x")
    assert error is not None
    assert "tok-abcdef-123456" not in error.message and "tok-abcdef-123456" not in repr(error)


# ---------------------------------------------------------------- inbound listing


def test_list_all_records_become_remote_faxes() -> None:
    data = [
        {
            "jobId": 5001,
            "transactionId": 90001,
            "receivedTime": "2026-03-09 14:05:06",
            "fromNumber": "+13035550199",
            "toNumber": "+13035550100",
            "faxTotalPages": 2,
        },
        {"jobId": "5000", "transactionId": "90000", "receivedTime": 1773064800},
    ]
    page = wire.parse_fax_page(data)
    assert [f.remote_id for f in page.faxes] == ["5001:90001", "5000:90000"]
    first = page.faxes[0]
    assert first.received_at == datetime(2026, 3, 9, 14, 5, 6)
    assert (first.caller_id, first.dnis, first.pages) == ("+13035550199", "+13035550100", 2)
    assert page.faxes[1].received_at == datetime(2026, 3, 9, 14, 0)  # Unix seconds, UTC
    assert page.last_fax_id == "5000"
    assert page.unreadable == () and page.notices == ()


def test_bad_records_are_unreadable_and_the_rest_is_kept() -> None:
    data = [
        {"jobId": 1, "receivedTime": "2026-03-09 10:00:00"},  # no transactionId
        "garbage",
        {"jobId": 2, "transactionId": 3, "receivedTime": "yesterday-ish"},
        {"jobId": 4, "transactionId": 5, "receivedTime": "03/09/2026 10:00:00", "newField": 1},
    ]
    page = wire.parse_fax_page(data)
    assert [f.remote_id for f in page.faxes] == ["4:5"]
    assert [u.lineno for u in page.unreadable] == [1, 2, 3]
    assert "transactionId" in page.unreadable[0].reason
    assert [n.key for n in page.notices] == ["newField"]
    assert page.records == 4 and page.last_fax_id == "4"


def test_empty_or_wrapped_pages() -> None:
    assert wire.parse_fax_page([]).last_fax_id is None
    assert wire.parse_fax_page(None).records == 0
    wrapped = {"data": [{"jobId": 7, "transactionId": 8, "receivedTime": "2026-03-09"}]}
    assert [f.remote_id for f in wire.parse_fax_page(wrapped).faxes] == ["7:8"]
    with pytest.raises(TransientError):
        wire.parse_fax_page("a string")


def test_remote_id_splits_back_and_refuses_junk() -> None:
    assert wire.split_remote_id("5001:90001") == ("5001", "90001")
    for bad in ("5001", ":1", "1:../x", "a:b:c"):
        with pytest.raises(PermanentError):
            wire.split_remote_id(bad)


# ---------------------------------------------------------------- outbound


def _status(word: str, **more: object) -> dict[str, object]:
    return {"jobId": 42, "faxStatus": word, "toNumber": "+13035550101", **more}


@pytest.mark.parametrize(
    ("word", "outcome"),
    [
        ("sending", JobOutcome.PENDING),
        ("delivered", JobOutcome.SENT),
        ("failed", JobOutcome.FAILED),
        ("canceled", JobOutcome.FAILED),
    ],
)
def test_documented_statuses(word: str, outcome: JobOutcome) -> None:
    job, notices = wire.parse_status(_status(word), "fax-status")
    assert (job.remote_id, job.outcome, job.status, notices) == ("42", outcome, word, [])


def test_failed_job_reason_carries_ifax_words_and_code() -> None:
    job, _ = wire.parse_status(
        _status("failed", message="Busy", code=3931, faxCallStart=1773064800), "fax-status"
    )
    assert job.reason == "iFax could not send it: Busy (code 3931)"
    assert job.sent_at == datetime(2026, 3, 9, 14, 0)
    cancelled, _ = wire.parse_status(_status("canceled"), "fax-status")
    assert cancelled.reason.startswith("canceled on iFax")


def test_unknown_status_is_pending_and_noticed() -> None:
    job, notices = wire.parse_status(_status("teleporting"), "fax-status")
    assert job.outcome is JobOutcome.PENDING
    assert [n.key for n in notices] == ["status:teleporting"]


def test_status_page_keeps_readable_records() -> None:
    page = wire.parse_status_page([_status("delivered"), {"faxStatus": "sent"}, 3], "fax-lists")
    assert [j.remote_id for j in page.jobs] == ["42"]
    assert [u.lineno for u in page.unreadable] == [2, 3]
    single = wire.parse_status_page(_status("sending"), "fax-status")
    assert [j.outcome for j in single.jobs] == [JobOutcome.PENDING]


def test_send_without_job_id_is_not_a_success() -> None:
    with pytest.raises(TransientError, match="no readable jobId"):
        wire.parse_job_id({"message": "ok"})


def test_send_body_parts_make_json_around_the_base64() -> None:
    head, tail = wire.send_body_parts("+13035550101", 'a "b".pdf', "+13035550100", "HD")
    body = json.loads(head + base64.b64encode(b"%PDF-1.4 x") + tail)
    assert body == {
        "faxNumber": "+13035550101",
        "callerId": "+13035550100",
        "faxQuality": "HD",
        "faxData": [
            {"fileName": 'a "b".pdf', "fileData": base64.b64encode(b"%PDF-1.4 x").decode()}
        ],
    }


# ---------------------------------------------------------------- callbacks


def test_inbound_webhook_asks_for_a_poll() -> None:
    sample = {
        "direction": "inbound",
        "jobId": 1234,
        "transactionId": 5678,
        "faxStatus": "received",
        "fromNumber": "+13035550199",
        "toNumber": "+13035550100",
    }
    assert wire.pick_callback(json.dumps(sample).encode(), "application/json") == ("inbound", 1234)
    hint = PROVIDERS["ifax"].pick(json.dumps(sample).encode(), "application/json")
    assert (hint.kind, hint.ref) == (HintKind.INBOUND, 1234)


def test_sent_fax_webhook_asks_for_a_status() -> None:
    sample = {"jobId": 99, "faxStatus": "delivered", "code": 0, "message": "delivered"}
    hint = PROVIDERS["ifax"].pick(json.dumps(sample).encode(), "application/json")
    assert (hint.kind, hint.ref) == (HintKind.OUTBOUND, 99)
    outbound = {"direction": "outbound", "jobId": "100", "faxStatus": "failed"}
    assert wire.pick_callback(json.dumps(outbound).encode(), "text/plain") == ("outbound", 100)


def test_legacy_multipart_and_junk_callbacks_ask_for_a_poll() -> None:
    multipart = b'--x\r\nContent-Disposition: form-data; name="filename"\r\n\r\n%PDF\r\n--x--'
    assert wire.pick_callback(multipart, "multipart/form-data; boundary=x") == ("inbound", None)
    assert wire.pick_callback(b"{not json", "application/json") == ("inbound", None)
    assert wire.pick_callback(b'{"jobId": "../../x"}', "application/json") == ("inbound", None)


# ---------------------------------------------------------------- base64 in JSON


PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40


def _scan(body: bytes, step: int) -> tuple[bytes, dict[str, object]]:
    out = bytearray()
    scanner = DataScanner(out.extend)
    for start in range(0, len(body), step):
        scanner.feed(body[start : start + step])
    rest = json.loads(scanner.finish())
    scanner.flush()
    return bytes(out), rest


@pytest.mark.parametrize("step", [1, 3, 5, 4096, 1 << 20])
def test_download_data_decodes_in_any_chunking(step: int) -> None:
    encoded = base64.b64encode(PDF).decode()
    plain = json.dumps({"status": 1, "message": "Download Fax Response", "data": encoded})
    escaped = (
        '{"data": "data:application/pdf;base64,' + encoded.replace("/", "\\/") + '", "status": 1}'
    )
    for body in (plain.encode(), escaped.encode()):
        data, rest = _scan(body, step)
        assert data == PDF
        assert rest["status"] == 1 and rest["data"] == ""


def test_unicode_escapes_and_escaped_line_breaks_in_the_base64() -> None:
    encoded = base64.b64encode(PDF).decode()
    split = encoded[:76] + "\\r\\n" + encoded[76:].replace("/", "\\u002F", 3)
    data, _ = _scan(('{"status":1,"data":"' + split + '"}').encode(), 7)
    assert data == PDF


@pytest.mark.parametrize(
    "body",
    [
        b'{"status":1,"data":"JVBERi0x',  # cut off
        b'{"status":1,"data":"JVBE!i0xLjQK"}',  # not base64
        b'{"status":1,"data":"JVBERi0xL"}',  # stray characters at the end
        b'{"status":1,"data":"JVBERi0x\\x41"}',  # an escape base64 cannot hold
    ],
)
def test_damaged_download_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(CorruptData):
        _scan(body, 4)


def test_an_error_envelope_is_readable_before_its_data_is() -> None:
    scanner = DataScanner(lambda data: None)
    scanner.feed(b'{"status":0,"message":"Can not find Fax.","code":12130,"data":"n/a"}')
    with pytest.raises(NotFoundError):
        wire.envelope_data(scanner.finish(), "fax-download")
