"""faxnummer.de answers read in each format, without a server."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from faxd.errors import AuthError, NotFoundError, PermanentError, TransientError
from faxd.providers.base import JobOutcome
from faxd.providers.faxnummer import wire
from faxd.providers.faxnummer.q850 import describe

UUID = "faxsend-acc12345-752601991433cc7de15e"


def render(fields: dict[str, str], fmt: str) -> str:
    """The same answer written in each of the three formats."""
    if fmt == "json":
        return json.dumps(fields)
    if fmt == "xml":
        inner = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
        return f'<?xml version="1.0"?>\n<response>{inner}</response>'
    return "\n".join(f"{k}={v}" for k, v in fields.items()) + "\n"


FORMATS = ("json", "xml", "kv")


@pytest.mark.parametrize("fmt", FORMATS)
def test_send_answer_gives_the_uuid_and_names_its_format(fmt: str) -> None:
    """A SendFax ``ok`` answer yields its WR_Request_UUID in every format, and says which."""
    body = render({"WR_Status": "ok", "WR_Comment": "", "WR_Request_UUID": UUID}, fmt)
    uuid, answer = wire.parse_send(body.encode())
    assert uuid == UUID
    assert answer.format == fmt


@pytest.mark.parametrize("fmt", FORMATS)
def test_keys_and_the_ok_word_are_read_in_any_case(fmt: str) -> None:
    """``wr_status=OK`` / ``WR_REQUEST_UUID`` are the same fields as in the document."""
    body = render({"wr_status": "OK", "WR_REQUEST_UUID": UUID}, fmt)
    assert wire.parse_send(body)[0] == UUID


def test_kv_answers_on_one_line_with_ampersands_and_quotes() -> None:
    """A query-string answer and quoted values are read as KEY=VALUE too."""
    assert wire.parse_send(f"WR_Status=ok&WR_Request_UUID={UUID}")[0] == UUID
    assert wire.parse_send(f'WR_Status="ok"\nWR_Request_UUID="{UUID}"\n')[0] == UUID


def test_nested_json_and_xml_lists_flatten_to_the_documented_names() -> None:
    """``WR_DataList`` as a JSON list or repeated XML items reads as ``WR_DataList_<n>_``."""
    nested = {"WR_Status": "ok", "WR_DataList": [{"Status": "RUNNING"}, {"Status": "DONE-OK"}]}
    job = wire.parse_status(json.dumps(nested), UUID).job
    assert (job.outcome, job.extra["recipients"]) == (JobOutcome.PENDING, "2")
    xml = (
        "<r><WR_Status>ok</WR_Status><WR_DataList><item><Status>DONE-OK</Status></item>"
        "<item><Status>DONE-OK</Status></item></WR_DataList></r>"
    )
    assert wire.parse_status(xml, UUID).job.outcome is JobOutcome.SENT


def test_xml_attributes_are_fields() -> None:
    answer = wire.parse_answer(f'<answer WR_Status="ok" WR_Request_UUID="{UUID}"/>', "SendFax")
    assert answer.get("wr_request_uuid") == UUID


@pytest.mark.parametrize(
    "body",
    ["", "<html><body>Bad gateway", "{not json", "just some words", "<!DOCTYPE x><x/>"],
)
def test_unreadable_answers_are_transient(body: str) -> None:
    """A body that is none of the formats (a proxy's page, a cut answer, a DTD) is transient."""
    with pytest.raises(TransientError) as caught:
        wire.parse_answer(body, "SendFax")
    assert caught.value.code is None  # not a faxnummer.de "failed": the outcome is unknown


def test_ok_without_uuid_is_transient() -> None:
    with pytest.raises(TransientError, match="without a WR_Request_UUID"):
        wire.parse_send("WR_Status=ok\n")


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("comment", "error", "words"),
    [
        ("Productcode invalid", AuthError, "not the password of the customer centre"),
        ("Webrequest is not available for this account", AuthError, "sProductLogin"),
        ("Fax wrong format", PermanentError, "PDF"),
        ("Destination wrong format", PermanentError, "fax number"),
        ("Email wrong format", PermanentError, "status_email"),
        ("Failed to send Fax", TransientError, "tries again"),
    ],
)
def test_failed_answers_map_to_the_error_tree(
    fmt: str, comment: str, error: type[Exception], words: str
) -> None:
    """Each documented WR_Comment becomes the right class, with what to do about it."""
    body = render({"WR_Status": "failed", "WR_Comment": comment}, fmt)
    with pytest.raises(error) as caught:
        wire.parse_send(body)
    assert words in str(caught.value)
    assert comment in str(caught.value)
    assert type(caught.value) is error


def test_failed_send_carries_a_code_so_a_resend_is_known_safe() -> None:
    """'failed' is a definite refusal (no job was made): the client may post again."""
    with pytest.raises(TransientError) as caught:
        wire.parse_send("WR_Status=FAILED\nWR_Comment=Failed to send Fax\n")
    assert caught.value.code == "failed"


def test_unknown_failure_is_permanent_and_an_unknown_job_is_not_found() -> None:
    with pytest.raises(PermanentError, match="does not know this answer"):
        wire.parse_send("WR_Status=failed\nWR_Comment=Something new\n")
    with pytest.raises(NotFoundError):
        wire.parse_status("WR_Status=failed\nWR_Comment=Job not found\n", UUID)


def status_body(fmt: str, status: str, **more: str) -> str:
    fields = {
        "WR_Status": "ok",
        "WR_DataList_ObjectCount": "1",
        "WR_DataList_1_JobUUID": UUID,
        "WR_DataList_1_CreateDateTime": "2019-05-12 12:34:56",
        "WR_DataList_1_LastChangeDateTime": "2019-05-12 12:36:01",
        "WR_DataList_1_DestinationNumber": "004920269555",
        "WR_DataList_1_Status": status,
    }
    fields.update({f"WR_DataList_1_{k}": v for k, v in more.items()})
    return render(fields, fmt)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        ("NEW", JobOutcome.PENDING),
        ("RUNNING", JobOutcome.PENDING),
        ("RETRY", JobOutcome.PENDING),
        ("DONE-OK", JobOutcome.SENT),
        ("done-ok", JobOutcome.SENT),
        ("DONE-ERROR", JobOutcome.FAILED),
    ],
)
def test_status_words_map_to_outcomes(fmt: str, status: str, outcome: JobOutcome) -> None:
    result = wire.parse_status(status_body(fmt, status), UUID)
    assert result.unknown_words == ()  # a documented word, not one read as pending by default
    job = result.job
    assert job.outcome is outcome
    assert job.remote_id == UUID
    assert job.number == "+4920269555"
    assert job.sent_at == datetime(2019, 5, 12, 12, 34, 56)


@pytest.mark.parametrize("fmt", FORMATS)
def test_done_error_gives_the_q850_cause_in_words(fmt: str) -> None:
    body = status_body(fmt, "DONE-ERROR", StatusQ850Cause="17", PagesSent="0")
    job = wire.parse_status(body, UUID).job
    assert job.outcome is JobOutcome.FAILED
    assert "cause 17" in job.reason
    assert "user busy" in job.reason
    assert job.completed_at == datetime(2019, 5, 12, 12, 36, 1)
    assert job.extra["q850"] == "17"


def test_done_ok_reports_pages_and_retry_reports_tries_left() -> None:
    done = wire.parse_status(status_body("kv", "DONE-OK", PagesSent="3"), UUID).job
    assert done.pages_sent == 3
    retry = wire.parse_status(
        status_body("kv", "RETRY", SendTriesRemaining="4", StatusQ850Cause="34"), UUID
    ).job
    assert "4 tries left" in retry.reason
    assert "no circuit" in retry.reason


def test_unknown_status_word_is_pending_and_reported() -> None:
    """A new word must not make a delivered fax look failed; it is returned to be logged."""
    result = wire.parse_status(status_body("json", "QUEUED-ELSEWHERE"), UUID)
    assert result.job.outcome is JobOutcome.PENDING
    assert result.unknown_words == ("QUEUED-ELSEWHERE",)


def test_ok_without_entries_is_pending() -> None:
    result = wire.parse_status("WR_Status=ok\nWR_DataList_ObjectCount=0\n", UUID)
    assert result.job.outcome is JobOutcome.PENDING


@pytest.mark.parametrize(
    ("cause", "words"),
    [
        (1, "unallocated number"),
        (16, "normal call clearing"),
        (17, "user busy"),
        (18, "no user responding"),
        (19, "no answer"),
        (21, "call rejected"),
        (27, "destination out of order"),
        (28, "invalid number format"),
        (31, "normal, unspecified"),
        (34, "no circuit"),
        (38, "network out of order"),
        (41, "temporary failure"),
        (42, "congestion"),
        (47, "resource unavailable"),
        (88, "incompatible destination"),
        (102, "timer expiry"),
        (127, "interworking"),
    ],
)
def test_q850_table_words(cause: int, words: str) -> None:
    assert words in describe(cause)
    assert words in describe(str(cause))


def test_q850_odd_values() -> None:
    assert describe(None) == "no Q.850 cause given"
    assert "not in faxd's table" in describe("250")
    assert "not a number" in describe("busy")
