"""faxd.logs: one set-up for structlog and stdlib logging, JSON for journald, no secrets."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog

from faxd.logs import NOISY_LOGGERS, configure_logging, redaction_processor
from faxd.redact import MASK, register_secret

SECRET = "Zq8-faxage-Pw-77x"


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """Put the root logger, the noisy loggers and structlog back as they were."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    config = structlog.get_config()
    register_secret(SECRET)
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in noisy.items():
        logging.getLogger(name).setLevel(old)
    structlog.configure(**config)
    structlog.contextvars.clear_contextvars()


def _json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _configured(**kwargs: Any) -> io.StringIO:
    stream = io.StringIO()
    configure_logging(stream=stream, **kwargs)
    return stream


def test_secret_in_the_event_and_in_keyword_values_is_masked() -> None:
    """The password in the event text or in a key=value is replaced by the mask."""
    stream = _configured(json=True)
    log = structlog.get_logger("faxd.test")
    log.info(f"login with {SECRET}", body=f"operation=listfax&pass={SECRET}")
    output = stream.getvalue()
    assert SECRET not in output
    [line] = _json_lines(stream)
    assert line["event"] == f"login with {MASK}"
    assert line["body"] == f"operation=listfax&pass={MASK}"


def test_secret_nested_in_dicts_and_lists_is_masked() -> None:
    """Secrets inside nested dicts, lists and tuples are masked; other values are kept."""
    stream = _configured(json=True)
    structlog.get_logger("faxd.test").info(
        "request",
        form={"username": "acme", "fields": [("pw", SECRET), {"deep": [SECRET]}]},
    )
    assert SECRET not in stream.getvalue()
    [line] = _json_lines(stream)
    assert line["form"] == {"username": "acme", "fields": [["pw", MASK], {"deep": [MASK]}]}


def test_values_under_secret_keys_are_masked_whole() -> None:
    """A value logged under a key like `password` is hidden even if it was never registered."""
    stream = _configured(json=True)
    structlog.get_logger("faxd.test").info("smtp", password="pw1", smtp={"api_token": "t0k"})
    [line] = _json_lines(stream)
    assert line["password"] == MASK
    assert line["smtp"] == {"api_token": MASK}


def test_values_under_provider_secret_keys_are_masked_whole() -> None:
    """Issue 11: VoIP.ms's api_password, iFax's accessToken, faxnummer.de's sProductCode."""
    stream = _configured(json=True)
    fields = {"api_password": "v1", "accessToken": "i2", "sProductCode": "f3", "method": "m"}
    structlog.get_logger("faxd.test").info("provider.request", form=fields, product_code="f4")
    [line] = _json_lines(stream)
    assert line["form"] == {
        "api_password": MASK, "accessToken": MASK, "sProductCode": MASK, "method": "m"
    }  # fmt: skip
    assert line["product_code"] == MASK


def test_secret_in_a_traceback_is_masked() -> None:
    """log.exception() renders the traceback as text first, then masks the password in it."""
    stream = _configured(json=True)
    try:
        raise ValueError(f"FAXAGE answered ERR08 echoing password={SECRET}")
    except ValueError:
        structlog.get_logger("faxd.test").exception("sendfax failed")
    assert SECRET not in stream.getvalue()
    [line] = _json_lines(stream)
    assert "Traceback (most recent call last)" in line["exception"]
    assert "ValueError: FAXAGE answered ERR08 echoing password=" + MASK in line["exception"]


def test_object_values_rendered_with_repr_are_masked() -> None:
    """A non-string value whose repr holds the secret is masked in the finished line."""

    class Request:
        def __repr__(self) -> str:
            return f"<Request pass={SECRET}!>"

    stream = _configured(json=True)
    structlog.get_logger("faxd.test").info("posting", request=Request())
    assert SECRET not in stream.getvalue()
    assert MASK in _json_lines(stream)[0]["request"]


def test_stdlib_logging_is_json_and_masked() -> None:
    """Records from stdlib loggers (APScheduler, urllib3) come out as redacted JSON too."""
    stream = _configured(json=True)
    logging.getLogger("apscheduler.scheduler").info("job args: %s", SECRET)
    try:
        raise ConnectionError(f"reset while posting {SECRET}")
    except ConnectionError:
        logging.getLogger("urllib3.connectionpool").warning("Retrying", exc_info=True)
    assert SECRET not in stream.getvalue()
    scheduler, pool = _json_lines(stream)
    assert scheduler == {
        "event": f"job args: {MASK}",
        "level": "info",
        "logger": "apscheduler.scheduler",
        "timestamp": scheduler["timestamp"],
    }
    assert pool["level"] == "warning"
    assert f"ConnectionError: reset while posting {MASK}" in pool["exception"]


def test_json_lines_carry_bound_context_level_and_utc_time() -> None:
    """Each line is one JSON object with the contextvars bound around the work and a UTC time."""
    stream = _configured(json=True)
    log = structlog.get_logger("faxd.inbound.pipeline")
    with structlog.contextvars.bound_contextvars(recvid=123456, dnis="4158006052", route="main"):
        log.info("delivered", action="folder")
        logging.getLogger("faxd.actions.email").warning("slow smtp")
    log.info("idle")
    delivered, slow, idle = _json_lines(stream)
    assert delivered["event"] == "delivered"
    assert (delivered["recvid"], delivered["dnis"], delivered["route"]) == (
        123456,
        "4158006052",
        "main",
    )
    assert delivered["level"] == "info"
    assert delivered["logger"] == "faxd.inbound.pipeline"
    assert slow["recvid"] == 123456
    assert "recvid" not in idle
    stamp = datetime.fromisoformat(delivered["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)


def test_level_threshold_and_noisy_loggers() -> None:
    """Events below the level are dropped; urllib3 and apscheduler.executors start at WARNING."""
    stream = _configured(json=True, level="info")
    structlog.get_logger("faxd.test").debug("hidden")
    logging.getLogger("urllib3.connectionpool").info("Starting new HTTP connection")
    logging.getLogger("apscheduler.executors.default").info("Running job")
    logging.getLogger("urllib3.connectionpool").warning("Retrying")
    structlog.get_logger("faxd.test").info("shown")
    assert [line["event"] for line in _json_lines(stream)] == ["Retrying", "shown"]


def test_debug_level_lets_debug_through() -> None:
    """level="debug" shows faxd's debug events."""
    stream = _configured(json=True, level="debug")
    structlog.get_logger("faxd.test").debug("detail")
    assert [line["event"] for line in _json_lines(stream)] == ["detail"]


def test_unknown_level_is_refused() -> None:
    """A misspelt level is an error naming the choices, not a silent default."""
    with pytest.raises(ValueError, match="debug, info, warning"):
        configure_logging(level="verbose", stream=io.StringIO())


def test_reconfiguring_does_not_duplicate_lines() -> None:
    """Calling configure_logging twice replaces the handler: one event, one line."""
    _configured(json=True)
    stream = _configured(json=True)
    structlog.get_logger("faxd.test").info("once")
    assert len(_json_lines(stream)) == 1


def test_logger_taken_before_configuration_follows_it() -> None:
    """A module-level logger created before configure_logging() still uses the new set-up."""
    early = structlog.get_logger("faxd.early")
    early.info("before")  # whatever the old configuration does with it
    stream = _configured(json=True)
    early.info("after")
    assert [line["event"] for line in _json_lines(stream)] == ["after"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_coloured_key_value_text_still_masked() -> None:
    """On a TTY (json unset) lines are coloured key=value text, not JSON, and still redacted."""
    stream = _Terminal()
    configure_logging(stream=stream)
    with structlog.contextvars.bound_contextvars(job_id=7):
        structlog.get_logger("faxd.test").warning("sendfax", form=f"password={SECRET}")
    output = stream.getvalue()
    assert SECRET not in output
    assert "\x1b[" in output
    assert "job_id" in output and "sendfax" in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output.splitlines()[0])


def test_pipe_gets_json_when_json_is_unset() -> None:
    """When the stream is not a terminal (journald) and json is unset, lines are JSON."""
    stream = _configured()
    structlog.get_logger("faxd.test").info("hello")
    assert _json_lines(stream)[0]["event"] == "hello"


def test_plain_text_mode_on_a_pipe_masks_tracebacks() -> None:
    """json=False without a terminal writes uncoloured text and masks the traceback."""
    stream = _configured(json=False)
    try:
        raise RuntimeError(SECRET)
    except RuntimeError:
        structlog.get_logger("faxd.test").exception("crashed")
    output = stream.getvalue()
    assert SECRET not in output
    assert f"RuntimeError: {MASK}" in output
    assert "\x1b[" not in output


def test_redaction_processor_on_its_own() -> None:
    """The exported processor masks strings at any depth and leaves other values alone."""
    event = {"event": f"x {SECRET}", "n": 3, "nested": {"a": (SECRET, 1)}, "token": None}
    assert redaction_processor(None, "info", event) == {
        "event": f"x {MASK}",
        "n": 3,
        "nested": {"a": (MASK, 1)},
        "token": None,
    }
