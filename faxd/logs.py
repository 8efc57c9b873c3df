"""Configure logging once, so every line faxd writes is structured and free of secrets.

The daemon runs under systemd: journald wants one line per event, so when
standard error is not a terminal each event is one JSON object.  On a terminal
(``faxd run`` by hand, the CLI) it is coloured ``key=value`` text instead.

Both structlog's loggers and the standard library's (APScheduler, urllib3,
SQLAlchemy) end in the same :class:`structlog.stdlib.ProcessorFormatter`, so
their lines look alike and go through the same last steps::

    structlog event ─► filter_by_level, contextvars, level, logger, timestamp ─┐
    logging record  ─► contextvars, level, logger, timestamp ──────────────────┤
                                                                               ▼
        format_exc_info ─► redaction_processor ─► JSON (redacted repr fallback)
                                               └► console ─► redact(line)

Exceptions are turned into text *before* the redaction, so a password inside a
traceback (an exception message, a ``repr`` of a request) is masked too; values
that are not plain data are ``repr()``-ed by the renderer, so those reprs are
redacted as well.
``structlog.configure()`` is called here and nowhere else (ARCHITECTURE.md).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping
from functools import lru_cache
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from faxd.redact import MASK, redact

#: Third-party loggers that say too much at INFO; they only speak from WARNING.
NOISY_LOGGERS = (
    "urllib3",
    "apscheduler.executors",
    "alembic.runtime.plugins",
    "alembic.runtime.migration",
)

# Event keys whose value is secret whatever it is.
_SECRET_KEY = re.compile(r"(?i)(password|passwd|secret|token|product_?code)")

_HANDLER_NAME = "faxd"


#: Values that hold no text, so nothing in them can be a secret.
_TEXTLESS = (int, float, bool, type(None))


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, _TEXTLESS):
        return value  # most values that are not text: skip the slower checks below
    if isinstance(value, Mapping):
        return {k: MASK if _is_secret_key(k) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [_redact_value(v) for v in value]
        return tuple(items) if isinstance(value, tuple) else items
    return value


def _is_secret_key(key: object) -> bool:
    return isinstance(key, str) and _secret_key_name(key)


@lru_cache(maxsize=1024)
def _secret_key_name(key: str) -> bool:
    """Whether a key names a secret; keys repeat on every line, so the answer is kept."""
    return _SECRET_KEY.search(key) is not None


def redaction_processor(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Mask registered secrets in every string of the event, however deeply nested.

    Values under keys that name a secret (``password``, ``token``...) are
    masked whole.  Run it after ``format_exc_info`` so tracebacks are text.
    """
    return {
        key: MASK if _is_secret_key(key) and value is not None else _redact_value(value)
        for key, value in event_dict.items()
    }


def _redacted_repr(value: object) -> str:
    """JSON fallback for values JSON cannot hold: their ``repr``, redacted."""
    return redact(repr(value))


class _RedactedRenderer:
    """Render text with ``renderer``, then redact the finished line once more.

    Only for text output: masking inside a JSON line could cut an escape
    sequence in two, so the JSON renderer redacts its ``repr`` fallback instead.
    """

    def __init__(self, renderer: Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: WrappedLogger, method: str, event_dict: EventDict) -> str:
        rendered = self._renderer(logger, method, event_dict)
        if isinstance(rendered, bytes):
            rendered = rendered.decode("utf-8", errors="replace")
        return redact(str(rendered))


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except ValueError:  # a closed stream
        return False


def _level_number(level: str) -> int:
    number = logging.getLevelNamesMapping().get(level.upper())
    if number is None:
        choices = "debug, info, warning, error, critical"
        raise ValueError(f"unknown log level {level!r}: use one of {choices}")
    return number


#: This server's ``[database] instance``, added to every line when several share a database.
_instance: str | None = None


def name_instance(name: str | None) -> None:
    """Add ``instance=name`` to every log line from now on (``None``: stop)."""
    global _instance
    _instance = name


def _add_instance(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    if _instance is not None:
        event_dict.setdefault("instance", _instance)
    return event_dict


def configure_logging(
    *, json: bool | None = None, level: str = "info", stream: TextIO | None = None
) -> None:
    """Send structlog's and the standard library's logs to ``stream``, redacted.

    ``json=None`` chooses JSON lines unless ``stream`` is a terminal.  ``stream``
    defaults to the current ``sys.stderr``.  Calling it again replaces the
    previous set-up (no handler is added twice).
    """
    stream = sys.stderr if stream is None else stream
    use_json = not _is_tty(stream) if json is None else json
    threshold = _level_number(level)

    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        _add_instance,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        timestamper,
    ]
    renderer: Processor
    if use_json:
        renderer = structlog.processors.JSONRenderer(default=_redacted_repr)
    else:
        renderer = _RedactedRenderer(structlog.dev.ConsoleRenderer(colors=_is_tty(stream)))

    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redaction_processor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(threshold)
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(max(threshold, logging.WARNING))

    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: a logger taken at import time follows a later reconfiguration
        # (the CLI configures after importing; tests configure many times).
        cache_logger_on_first_use=False,
    )
