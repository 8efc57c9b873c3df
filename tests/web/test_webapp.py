"""The WSGI app alone: which hint each FAXAGE body gives, refusals logged once a minute."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from structlog.testing import capture_logs

from faxd.config import Config, DatabaseSettings, FaxageSettings, InboundSettings, OutboundSettings
from faxd.store.db import Database
from faxd.web.app import WebApp
from faxd.web.health import Health
from faxd.web.hooks import FAXAGE, Hint, HintKind
from faxd.web.metrics import Metrics

TOKEN = "tok-0123456789abcdef"


def make_app(tmp_path: Path, now: list[float]) -> tuple[WebApp, list[tuple[str, Hint]]]:
    url = f"sqlite:///{tmp_path / 'faxd.db'}"
    db = Database(url)
    db.upgrade()
    config = Config(
        path=tmp_path / "faxd.toml",
        faxage=FaxageSettings("acme", "12345", "pw-xxxxxxxx"),
        database=DatabaseSettings(url),
        inbound=InboundSettings(),
        routes=(),
        smtp=None,
        outbound=OutboundSettings(enabled=False),
    )
    hints: list[tuple[str, Hint]] = []
    app = WebApp(
        TOKEN,
        on_hint=lambda provider, hint: hints.append((provider, hint)),
        health=lambda: Health(True, {"status": "ok"}),
        metrics=Metrics(db, config),
        monotonic=lambda: now[0],
    )
    return app, hints


def call(app: WebApp, path: str, body: bytes = b"", addr: str = "192.0.2.7") -> tuple[str, bytes]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"] = status

    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "REMOTE_ADDR": addr,
        "CONTENT_LENGTH": str(len(body)), "wsgi.input": io.BytesIO(body),
        "CONTENT_TYPE": "application/x-www-form-urlencoded",
    }  # fmt: skip
    body_out = b"".join(app(environ, start_response))
    return seen["status"], body_out


def test_faxage_bodies_give_the_right_hint() -> None:
    assert FAXAGE.pick(b"jobid=123&commid=9&shortstatus=success", "") == Hint(
        HintKind.OUTBOUND, 123
    )
    assert FAXAGE.pick(b"recvid=77&dnis=3035550199&tsid=", "") == Hint(HintKind.INBOUND, 77)
    assert FAXAGE.pick(b"recvid=../../etc&jobid=-1", "") == Hint(HintKind.OUTBOUND, None)
    assert FAXAGE.pick(b"recvid=" + b"9" * 30, "") == Hint(HintKind.INBOUND, None)
    assert FAXAGE.pick(b"&".join(b"a%d=1" % i for i in range(500)), "") == Hint(
        HintKind.INBOUND
    )


def test_good_callback_hints_and_answers_ok(tmp_path: Path) -> None:
    app, hints = make_app(tmp_path, [0.0])
    status, body = call(app, f"/hook/{TOKEN}/faxage", b"jobid=5&shortstatus=failure")
    assert (status, body) == ("200 OK", b"OK")
    assert hints == [("faxage", Hint(HintKind.OUTBOUND, 5))]


def test_refusals_are_logged_once_a_minute_with_the_address_never_the_token(
    tmp_path: Path,
) -> None:
    now = [1000.0]
    app, hints = make_app(tmp_path, now)
    guesses = [TOKEN[:-1] + "x", "guess-aaaaaaaaaaaaaaaa", TOKEN.upper()]
    with capture_logs() as logs:
        for guess in guesses:
            assert call(app, f"/hook/{guess}/faxage")[0] == "404 Not Found"
        now[0] += 61
        assert call(app, f"/hook/{guesses[1]}/faxage", addr="198.51.100.9")[0].startswith("404")
    refused = [entry for entry in logs if entry["event"] == "http.callback_refused"]
    assert [(e["client"], e["refused"]) for e in refused] == [
        ("192.0.2.7", 1), ("198.51.100.9", 3)
    ]
    assert not hints
    assert all(guess not in repr(logs) for guess in guesses) and TOKEN not in repr(logs)


def test_callback_for_a_provider_not_configured_is_refused_like_a_bad_token(
    tmp_path: Path,
) -> None:
    """Only configured providers may call back; the rest get the same 404, logged once a minute."""
    now = [1000.0]
    app, hints = make_app(tmp_path, now)
    app.providers = frozenset({"faxage", "voipms"})
    with capture_logs() as logs:
        assert call(app, f"/hook/{TOKEN}/ifax", b'{"jobId": 5}')[0] == "404 Not Found"
        assert call(app, f"/hook/{TOKEN}/ifax", b'{"jobId": 6}')[0] == "404 Not Found"
    refused = [entry for entry in logs if entry["event"] == "http.callback_refused"]
    assert [(e["provider"], e["refused"]) for e in refused] == [("ifax", 1)]
    assert TOKEN not in repr(logs) and not hints
    assert b'faxd_callbacks_refused_total{reason="bad_token"} 2.0' in app.metrics.render()


def test_voipms_callback_carrying_a_big_fax_is_answered_ok_unread(tmp_path: Path) -> None:
    """VoIP.ms posts the fax itself and retries until it hears ``ok``: a 1 MB post is fine."""
    app, hints = make_app(tmp_path, [0.0])
    big = b"--b\r\nContent-Disposition: form-data; name=\"pdf\"\r\n\r\n" + b"%PDF-" * 200_000
    assert call(app, f"/hook/{TOKEN}/voipms", big) == ("200 OK", b"ok")
    assert hints == [("voipms", Hint(HintKind.INBOUND))]
    assert call(app, f"/hook/{TOKEN}/faxage", big)[0].startswith("413")  # FAXAGE's stays small
