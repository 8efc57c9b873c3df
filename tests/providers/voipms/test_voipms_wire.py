"""The pure VoIP.ms parsers on the documented examples and on the odd answers the notes warn of."""

from __future__ import annotations

import base64
import json
from datetime import datetime

import pytest

from faxd.errors import (
    AuthError,
    DownloadError,
    NotFoundError,
    PermanentError,
    TransientError,
)
from faxd.providers.base import JobOutcome
from faxd.providers.voipms import wire
from faxd.sim.documents import make_pdf
from faxd.web.hooks import PROVIDERS, HintKind

# The getFaxMessages example of voipms-fax-api.txt, as the JSON the API sends.
DOC_FAXES = {
    "status": "success",
    "faxes": [
        {
            "id": "0000",
            "folder": "INBOX",
            "date": "2016-01-01 00:00:00",
            "callerid": "5552341234",
            "stationid": "5552341234",
            "destination": "7772341234",
            "description": "INBOUND FAX",
            "pages": "2",
            "duration": "1:16",
            "status": "SUCCESS",
            "rate": "0.000",
            "total": "0.000",
            "msg": "",
        }
    ],
}


def envelope(data: object) -> wire.Envelope:
    return wire.parse_envelope(json.dumps(data), "getFaxMessages")


def test_documented_fax_record_becomes_a_remote_fax() -> None:
    listing = wire.parse_faxes(envelope(DOC_FAXES))
    assert listing.unreadable == ()
    assert listing.unknown_fields == frozenset()
    (fax,) = listing.faxes
    assert fax.remote_id == "0000"
    assert fax.received_at == datetime(2016, 1, 1, 0, 0, 0)
    assert fax.caller_id == "5552341234"
    assert fax.dnis == "7772341234"
    assert fax.pages == 2


def test_numbers_as_numbers_and_named_caller_ids_are_read() -> None:
    record = dict(DOC_FAXES["faxes"][0])  # type: ignore[index]
    record.update(id=923, pages=3, callerid="NAME <4164442828>", extra_field="x")
    listing = wire.parse_faxes(envelope({"status": "success", "faxes": [record]}))
    (fax,) = listing.faxes
    assert fax.remote_id == "923"
    assert fax.pages == 3
    assert fax.caller_id == "4164442828"
    assert listing.unknown_fields == {"extra_field"}


def test_unreadable_records_are_reported_and_the_rest_kept() -> None:
    good = dict(DOC_FAXES["faxes"][0])  # type: ignore[index]
    no_date = dict(good, id="5", date="yesterday")
    no_id = dict(good, id="../etc")
    data = {"status": "success", "faxes": [good, "junk", no_date, no_id]}
    listing = wire.parse_faxes(envelope(data))
    assert [f.remote_id for f in listing.faxes] == ["0000"]
    assert [(u.lineno, u.reason) for u in listing.unreadable] == [
        (2, "record is not an object"),
        (3, "no readable date"),
        (4, "no readable id"),
    ]


def test_empty_body_is_success() -> None:
    assert wire.parse_envelope(b"", "deleteFaxMessage") == wire.Envelope({})
    assert wire.parse_envelope(b"  \n", "deleteFaxMessage").empty is False


@pytest.mark.parametrize("status", ["no_message", "no_folder", "no_numbers"])
def test_no_statuses_mean_an_empty_list(status: str) -> None:
    answer = envelope({"status": status})
    assert answer.empty
    assert wire.parse_faxes(answer).faxes == ()
    assert wire.parse_sent(answer).jobs == ()


@pytest.mark.parametrize(
    ("status", "hint"),
    [
        ("invalid_credentials", "API password"),
        ("missing_credentials", "API password"),
        ("api_not_enabled", "enable it"),
        ("ip_not_enabled", "allow-list"),
        ("tls_error", "TLS"),
    ],
)
def test_auth_statuses_say_what_to_fix_in_the_portal(status: str, hint: str) -> None:
    with pytest.raises(AuthError) as caught:
        envelope({"status": status})
    assert caught.value.code == status
    assert hint in caught.value.message
    assert status in caught.value.message


def test_api_limit_is_transient_with_a_longer_backoff_hint() -> None:
    with pytest.raises(TransientError) as caught:
        envelope({"status": "api_limit_exceeded"})
    assert caught.value.code == "api_limit_exceeded"
    assert "a minute" in caught.value.message


@pytest.mark.parametrize(
    "status", ["method_maintenance", "provider_outofservice", "unavailable_info"]
)
def test_service_statuses_are_transient(status: str) -> None:
    with pytest.raises(TransientError):
        envelope({"status": status})


def test_invalid_fax_id_is_not_found_and_others_are_permanent_by_name() -> None:
    with pytest.raises(NotFoundError):
        envelope({"status": "invalid_fax_id"})
    with pytest.raises(PermanentError) as caught:
        envelope({"status": "non_sufficient_funds"})
    assert not isinstance(caught.value, NotFoundError | TransientError)
    assert "non_sufficient_funds" in caught.value.message


@pytest.mark.parametrize("body", ["<html>502 Bad Gateway</html>", "[1, 2]", '{"faxes": []}'])
def test_answers_that_are_not_an_envelope_are_transient(body: str) -> None:
    with pytest.raises(TransientError):
        wire.parse_envelope(body, "getFaxMessages")


def test_sent_statuses_map_to_outcomes_and_unknown_words_stay_pending() -> None:
    base = dict(DOC_FAXES["faxes"][0], folder="SENT")  # type: ignore[arg-type]
    records = [
        dict(base, id="1", status="SUCCESS"),
        dict(base, id="2", status="failed", msg="NO ANSWER"),
        dict(base, id="3", status="Sending"),
        dict(base, id="4", status="WARPED"),
    ]
    listing = wire.parse_sent(envelope({"status": "success", "faxes": records}))
    outcomes = {j.remote_id: (j.outcome, j.reason) for j in listing.jobs}
    assert outcomes == {
        "1": (JobOutcome.SENT, ""),
        "2": (JobOutcome.FAILED, "NO ANSWER"),
        "3": (JobOutcome.PENDING, ""),
        "4": (JobOutcome.PENDING, ""),
    }
    assert listing.unknown_statuses == {"WARPED"}
    assert listing.jobs[0].number == "7772341234"
    assert listing.jobs[0].sent_at == datetime(2016, 1, 1)


def test_folders_are_read_by_name() -> None:
    data = {"status": "success", "folders": [{"id": 1, "name": "INBOX"}, {"id": "7", "name": "X"}]}
    assert wire.parse_folders(envelope(data)) == {"INBOX": "1", "X": "7"}


def php_json(data: dict[str, object]) -> bytes:
    return json.dumps(data).replace("/", "\\/").encode()


def decode_in_chunks(body: bytes, size: int) -> tuple[bytes, wire.Envelope]:
    decoder = wire.Base64FieldDecoder()
    out = b"".join(decoder.feed(body[i : i + size]) for i in range(0, len(body), size))
    return out, decoder.finish()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 17, 4096, 1 << 20])
def test_base64_is_decoded_across_any_chunk_boundaries(size: int) -> None:
    pdf = make_pdf("Fax 1", 2, size=20_000)
    body = php_json({"status": "success", "message_base64": base64.b64encode(pdf).decode()})
    assert b"\\/" in body  # the PHP escape is exercised
    out, answer = decode_in_chunks(body, size)
    assert out == pdf
    assert answer.data["status"] == "success"


def test_base64_key_after_other_fields_and_with_spaces() -> None:
    pdf = make_pdf("Fax 2")
    b64 = base64.b64encode(pdf).decode()
    text = '{"other": "a", "status" : "success" , "message_base64" :  "' + b64 + '" }'
    out, _ = decode_in_chunks(text.encode(), 7)
    assert out == pdf


@pytest.mark.parametrize("bad", [b"*", b"\xc3\xa9", b"\\u0041"])
def test_corrupt_base64_raises(bad: bytes) -> None:
    b64 = base64.b64encode(make_pdf("Fax 3"))
    body = b'{"status":"success","message_base64":"' + b64[:40] + bad + b64[40:] + b'"}'
    with pytest.raises(DownloadError, match="corrupt"):
        decode_in_chunks(body, 64)


def test_base64_with_characters_replaced_in_place_raises() -> None:
    b64 = base64.b64encode(make_pdf("Fax 4"))
    body = b'{"status":"success","message_base64":"' + b64[:40] + b"*!*!" + b64[44:] + b'"}'
    with pytest.raises(DownloadError, match="corrupt"):
        decode_in_chunks(body, 64)


def test_an_answer_cut_inside_the_base64_raises() -> None:
    body = php_json(
        {"status": "success", "message_base64": base64.b64encode(make_pdf("x")).decode()}
    )
    decoder = wire.Base64FieldDecoder()
    decoder.feed(body[: len(body) // 2])
    with pytest.raises(DownloadError, match="cut off"):
        decoder.finish()


def test_a_download_answering_an_error_status_raises_that_error() -> None:
    decoder = wire.Base64FieldDecoder()
    assert decoder.feed(b'{"status":"ip_not_enabled"}') == b""
    with pytest.raises(AuthError, match="allow-list"):
        decoder.finish()


def test_a_download_of_a_missing_fax_is_not_found() -> None:
    for body in (b'{"status":"invalid_fax_id"}', b'{"status":"no_message"}'):
        decoder = wire.Base64FieldDecoder()
        decoder.feed(body)
        with pytest.raises(NotFoundError):
            decoder.finish()


def test_success_without_the_fax_is_a_download_error() -> None:
    decoder = wire.Base64FieldDecoder()
    decoder.feed(b'{"status":"success","message_base64":null}')
    with pytest.raises(DownloadError, match="no message_base64"):
        decoder.finish()


def test_callback_means_poll_now_and_is_answered_ok() -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="from"\r\n\r\n5551234567\r\n'
        b'--b\r\nContent-Disposition: form-data; name="pdf"; filename="a.pdf"\r\n\r\n%PDF-1\r\n'
        b"--b--\r\n"
    )
    hint = wire.pick_callback(body, "multipart/form-data; boundary=b")
    assert hint.kind is HintKind.INBOUND
    assert hint.ref is None
    hooks = PROVIDERS["voipms"]
    assert hooks.reply.body == b"ok"
    assert hooks.pick(b"garbage", "text/plain").kind is HintKind.INBOUND
