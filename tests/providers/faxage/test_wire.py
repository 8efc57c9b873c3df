"""The FAXAGE wire format, checked against the documents' own answer forms (no server)."""

from __future__ import annotations

from datetime import datetime

import pytest

from faxd.errors import (
    AuthError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    ProviderError,
    TransientError,
)
from faxd.providers.faxage import wire
from faxd.providers.faxage.records import (
    CdrRecord,
    ListfaxRecord,
    MalformedLine,
    NewShape,
    NpaNxx,
    StatusRecord,
)
from faxd.redact import register_secret

T = "\t"
ZERO = "0000-00-00 00:00:00"
LISTFAX_LINE = T.join(
    [
        "12345",
        "2013-10-15 12:34:56",
        "2013-10-15 12:33:10",
        "(303)555-0100",
        "(415)800-6052",
        "fax12345.pdf",
        "3",
    ]
)


# ------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("operation", "body", "kind"),
    [
        ("listfax", "ERR01: Database connection failed", TransientError),
        ("getfax", "ERR13: File could not be opened", TransientError),
        ("sendfax", "ERR15: Invalid Job ID", OutcomeUnknownError),
        ("dlstatus", "ERR24: File is not yet converted", TransientError),
        ("listfax", "ERR02: Login incorrect", AuthError),
        ("getcdr", "ERR02: login incorrect", AuthError),
        ("sendfax", "ERR03: No files to fax", PermanentError),
        ("sendfax", "ERR04: Fax number 12 appears to be invalid", PermanentError),
        ("sendfax", "ERR05: blocked destination", PermanentError),
        ("dlstatus", "ERR06: No jobs to display or job id specified not found", NotFoundError),
        ("dltrans", "ERR06: No jobs to display or job id specified not found", NotFoundError),
        ("clear", "ERR07: Job ID: 77 not found, does not belong to you", NotFoundError),
        ("listlines", "ERR08: Unknown operation specified or bad POST", PermanentError),
        ("getfax", "ERR12: FAX ID 9 not found or does not belong to you", NotFoundError),
        ("delfax", "ERR14: FAX ID 9 not found or does not belong to you", NotFoundError),
        ("disabledid", "ERR16: invalid DID number - 12", PermanentError),
        ("enabledid", "ERR17: DID 3035550101 not found or doesn't belong to you", NotFoundError),
        ("stopfax", "ERR18: No jobid specified", PermanentError),
        ("stopfax", "ERR19: JOB ID 5 not found or does not belong to you", NotFoundError),
        ("stopfax", "ERR20: Job ID - 5 - is not In Queue", PermanentError),
        ("stopfax", "ERR21: Job ID - 5 - not found on fax server", PermanentError),
        ("stopfax", "ERR22: Job ID - 5 - is in transmission", PermanentError),
        ("stopfax", "ERR23: Job ID - 5 - failed to stop", PermanentError),
        ("dlstatus", "ERR25: File does not exist", PermanentError),
        ("listac", "ERR03: unknown operation", PermanentError),
        ("provdid", "ERR04: Invalid DID number, 12", PermanentError),
        ("provdid", "ERR05: 3035551212 does not appear to be available", PermanentError),
        ("deprovdid", "ERR05: 3035551212 is invalid or does not belong to you", NotFoundError),
        ("listfax", "ERR99: something new", PermanentError),
    ],
)
def test_each_error_code_raises_its_class(
    operation: str, body: str, kind: type[ProviderError]
) -> None:
    """Every documented ERRnn answer raises the faxd error class the table names for it."""
    with pytest.raises(ProviderError) as caught:
        wire.raise_for_error(body, operation)
    assert type(caught.value) is kind
    assert caught.value.code == body[:5]
    assert caught.value.operation == operation


def test_empty_answer_codes_do_not_raise() -> None:
    """ERR11 from listfax and ERR06 from status mean "nothing", not failure."""
    wire.raise_for_error("ERR11: No incoming faxes available", "listfax")
    wire.raise_for_error("ERR06: No jobs to display or job id specified not found", "status")
    with pytest.raises(PermanentError):
        wire.raise_for_error("ERR11: No incoming faxes available", "getfax")


def test_error_detected_in_binary_first_bytes() -> None:
    """An ERR answer is found in the first bytes of a bytes body too; PDFs are not errors."""
    with pytest.raises(NotFoundError):
        wire.raise_for_error(b"ERR12: FAX ID 5 not found\n", "getfax")
    wire.raise_for_error(b"%PDF-1.4\nERR01", "getfax")
    assert wire.error_code("  ERR01: x") == "ERR01"
    assert wire.error_code("ERRATA") is None


def test_err08_echo_is_redacted_and_truncated() -> None:
    """ERR08 echoes the POST: the exception shows neither the password nor the whole body."""
    register_secret("hunter2-Secret+/=")
    body = (
        "ERR08: Unknown operation specified or bad POST "
        "username=acme&company=12345&password=hunter2-Secret%2B%2F%3D&operation=sendfx"
        "&faxfiledata%5B%5D=" + "QUJD" * 5000
    )
    with pytest.raises(PermanentError) as caught:
        wire.raise_for_error(body, "sendfax")
    text = str(caught.value) + repr(caught.value)
    assert "hunter2" not in text
    assert "Secret%2B" not in text
    assert len(text) < 1200
    assert "ERR08" in text


def test_auth_error_says_what_to_do() -> None:
    """ERR02's message tells the operator to check the [faxage] credentials."""
    with pytest.raises(AuthError, match=r"\[faxage\]"):
        wire.raise_for_error("ERR02: Login incorrect", "listfax")


# ------------------------------------------------------------------ form


def test_build_form_drops_none_and_false_and_repeats_lists() -> None:
    """None/False are left out, True is "1", lists become name[] repeated in order."""
    form = wire.build_form(
        {
            "operation": "sendfax",
            "faxno": "3035550101",
            "em_notify": True,
            "async": False,
            "tagname": None,
            "faxfilenames": ["a.pdf", "b.txt"],
            "jobids[]": [1, 2],
            "begin": datetime(2024, 1, 2, 3, 4, 5),
            "idgt": 0,
        }
    )
    assert form == [
        ("operation", "sendfax"),
        ("faxno", "3035550101"),
        ("em_notify", "1"),
        ("faxfilenames[]", "a.pdf"),
        ("faxfilenames[]", "b.txt"),
        ("jobids[]", "1"),
        ("jobids[]", "2"),
        ("begin", "2024-01-02 03:04:05"),
        ("idgt", "0"),
    ]


# ------------------------------------------------------------------ listfax


def test_listfax_full_record() -> None:
    """A listfax line with starttime, filename and pagecount parses into a normalised record."""
    result = wire.parse_listfax(LISTFAX_LINE + "\n", starttime=True, filename=True, pagecount=True)
    assert result.malformed == ()
    assert result.records == (
        ListfaxRecord(
            recvid=12345,
            recvdate=datetime(2013, 10, 15, 12, 34, 56),
            starttime=datetime(2013, 10, 15, 12, 33, 10),
            cid="3035550100",
            dnis="4158006052",
            filename="fax12345.pdf",
            pagecount=3,
        ),
    )


def test_listfax_2009_minimal_layout() -> None:
    """Without optional flags the line is <recvid><recvdate><CID><DNIS>; CRLF is tolerated."""
    text = (
        "7\t2009-01-02 03:04:05\tUnavailable\t(415)800-6052\r\n"
        "8\t2009-01-02 03:05:05\t\t(415)800-6053\r\n"
    )
    result = wire.parse_listfax(text, starttime=False, filename=False, pagecount=False)
    assert [(r.recvid, r.cid, r.dnis, r.starttime, r.filename) for r in result.records] == [
        (7, "", "4158006052", None, None),
        (8, "", "4158006053", None, None),
    ]


@pytest.mark.parametrize(
    ("starttime", "filename", "pagecount", "fields"),
    [
        (
            True,
            False,
            False,
            ["1", "2024-05-01 10:00:00", "2024-05-01 09:59:00", "x", "3035550101"],
        ),
        (False, True, False, ["1", "2024-05-01 10:00:00", "x", "3035550101", "f.tif"]),
        (False, False, True, ["1", "2024-05-01 10:00:00", "x", "3035550101", "4"]),
        (False, True, True, ["1", "2024-05-01 10:00:00", "x", "3035550101", "f.tif", "4"]),
    ],
)
def test_listfax_columns_follow_the_flags(
    starttime: bool, filename: bool, pagecount: bool, fields: list[str]
) -> None:
    """Optional listfax columns are placed by which flags were sent."""
    result = wire.parse_listfax(
        "\t".join(fields), starttime=starttime, filename=filename, pagecount=pagecount
    )
    (record,) = result.records
    assert record.dnis == "3035550101"
    assert (record.starttime is not None) == starttime
    assert record.filename == ("f.tif" if filename else None)
    assert record.pagecount == (4 if pagecount else None)


def test_listfax_err11_is_empty() -> None:
    """ERR11 (no incoming faxes) is an empty result, not an error."""
    result = wire.parse_listfax(
        "ERR11: No incoming faxes available", starttime=True, filename=True, pagecount=True
    )
    assert result.records == () and result.malformed == ()


def test_listfax_empty_fields_are_real_fields() -> None:
    """An empty caller id keeps its column: the tabs around it are never collapsed."""
    line = "5\t2024-05-01 10:00:00\t2024-05-01 09:59:00\t\t(303)555-0101\t\t"
    (record,) = wire.parse_listfax(line, starttime=True, filename=True, pagecount=True).records
    assert (record.cid, record.dnis, record.filename, record.pagecount) == (
        "",
        "3035550101",
        None,
        None,
    )


def test_listfax_malformed_lines_are_reported_and_the_rest_parsed() -> None:
    """Bad lines among good ones are reported with line numbers; good lines still parse."""
    text = "\n".join(
        [
            LISTFAX_LINE,
            "garbage without tabs",
            LISTFAX_LINE.replace("12345\t", "abc\t", 1),
            LISTFAX_LINE.replace("2013-10-15 12:34:56", "yesterday"),
            "1\t2\t3",
            LISTFAX_LINE.replace("12345", "12346", 1),
        ]
    )
    result = wire.parse_listfax(text, starttime=True, filename=True, pagecount=True)
    assert [r.recvid for r in result.records] == [12345, 12346]
    assert [m.lineno for m in result.malformed] == [2, 3, 4, 5]
    assert "expected 7" in result.malformed[0].reason
    assert "recvid" in result.malformed[1].reason
    assert "recvdate" in result.malformed[2].reason


def test_listfax_300_char_caller_id_is_cut_down() -> None:
    """A hostile 300-character caller id is reduced to at most 32 digits."""
    cid = "9" * 150 + "<script>" * 18 + "x" * 6
    assert len(cid) == 300
    line = LISTFAX_LINE.replace("(303)555-0100", cid)
    (record,) = wire.parse_listfax(line, starttime=True, filename=True, pagecount=True).records
    assert record.cid == "9" * 32


@pytest.mark.parametrize(
    ("hostile", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\windows\\system.ini", "system.ini"),
        ("..", None),
        ("/", None),
        ("fax 1;rm -rf.pdf", "fax_1_rm_-rf.pdf"),
        (".hidden.pdf", "hidden.pdf"),
    ],
)
def test_listfax_hostile_filename_is_sanitised(hostile: str, safe: str | None) -> None:
    """A filename from the server becomes a basename of safe characters, or None."""
    line = LISTFAX_LINE.replace("fax12345.pdf", hostile)
    (record,) = wire.parse_listfax(line, starttime=True, filename=True, pagecount=True).records
    assert record.filename == safe


def test_listfax_error_other_than_err11_raises() -> None:
    """A real error from listfax (ERR02) raises instead of parsing as a malformed line."""
    with pytest.raises(AuthError):
        wire.parse_listfax("ERR02: Login incorrect", starttime=True, filename=True, pagecount=True)


def test_listfax_extra_trailing_column_is_ignored_and_reported() -> None:
    """An 8-column listfax line is read by its first 7 columns; the shape is reported once."""
    text = LISTFAX_LINE + "\tTSID 01\n" + LISTFAX_LINE.replace("12345", "12346", 1) + "\t\n"
    result = wire.parse_listfax(text, starttime=True, filename=True, pagecount=True)
    assert [(r.recvid, r.pagecount, r.filename) for r in result.records] == [
        (12345, 3, "fax12345.pdf"),
        (12346, 3, "fax12345.pdf"),
    ]
    assert result.malformed == ()
    (shape,) = result.shapes
    assert shape.message == "FAXAGE added a column to listfax: 8 fields, expected 7; extra ignored"


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        (0, "-5", "negative"),
        (0, str(2**63), "larger than"),
        (0, "9" * 5000, "larger than"),
        (0, "\u0661\u0662", "not a number"),
        (6, "1000000", "larger than 10000"),
        (6, "-1", "negative"),
    ],
)
def test_listfax_insane_number_makes_only_its_line_malformed(
    column: int, value: str, reason: str
) -> None:
    """A negative or 2^63+ recvid, or a million-page fax, is one malformed line; the rest parse."""
    fields = LISTFAX_LINE.replace("12345", "12346", 1).split("\t")
    fields[column] = value
    text = "\n".join([LISTFAX_LINE, "\t".join(fields), LISTFAX_LINE.replace("12345", "12347", 1)])
    result = wire.parse_listfax(text, starttime=True, filename=True, pagecount=True)
    assert [r.recvid for r in result.records] == [12345, 12347]
    (bad,) = result.malformed
    assert bad.lineno == 2 and reason in bad.reason


def test_listfax_largest_sane_values_are_kept() -> None:
    """2^63-1 is still an id and 10000 still a page count."""
    line = LISTFAX_LINE.replace("12345", str(2**63 - 1), 1).rsplit("\t", 1)[0] + "\t10000"
    (record,) = wire.parse_listfax(line, starttime=True, filename=True, pagecount=True).records
    assert (record.recvid, record.pagecount) == (2**63 - 1, 10000)


# ------------------------------------------------------------------ status

STATUS_BASE = [
    "1001",
    "98765",
    "Acme Legal",
    "(303)555-0101",
    "success",
    "Success",
    "2024-05-01 10:00:00",
    "2024-05-01 10:02:30",
    "00:01:10",
]


def test_status_record_2009_layout_with_pagecount() -> None:
    """The 2009 status record with pagecount as its final field."""
    (record,) = wire.parse_status(
        "\t".join([*STATUS_BASE, "3"]), csid=False, showlogin=False, xmitpages=False, pagecount=True
    )
    assert record == StatusRecord(
        jobid=1001,
        commid="98765",
        destname="Acme Legal",
        destnum="3035550101",
        shortstatus="success",
        longstatus="Success",
        sendtime=datetime(2024, 5, 1, 10, 0),
        completetime=datetime(2024, 5, 1, 10, 2, 30),
        xmittime="00:01:10",
        pagecount=3,
    )
    assert record.finished


def test_status_optional_columns_in_2014_order() -> None:
    """After xmittime come pagecount, csid, login, xmitpages: the 2014 document's order."""
    line = "\t".join([*STATUS_BASE, "3", "ACME FAX 01", "acme", "2"])
    result = wire.parse_status_result(
        line, csid=True, showlogin=True, xmitpages=True, pagecount=True
    )
    (record,) = result.records
    assert (record.pagecount, record.csid, record.login, record.xmitpages) == (
        3,
        "ACME FAX 01",
        "acme",
        2,
    )
    assert result.malformed == () and result.warnings == () and result.shapes == ()
    (only_csid,) = wire.parse_status(
        "\t".join([*STATUS_BASE, ""]), csid=True, showlogin=False, xmitpages=False, pagecount=False
    )
    assert only_csid.csid == "" and only_csid.pagecount is None


@pytest.mark.parametrize("csid", ["ACME FAX 01", "3035550101", "", "+1 303 555 0101"])
def test_status_csid_of_any_shape_keeps_pages_in_place(csid: str) -> None:
    """A CSID with letters, only digits, or nothing never moves the page counts."""
    line = "\t".join([*STATUS_BASE, "4", csid, "3"])
    result = wire.parse_status_result(
        line, csid=True, showlogin=False, xmitpages=True, pagecount=True
    )
    (record,) = result.records
    assert (record.pagecount, record.csid, record.xmitpages) == (4, csid, 3)
    assert result.warnings == () and result.malformed == ()


def test_status_unreadable_optional_is_unknown_with_one_warning() -> None:
    """Unreadable page counts become None; the record is kept and its line named once."""
    line = "\t".join([*STATUS_BASE, "ACME FAX 01", "n/a", "1000000"])
    result = wire.parse_status_result(
        line, csid=True, showlogin=False, xmitpages=True, pagecount=True
    )
    (record,) = result.records
    assert (record.jobid, record.shortstatus, record.finished) == (1001, "success", True)
    assert (record.pagecount, record.csid, record.xmitpages) == (None, "n/a", None)
    assert result.malformed == ()
    (warning,) = result.warnings
    assert warning.lineno == 1
    assert warning.text == line.replace("\t", " | ")  # the whole line, columns visible
    assert "pagecount 'ACME FAX 01' is not a number" in warning.reason
    assert "xmitpages '1000000' is larger than 10000" in warning.reason


def test_status_2009_reading_loses_no_job() -> None:
    """Lines written csid, xmitpages, pagecount (the old reading) keep every job and status."""
    lines = [
        [*STATUS_BASE[:4], "success", "Success", *STATUS_BASE[6:], "ACME FAX 01", "2", "2"],
        [*STATUS_BASE[:4], "failure", "Busy", *STATUS_BASE[6:], "", "0", "2"],
        [*STATUS_BASE[:4], "success", "Success", *STATUS_BASE[6:], "3035550101", "1", "1"],
    ]
    text = "".join(f"{900 + n}\t" + "\t".join(fields[1:]) + "\n" for n, fields in enumerate(lines))
    result = wire.parse_status_result(
        text, csid=True, showlogin=False, xmitpages=True, pagecount=True
    )
    assert [(r.jobid, r.shortstatus) for r in result.records] == [
        (900, "success"),
        (901, "failure"),
        (902, "success"),
    ]
    assert result.malformed == ()
    assert [w.lineno for w in result.warnings] == [1, 3]  # letters, and a 10-digit "page count"
    assert [r.pagecount for r in result.records] == [None, None, None]


def test_status_only_jobid_and_shortstatus_make_a_record() -> None:
    """Unreadable times or a short line keep the job; a bad jobid or no shortstatus do not."""
    bad_time = [*STATUS_BASE]
    bad_time[6] = "yesterday"
    short = STATUS_BASE  # nine fields although pagecount, csid and xmitpages were asked for
    no_id = ["x1", *STATUS_BASE[1:], "3", "", "3"]
    huge_id = [str(2**63), *STATUS_BASE[1:], "3", "", "3"]
    no_status = [*STATUS_BASE[:4], " ", *STATUS_BASE[5:], "3", "", "3"]
    text = "\n".join(
        "\t".join(fields)
        for fields in (
            [*bad_time, "3", "", "3"],
            short,
            STATUS_BASE[:5],
            no_id,
            huge_id,
            no_status,
            STATUS_BASE[:4],
        )
    )
    result = wire.parse_status_result(
        text, csid=True, showlogin=False, xmitpages=True, pagecount=True
    )
    first, second, third = result.records
    assert (first.sendtime, first.completetime, first.pagecount) == (
        None,
        datetime(2024, 5, 1, 10, 2, 30),
        3,
    )
    assert (second.pagecount, second.csid, second.xmitpages) == (None, None, None)
    assert (third.jobid, third.shortstatus, third.finished) == (1001, "success", True)
    assert (third.longstatus, third.sendtime, third.xmittime) == ("", None, "")
    assert [w.lineno for w in result.warnings] == [1, 2, 3]
    assert "sendtime" in result.warnings[0].reason
    assert "got 9: pagecount, csid, xmitpages unknown" in result.warnings[1].reason
    assert "got 5: longstatus, sendtime" in result.warnings[2].reason
    assert [m.lineno for m in result.malformed] == [4, 5, 6, 7]
    assert "jobid" in result.malformed[0].reason
    assert "larger than" in result.malformed[1].reason
    assert "shortstatus" in result.malformed[2].reason
    assert "got 4" in result.malformed[3].reason


def test_status_extra_trailing_columns_are_ignored_and_reported_once() -> None:
    """A status line with columns faxd does not know is read by position; one shape reported."""
    line = "\t".join([*STATUS_BASE, "3", "ACME FAX 01", "3", "TSID", "tries: 1"])
    text = line + "\n" + line.replace("1001", "1002", 1) + "\n"
    result = wire.parse_status_result(
        text, csid=True, showlogin=False, xmitpages=True, pagecount=True
    )
    assert [(r.jobid, r.pagecount, r.csid, r.xmitpages) for r in result.records] == [
        (1001, 3, "ACME FAX 01", 3),
        (1002, 3, "ACME FAX 01", 3),
    ]
    assert result.malformed == () and result.warnings == ()
    assert result.shapes == (NewShape("status", 14, 12),)


def test_status_pending_all_zero_completetime_is_none() -> None:
    """A pending job's all-zero completetime is None."""
    fields = [*STATUS_BASE]
    fields[4:8] = ["pending", "In Queue Tries: 1 Status: Busy", STATUS_BASE[6], ZERO]
    (record,) = wire.parse_status(
        "\t".join(fields) + "\r\n", csid=False, showlogin=False, xmitpages=False, pagecount=False
    )
    assert record.completetime is None
    assert record.longstatus == "In Queue Tries: 1 Status: Busy"
    assert not record.finished


def test_status_err06_is_empty_list() -> None:
    """ERR06 from status (no jobs) is an empty list."""
    assert (
        wire.parse_status(
            "ERR06: No jobs to display or job id specified not found",
            csid=True,
            showlogin=False,
            xmitpages=True,
            pagecount=True,
        )
        == []
    )


def test_status_bad_line_is_reported_not_fatal() -> None:
    """A status line without the nine fixed columns is reported; the others still parse."""
    text = "\t".join([*STATUS_BASE, "3"]) + "\nbroken\tline\n"
    result = wire.parse_status_result(
        text, csid=False, showlogin=False, xmitpages=False, pagecount=True
    )
    assert [r.jobid for r in result.records] == [1001]
    assert [m.lineno for m in result.malformed] == [2]


# ------------------------------------------------------------------ one-liners


def test_jobid() -> None:
    """`JOBID: n` gives the job id."""
    assert wire.parse_jobid("JOBID: 4242\n") == 4242
    assert wire.parse_jobid("JOBID:17") == 17


@pytest.mark.parametrize("body", ["", "OK", "<html>Service Unavailable</html>", "JOBID: "])
def test_sendfax_answer_without_jobid_is_outcome_unknown(body: str) -> None:
    """A 200 to sendfax without a JOBID leaves the outcome unknown (never resent blindly)."""
    with pytest.raises(OutcomeUnknownError):
        wire.parse_jobid(body)


def test_sendfax_error_answers_keep_their_class() -> None:
    """A sendfax ERR answer raises its own class, not OutcomeUnknownError."""
    with pytest.raises(PermanentError) as caught:
        wire.parse_jobid("ERR04: Fax number 123 appears to be invalid")
    assert not isinstance(caught.value, OutcomeUnknownError)


def test_acknowledgements_in_both_document_forms() -> None:
    """Success words are accepted in both documents' forms (with or without the id)."""
    wire.parse_deleted("12345 Deleted", 12345)
    wire.parse_deleted("Deleted\r\n", 12345)
    wire.parse_cleared("77 cleared", 77)
    wire.parse_stopped("78 stopped\n", 78)
    wire.parse_enabled("Enabled 3035551212", "3035551212")
    wire.parse_enabled("Enabled")
    wire.parse_disabled("Disabled 3035551212", "3035551212")
    wire.parse_provisioned("3035551212 provisioned", "3035551212")
    wire.parse_deprovisioned("3035551212 deprovisioned", "3035551212")


def test_acknowledgement_for_another_id_or_word_is_rejected() -> None:
    """An answer naming another id, or another word, is not taken as success."""
    with pytest.raises(TransientError):
        wire.parse_deleted("999 Deleted", 12345)
    with pytest.raises(TransientError):
        wire.parse_cleared("77 stopped", 77)
    with pytest.raises(NotFoundError):
        wire.parse_deleted("ERR14: FAX ID 12345 not found or does not belong to you", 12345)


def test_portable() -> None:
    """portable answers '1' (portable) or '0' (not); anything else is rejected."""
    assert wire.parse_portable("1\n") is True
    assert wire.parse_portable("0") is False
    with pytest.raises(TransientError):
        wire.parse_portable("maybe")


# ------------------------------------------------------------------ lists


def test_number_lists() -> None:
    """listlines/listdids: newline-separated 10-digit numbers, normalised."""
    answer = wire.parse_number_list("3035551212\n3035551234\r\n(303)555-1111\n\n")
    assert answer.items == ("3035551212", "3035551234", "3035551111")
    assert answer.shapes == ()
    assert wire.parse_number_list("", "listdids").items == ()


def test_listac() -> None:
    """listac: a newline-separated list of area codes."""
    assert wire.parse_listac("202\n303\n415\n").items == ("202", "303", "415")


def test_listnpanxx() -> None:
    """listnpanxx: `<npanxx><tab><rcname><tab><rcstate>`, toll-free and empty included."""
    text = "303991\tDenver\tCO\n800555\tToll-Free\tToll-Free\n"
    assert wire.parse_listnpanxx(text).items == (
        NpaNxx("303991", "Denver", "CO"),
        NpaNxx("800555", "Toll-Free", "Toll-Free"),
    )
    assert wire.parse_listnpanxx("").items == ()


def test_cdr_both_layouts() -> None:
    """getcdr: `calldate,direction,src,dst,duration`, with nuid first when nuidshow=1."""
    plain = "2024-05-01 10:00:00,IN,(303)555-0100,(415)800-6052,63\n"
    assert wire.parse_cdr(plain, nuidshow=False).items == (
        CdrRecord(datetime(2024, 5, 1, 10), "IN", "3035550100", "4158006052", 63),
    )
    with_nuid = "991,2024-05-01 10:00:00,OUT,4158006052,3035550101,12\r\n"
    (record,) = wire.parse_cdr(with_nuid, nuidshow=True).items
    assert (record.nuid, record.direction, record.duration) == (991, "OUT", 12)


def test_one_bad_line_is_skipped_and_the_rest_of_a_list_kept() -> None:
    """A bad line in getcdr or a provisioning list is returned in malformed, not fatal.

    Each parser keeps the lines around it, and names the bad one by its line
    number, the reason and its text.
    """
    numbers = wire.parse_number_list("3035551212\nnot-a-number\n3035551234\n", "listdids")
    assert numbers.items == ("3035551212", "3035551234")
    assert numbers.malformed == (
        MalformedLine(2, "not-a-number", "'not-a-number' is not a phone number"),
    )
    codes = wire.parse_listac("303\n30x\n415\n")
    assert codes.items == ("303", "415")
    assert codes.malformed == (MalformedLine(2, "30x", "'30x' is not an area code"),)
    npanxx = wire.parse_listnpanxx("303991\tDenver\n800555\tToll-Free\tToll-Free\n")
    assert npanxx.items == (NpaNxx("800555", "Toll-Free", "Toll-Free"),)
    assert npanxx.malformed == (
        MalformedLine(1, "303991 | Denver", "not <npanxx><tab><rcname><tab><rcstate>"),
    )
    good = "991,2024-05-01 10:00:00,OUT,4158006052,3035550101,12"
    cdr = wire.parse_cdr(
        "\n".join(
            [
                "992,2024-05-01 10:01:00,IN,3035550100,4158006052,-5",
                good,
                "2024-05-01 10:02:00,IN,3035550100,4158006052,7",
                f"{2**63},2024-05-01 10:03:00,IN,3035550100,4158006052,7",
            ]
        ),
        nuidshow=True,
    )
    assert [record.nuid for record in cdr.items] == [991]
    assert [(bad.lineno, bad.reason) for bad in cdr.malformed] == [
        (1, "duration '-5' is negative, not a sane value"),
        (3, "expected 6 comma-separated fields, got 5"),
        (4, f"nuid '{2**63}' is larger than {2**63 - 1}, not a sane value"),
    ]
    assert cdr.malformed[0].text == "992,2024-05-01 10:01:00,IN,3035550100,4158006052,-5"


def test_lists_ignore_extra_trailing_columns() -> None:
    """Number lists, listac, listnpanxx and getcdr read by position and report the new shape."""
    numbers = wire.parse_number_list("3035551212\tDenver\n3035551234\tDenver\n", "listdids")
    assert numbers.items == ("3035551212", "3035551234")
    assert numbers.shapes == (NewShape("listdids", 2, 1),)
    codes = wire.parse_listac("303\t12\n")
    assert (codes.items, codes.shapes) == (("303",), (NewShape("listac", 2, 1),))
    npanxx = wire.parse_listnpanxx("303991\tDenver\tCO\t40\n")
    assert npanxx.items == (NpaNxx("303991", "Denver", "CO"),)
    assert npanxx.shapes == (NewShape("listnpanxx", 4, 3),)
    cdr = wire.parse_cdr(
        "991,2024-05-01 10:00:00,OUT,4158006052,3035550101,12,0.07\n", nuidshow=True
    )
    assert [(r.nuid, r.duration) for r in cdr.items] == [(991, 12)]
    assert cdr.shapes == (NewShape("getcdr", 7, 6),)


# ------------------------------------------------------------------ files


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ('attachment; filename="fax12345.pdf"', "fax12345.pdf"),
        ("attachment; filename=fax1.tif", "fax1.tif"),
        ('attachment; filename="../../etc/passwd"', "passwd"),
        ("attachment; filename*=UTF-8''%2E%2E%2Fsecret%20file.pdf", "secret_file.pdf"),
        ('attachment; filename=".."', None),
        ("attachment", None),
        (None, None),
    ],
)
def test_content_disposition_name_is_never_a_path(header: str | None, name: str | None) -> None:
    """The server's file name is reduced to a safe basename (or None)."""
    assert wire.filename_from_content_disposition(header) == name


def test_sniff_kind() -> None:
    """PDF and both TIFF byte orders are recognised by magic; anything else is None."""
    assert wire.sniff_kind(b"%PDF-1.7\n") == "pdf"
    assert wire.sniff_kind(b"II*\x00\x08\x00") == "tiff"
    assert wire.sniff_kind(b"MM\x00*\x00\x00") == "tiff"
    assert wire.sniff_kind(b"<html>") is None
    assert wire.sniff_kind(b"") is None
