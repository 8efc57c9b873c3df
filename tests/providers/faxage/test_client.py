"""FaxageClient's fields, retry policy and secrecy, with a fake transport or a scripted server."""

from __future__ import annotations

import base64
from collections.abc import Callable, Collection, Generator
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus

import pytest
import structlog
from scripted_http import Received, ScriptedServer, reply

from faxd.errors import (
    AuthError,
    DownloadError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    ProviderError,
    TransientError,
)
from faxd.providers.faxage import FaxageClient, FaxFile, wire
from faxd.providers.faxage.formbody import FormBody
from faxd.providers.faxage.records import DownloadResult
from faxd.providers.faxage.transport import BATCH_LINES, Form, TextBatch, mark_unsent, split_batches

PASSWORD = "p@ss+w/rd=Sekr3t!"

Answer = str | ProviderError | Callable[[], str]


class FakeTransport:
    """Answers from a script and records every call (path, form, operation)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, Form, str]] = []
        self.closed = False

    def _next(self) -> str:
        answer = self.answers.pop(0)
        if isinstance(answer, ProviderError):
            raise answer
        return answer() if callable(answer) else answer

    def post_text(self, path: str, form: Form | FormBody, *, operation: str) -> str:
        if isinstance(form, FormBody):  # sendfax streams its files: record the pairs sent
            form = parse_qsl(b"".join(form).decode("ascii"), keep_blank_values=True)
        self.calls.append((path, form, operation))
        return self._next()

    def post_lines(
        self, path: str, form: Form, *, operation: str, batch_lines: int = BATCH_LINES
    ) -> Generator[TextBatch, None, None]:
        self.calls.append((path, form, operation))
        text = self._next()
        wire.raise_for_error(text, operation)  # as the real one does before any batch
        return split_batches([text.encode()], batch_lines=batch_lines)

    def download(
        self,
        path: str,
        form: Form,
        dest: Path,
        *,
        operation: str,
        expect: Collection[str] = ("pdf", "tiff"),
        max_bytes: int | None = None,
    ) -> DownloadResult:
        self.calls.append((path, [*form, ("expect", ",".join(sorted(expect)))], operation))
        self._next()
        return DownloadResult(dest, 1, "0" * 64, "pdf", None)

    def close(self) -> None:
        self.closed = True

    def fields(self, index: int = -1) -> dict[str, str | list[str]]:
        """The last call's form, arrays gathered under their ``name[]``."""
        out: dict[str, str | list[str]] = {}
        for name, value in self.calls[index][1]:
            if name.endswith("[]"):
                existing = out.setdefault(name, [])
                assert isinstance(existing, list)
                existing.append(value)
            else:
                out[name] = value
        return out


def make(fake: FakeTransport, sleeps: list[float] | None = None, retries: int = 3) -> FaxageClient:
    record = sleeps if sleeps is not None else []
    return FaxageClient(
        "acme",
        "12345",
        PASSWORD,
        transport=fake,
        sleep=record.append,
        backoff=1.0,
        retries=retries,
    )


# ------------------------------------------------------------------ fields per operation


def test_credentials_and_operation_lead_every_form() -> None:
    """Every httpsfax.php POST carries username, company, password and operation."""
    fake = FakeTransport("ERR11: No incoming faxes available")
    make(fake).listfax()
    path, form, operation = fake.calls[0]
    assert (path, operation) == ("httpsfax.php", "listfax")
    assert form[:4] == [
        ("username", "acme"),
        ("company", "12345"),
        ("password", PASSWORD),
        ("operation", "listfax"),
    ]


def test_sendfax_standard_mode_fields(tmp_path: Path) -> None:
    """sendfax sends every file base64'd in order, with all optional fields when given."""
    doc = tmp_path / "letter.pdf"
    doc.write_bytes(b"%PDF-1.4 \xff\xfe+/")
    fake = FakeTransport("JOBID: 4242")
    jobid = make(fake).sendfax(
        "+1 (303) 555-0101",
        "A very long recipient name that goes past 32",
        [FaxFile("letter.pdf", doc), FaxFile.from_bytes("notes.txt", b"hello")],
        tagname="Acme",
        tagnumber="1.303.555.0100",
        em_notify=True,
        url_notify="https://example.com/cb",
        resolution=1,
        contrastalgo=2,
        priority="low",
    )
    assert jobid == 4242
    assert fake.fields() == {
        "username": "acme",
        "company": "12345",
        "password": PASSWORD,
        "operation": "sendfax",
        "recipname": "A very long recipient name that ",
        "faxno": "3035550101",
        "faxfilenames[]": ["letter.pdf", "notes.txt"],
        "faxfiledata[]": [
            base64.b64encode(doc.read_bytes()).decode(),
            base64.b64encode(b"hello").decode(),
        ],
        "tagname": "Acme",
        "tagnumber": "1.303.555.0100",
        "em_notify": "1",
        "url_notify": "https://example.com/cb",
        "resolution": "1",
        "contrastalgo": "2",
        "priority": "low",
    }


def test_sendfax_url_mode_fields() -> None:
    """One URL goes as faxurl; several as faxurls[] with faxurltypes[]; async as a flag."""
    fake = FakeTransport("JOBID: 1", "JOBID: 2")
    client = make(fake)
    client.sendfax_urls("3035550101", "Bob", ["https://example.com/a.html"])
    first = fake.fields()
    assert first["faxurl"] == "https://example.com/a.html"
    assert "async" not in first and "faxurls[]" not in first
    client.sendfax_urls(
        "3035550101",
        "Bob",
        ["https://example.com/d.asp?id=2", "https://example.com/b"],
        url_types=["doc", "html"],
        async_=True,
    )
    second = fake.fields()
    assert second["faxurls[]"] == ["https://example.com/d.asp?id=2", "https://example.com/b"]
    assert second["faxurltypes[]"] == ["doc", "html"]
    assert second["async"] == "1"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: c.sendfax("3035550101", "x", []), "no files"),
        (lambda c: c.sendfax("12", "x", [FaxFile.from_bytes("a.pdf", b"")]), "10-digit"),
        (lambda c: c.sendfax("3035550101", "x", [FaxFile.from_bytes("a.exe", b"")]), ".exe"),
        (
            lambda c: c.sendfax(
                "3035550101", "x", [FaxFile.from_bytes("a.pdf", b"")], priority="x"
            ),
            "priority",
        ),
        (lambda c: c.sendfax_urls("3035550101", "x", ["u"], url_types=[]), "url_types"),
        (lambda c: c.getcdr(begin="2024-01-01 00:00:00"), "begin and end"),
        (lambda c: c.provdid("555"), "10-digit"),
    ],
)
def test_bad_arguments_are_refused_before_posting(
    call: Callable[[FaxageClient], object], message: str
) -> None:
    """Values FAXAGE would refuse are refused locally with a message, and nothing is posted."""
    fake = FakeTransport()
    with pytest.raises(PermanentError, match=message):
        call(make(fake))
    assert fake.calls == []


def test_status_fields() -> None:
    """status sends jobid for one job, jobids[] for several, flags as documented."""
    fake = FakeTransport("ERR06: No jobs", "ERR06: No jobs")
    client = make(fake)
    assert client.status([7], begin=datetime(2024, 5, 1, 8, 0), end="2024-05-02 00:00:00") == []
    one = fake.fields()
    assert one["jobid"] == "7" and "jobids[]" not in one
    assert (one["pagecount"], one["csid"], one["xmitpages"]) == ("1", "1", "1")
    assert "showlogin" not in one and "useronly" not in one and "extqueue" not in one
    assert (one["begin"], one["end"]) == ("2024-05-01 08:00:00", "2024-05-02 00:00:00")
    client.status([7, 8], showlogin=True, useronly=True, extqueue=True, pagecount=False)
    many = fake.fields()
    assert many["jobids[]"] == ["7", "8"] and "jobid" not in many
    assert (many["showlogin"], many["useronly"], many["extqueue"]) == ("1", "1", "1")
    assert "pagecount" not in many
    assert client.status([]) == [] and len(fake.calls) == 2


def test_listfax_always_sends_the_fixed_column_flags() -> None:
    """listfax always asks for starttime, filename and pagecount, plus the filters given."""
    fake = FakeTransport("ERR11: No incoming faxes available")
    make(fake).listfax(
        idgt=41, begin="2024-05-01 00:00:00", useronly=True, didnumber="(415)800-6052"
    )
    fields = fake.fields()
    assert {k: fields[k] for k in ("starttime", "filename", "pagecount", "idasc")} == {
        "starttime": "1",
        "filename": "1",
        "pagecount": "1",
        "idasc": "1",
    }
    assert (fields["idgt"], fields["useronly"], fields["didnumber"]) == ("41", "1", "4158006052")


@pytest.mark.parametrize(
    ("call", "answer", "path", "operation", "expected"),
    [
        (lambda c: c.delfax(5), "5 Deleted", "httpsfax.php", "delfax", {"faxid": "5"}),
        (lambda c: c.clear(6), "6 cleared", "httpsfax.php", "clear", {"jobid": "6"}),
        (lambda c: c.stopfax(6), "6 stopped", "httpsfax.php", "stopfax", {"jobid": "6"}),
        (
            lambda c: c.disabledid("303-555-1212"),
            "Disabled",
            "httpsfax.php",
            "disabledid",
            {"didnumber": "3035551212"},
        ),
        (
            lambda c: c.enabledid("3035551212"),
            "Enabled 3035551212",
            "httpsfax.php",
            "enabledid",
            {"didnumber": "3035551212"},
        ),
        (
            lambda c: c.portable("3035551212"),
            "1",
            "httpsfax.php",
            "portable",
            {"didnumber": "3035551212"},
        ),
        (lambda c: c.listlines(), "3035551212\n", "httpsfax.php", "listlines", {}),
        (lambda c: c.listac(), "303\n", "provision.php", "listac", {}),
        (lambda c: c.listnpanxx("303"), "", "provision.php", "listnpanxx", {"ac": "303"}),
        (
            lambda c: c.listdids(npanxx="303991"),
            "3039911234\n",
            "provision.php",
            "listdids",
            {"npanxx": "303991"},
        ),
        (
            lambda c: c.provdid("3039911234"),
            "3039911234 provisioned",
            "provision.php",
            "provdid",
            {"didnumber": "3039911234"},
        ),
        (
            lambda c: c.deprovdid("3039911234"),
            "3039911234 deprovisioned",
            "provision.php",
            "deprovdid",
            {"didnumber": "3039911234"},
        ),
    ],
)
def test_simple_operations_post_their_documented_fields(
    call: Callable[[FaxageClient], object],
    answer: str,
    path: str,
    operation: str,
    expected: dict[str, str],
) -> None:
    """Each simple operation posts to its URL with its operation and documented fields."""
    fake = FakeTransport(answer)
    call(make(fake))
    fields = fake.fields()
    assert fake.calls[0][0] == path and fields["operation"] == operation
    extra = {k: v for k, v in fields.items() if k not in ("username", "company", "password")}
    assert extra == {"operation": operation, **expected}


def test_getcdr_posts_to_getcdr_php_without_operation() -> None:
    """getcdr.php takes only credentials and its filters (no operation field)."""
    fake = FakeTransport("1,2024-05-01 10:00:00,IN,(303)555-0100,(415)800-6052,60\n")
    (record,) = make(fake).getcdr(nuidgt=0, nuidshow=True, didnumber="4158006052").items
    assert fake.calls[0][0] == "getcdr.php"
    fields = fake.fields()
    assert "operation" not in fields
    assert (fields["nuidgt"], fields["nuidshow"], fields["didnumber"]) == ("0", "1", "4158006052")
    assert record.nuid == 1 and record.dst == "4158006052"


#: (call, an answer with one column more than faxd reads, the notice it must log)
WIDER_LISTS: list[tuple[Callable[[FaxageClient], object], str, str]] = [
    (lambda c: c.listlines(), "3035551212\tDenver\n", "listlines: 2 fields, expected 1"),
    (lambda c: c.listac(), "303\t12\n", "listac: 2 fields, expected 1"),
    (lambda c: c.listnpanxx("303"), "303991\tDenver\tCO\t40\n", "listnpanxx: 4 fields, expected 3"),
    (lambda c: c.listdids("303"), "3039911234\tDenver\n", "listdids: 2 fields, expected 1"),
    (
        lambda c: c.getcdr(nuidgt=0, nuidshow=True),
        "991,2024-05-01 10:00:00,OUT,4158006052,3035550101,12,0.07\n",
        "getcdr: 7 fields, expected 6",
    ),
]


def test_getcdr_and_provisioning_lists_log_a_new_column_once() -> None:
    """Each list answer with an added column is read, and its shape logged once per client."""
    fake = FakeTransport(*(answer for _, answer, _ in WIDER_LISTS for _ in range(3)))
    client = make(fake)
    with structlog.testing.capture_logs() as logs:
        for call, _, _ in WIDER_LISTS:
            for _ in range(3):
                answer = call(client)
                assert isinstance(answer, wire.ListAnswer)
                assert len(answer.items) == 1 and answer.malformed == ()
    notices = [entry["message"] for entry in logs if entry["event"] == "faxage.new_columns"]
    assert notices == [
        f"FAXAGE added a column to {shape}; extra ignored" for _, _, shape in WIDER_LISTS
    ]


def test_downloads_send_their_ids_and_expected_kinds(tmp_path: Path) -> None:
    """getfax sends faxid; dlstatus jobid+viewtype and expects that kind; dltrans expects PDF."""
    fake = FakeTransport("", "", "")
    client = make(fake)
    client.getfax(9, tmp_path / "a")
    client.dlstatus(10, tmp_path / "b", viewtype="tiff")
    client.dltrans(11, tmp_path / "c")
    assert [dict(form)["operation"] for _p, form, _o in fake.calls] == [
        "getfax",
        "dlstatus",
        "dltrans",
    ]
    assert dict(fake.calls[0][1])["faxid"] == "9"
    assert dict(fake.calls[0][1])["expect"] == "pdf,tiff"
    assert (dict(fake.calls[1][1])["viewtype"], dict(fake.calls[1][1])["expect"]) == ("tiff",) * 2
    assert (dict(fake.calls[2][1])["jobid"], dict(fake.calls[2][1])["expect"]) == ("11", "pdf")


# ------------------------------------------------------------------ retry policy


def test_transient_faults_are_retried_with_growing_jittered_backoff() -> None:
    """Transient faults are retried; delays grow exponentially within the jitter band."""
    fake = FakeTransport(
        TransientError("HTTP 500", operation="listlines"),
        TransientError("ERR01", operation="listlines", code="ERR01"),
        "3035551212",
    )
    sleeps: list[float] = []
    assert make(fake, sleeps).listlines().items == ("3035551212",)
    assert len(fake.calls) == 3
    assert 0.5 <= sleeps[0] < 1.5 and 1.0 <= sleeps[1] < 3.0


def test_retries_stop_after_the_limit() -> None:
    """After `retries` retries the last transient error is raised."""
    fake = FakeTransport(*[TransientError(f"fault {i}", operation="listlines") for i in range(5)])
    with pytest.raises(TransientError, match="fault 2"):
        make(fake, retries=2).listlines()
    assert len(fake.calls) == 3


@pytest.mark.parametrize(
    "error",
    [
        AuthError("ERR02: Login incorrect", operation="delfax", code="ERR02"),
        NotFoundError("ERR14", operation="delfax", code="ERR14"),
        PermanentError("ERR08", operation="delfax", code="ERR08"),
    ],
)
def test_permanent_faults_are_not_retried(error: ProviderError) -> None:
    """Auth, not-found and other permanent errors are raised at once, without sleeping."""
    fake = FakeTransport(error, "5 Deleted")
    sleeps: list[float] = []
    with pytest.raises(type(error)):
        make(fake, sleeps).delfax(5)
    assert len(fake.calls) == 1 and sleeps == []


@pytest.mark.parametrize(
    ("call", "answer"),
    [
        (lambda c: c.provdid("3039911234"), "3039911234 provisioned"),
        (lambda c: c.deprovdid("3039911234"), "3039911234 deprovisioned"),
        (lambda c: c.stopfax(6), "6 stopped"),
    ],
)
def test_state_changes_are_not_repeated_after_a_post_that_may_have_arrived(
    call: Callable[[FaxageClient], object], answer: str
) -> None:
    """provdid, deprovdid and stopfax are not posted again after a read timeout."""
    fake = FakeTransport(TransientError("read timed out", operation="x"), answer)
    with pytest.raises(TransientError, match="may have taken effect"):
        call(make(fake))
    assert len(fake.calls) == 1


def test_state_changes_are_retried_when_the_post_never_arrived() -> None:
    """provdid is posted again after a refused connection or an ERR01 answer."""
    fake = FakeTransport(
        mark_unsent(TransientError("refused", operation="provdid")),
        TransientError("ERR01", operation="provdid", code="ERR01"),
        "3039911234 provisioned",
    )
    make(fake).provdid("3039911234")
    assert len(fake.calls) == 3


def test_download_errors_are_retried(tmp_path: Path) -> None:
    """A download that failed verification is tried again."""
    fake = FakeTransport(DownloadError("short body", operation="getfax"), "")
    result = make(fake).getfax(3, tmp_path / "f.pdf")
    assert result.path == tmp_path / "f.pdf" and len(fake.calls) == 2


def test_sendfax_retried_when_the_post_never_left() -> None:
    """sendfax is posted again when the connection was never made."""
    unsent = mark_unsent(TransientError("refused", operation="sendfax"))
    fake = FakeTransport(unsent, "JOBID: 9")
    assert make(fake).sendfax("3035550101", "x", [FaxFile.from_bytes("a.pdf", b"x")]) == 9
    assert len(fake.calls) == 2


def test_sendfax_retried_after_err01() -> None:
    """ERR01 (database connection failed) means nothing was queued: sendfax may retry."""
    fake = FakeTransport(TransientError("ERR01", operation="sendfax", code="ERR01"), "JOBID: 9")
    assert make(fake).sendfax("3035550101", "x", [FaxFile.from_bytes("a.pdf", b"x")]) == 9


@pytest.mark.parametrize(
    "answer",
    [
        TransientError("HTTP 500", operation="sendfax"),
        TransientError("read timed out", operation="sendfax"),
        "<html>gateway</html>",
        OutcomeUnknownError("ERR15: Invalid Job ID", operation="sendfax", code="ERR15"),
    ],
)
def test_sendfax_not_retried_when_the_outcome_is_unknown(answer: Answer) -> None:
    """After a fault that may have queued the fax, sendfax raises OutcomeUnknownError once."""
    fake = FakeTransport(answer, "JOBID: 10")
    sleeps: list[float] = []
    with pytest.raises(OutcomeUnknownError):
        make(fake, sleeps).sendfax("3035550101", "x", [FaxFile.from_bytes("a.pdf", b"x")])
    assert len(fake.calls) == 1 and sleeps == []


def test_sendfax_refused_number_is_permanent_not_unknown() -> None:
    """An ERR04/ERR05 refusal is a definite permanent error, not an unknown outcome."""
    fake = FakeTransport(PermanentError("ERR05: blocked", operation="sendfax", code="ERR05"))
    with pytest.raises(PermanentError) as caught:
        make(fake).sendfax("3035550101", "x", [FaxFile.from_bytes("a.pdf", b"x")])
    assert not isinstance(caught.value, OutcomeUnknownError)


def test_sendfax_unsent_until_retries_run_out_stays_transient() -> None:
    """If every attempt failed before sending, the error stays transient (safe to requeue)."""
    fake = FakeTransport(*[mark_unsent(TransientError("refused", operation="sendfax"))] * 4)
    with pytest.raises(TransientError) as caught:
        make(fake, retries=3).sendfax("3035550101", "x", [FaxFile.from_bytes("a.pdf", b"x")])
    assert not isinstance(caught.value, OutcomeUnknownError)
    assert len(fake.calls) == 4


# ------------------------------------------------------------------ secrecy


def test_repr_hides_password_and_context_manager_closes() -> None:
    """The client's repr never shows the password; `with` closes the transport."""
    fake = FakeTransport()
    with make(fake) as client:
        assert PASSWORD not in repr(client) and "acme" in repr(client)
    assert fake.closed


def test_faxfile_needs_exactly_one_source(tmp_path: Path) -> None:
    """A FaxFile has a path or bytes, not both and not neither; bytes stay out of its repr."""
    with pytest.raises(ValueError, match="exactly one"):
        FaxFile("a.pdf")
    with pytest.raises(ValueError, match="exactly one"):
        FaxFile("a.pdf", tmp_path / "a.pdf", b"x")
    assert "secretdata" not in repr(FaxFile.from_bytes("a.pdf", b"secretdata"))


def echo_post(prefix: str) -> Callable[[object, Received], None]:
    """An answer that echoes the raw POST after ``prefix``, as FAXAGE's ERR08 does."""

    def act(handler: object, req: Received) -> None:
        reply(prefix + req.raw.decode("latin-1"))(handler, req)  # type: ignore[arg-type]

    return act


@pytest.mark.parametrize(
    ("prefix", "error"),
    [
        ("ERR08: Unknown operation specified or bad POST ", PermanentError),
        ("ERR02: Login incorrect ", AuthError),
    ],
)
def test_password_never_leaks_from_echoed_posts(
    scripted: ScriptedServer, prefix: str, error: type[ProviderError]
) -> None:
    """An answer echoing the POST leaks the password into no exception and no log line."""
    scripted.then(echo_post("ERR01: Database connection failed "), echo_post(prefix))
    client = FaxageClient(
        "acme", "12345", PASSWORD, base_url=scripted.base_url, timeout=2.0, sleep=lambda _s: None
    )
    with structlog.testing.capture_logs() as logs, pytest.raises(error) as caught:
        client.sendfax_urls("3035550101", "x", ["https://example.com/"])
    client.close()
    assert len(scripted.received) == 2  # ERR01 retried, then the echo that raised
    assert quote_plus(PASSWORD) in scripted.received[1].raw.decode()  # the server did see it
    leaks = [PASSWORD, quote(PASSWORD, safe=""), quote_plus(PASSWORD), "Sekr3t"]
    texts = [str(caught.value), repr(caught.value), repr(client), *map(repr, logs)]
    assert logs, "the ERR01 retry should have been logged"
    for text in texts:
        for leak in leaks:
            assert leak not in text
