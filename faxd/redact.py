"""Keep secrets out of every text faxd emits.

Passwords are registered here once, when the config is loaded; every exception
message (see :mod:`faxd.errors`) and every log line (see :mod:`faxd.logs`) is
passed through :func:`redact`.  FAXAGE's ``ERR08`` answer echoes the whole POST
back, password and base64 file data included, so provider bodies also go through
:func:`summarize_body`, which redacts and truncates.

This module holds process-wide state on purpose: a secret must be hidden from
every thread and every logger, whoever registered it.
"""

from __future__ import annotations

import html
import re
import threading
from urllib.parse import quote, quote_plus

MASK = "********"

_lock = threading.Lock()
#: Secrets shorter than this are masked only as whole tokens (see register_secret).
SHORT_SECRET = 4
#: Longest first, so a secret containing another is masked whole.
_secrets: tuple[str, ...] = ()
#: The short ones, and one pattern matching any of them as a token.
_short_words: set[str] = set()
_short: re.Pattern[str] | None = None

# key=value pairs whose value is secret whatever it is, e.g. in an echoed POST.
_SECRET_FIELD = re.compile(
    r"(?i)\b(password|passwd|pass|secret|token)(\s*[=:]\s*|\"?\s*=>\s*\"?|\]?\s*=>\s*)([^&\s,;\"']+)"
)

# The password part of a URL (``scheme://user:password@host``), whoever wrote it:
# a database URL quoted in an error from SQLAlchemy or a driver, say.
_URL_PASSWORD = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^\s:/@]*:)([^\s@/]+)(@)")


def register_secret(secret: str | None) -> None:
    """Hide ``secret`` (and its URL- and HTML-encoded forms) from every redacted text.

    Every secret is hidden, however short.  One shorter than
    :data:`SHORT_SECRET` characters is hidden where it stands as a token of its
    own (not inside a longer run of letters and digits): a password "a" must not
    turn every "a" of every log line into the mask, yet it is masked wherever it
    appears as a value, e.g. ``password=a&`` in an echoed POST.
    """
    global _secrets, _short
    if not secret:
        return
    variants = {secret, quote(secret, safe=""), quote_plus(secret), html.escape(secret)}
    with _lock:
        merged = set(_secrets) | {v for v in variants if len(v) >= SHORT_SECRET}
        _secrets = tuple(sorted(merged, key=len, reverse=True))
        short = {v for v in variants if 0 < len(v) < SHORT_SECRET} | _short_words
        _short_words.clear()
        _short_words.update(short)
        _short = (
            re.compile(
                r"(?<![A-Za-z0-9])(?:"
                + "|".join(re.escape(v) for v in sorted(short, key=len, reverse=True))
                + r")(?![A-Za-z0-9])"
            )
            if short
            else None
        )


def forget_secrets() -> None:
    """Drop every registered secret (tests use this between cases)."""
    global _secrets, _short
    with _lock:
        _secrets = ()
        _short = None
        _short_words.clear()


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and labelled password masked."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    short = _short
    if short is not None:
        text = short.sub(MASK, text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    return _SECRET_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def summarize_body(body: bytes | str, limit: int = 200) -> str:
    """A short, redacted, printable rendering of a provider's answer body."""
    # Redact before cutting: a cut through a secret would leave its first part
    # unrecognisable.  Bodies are bounded by the caller (at most a few KiB).
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = redact(text)
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    text = re.sub(r"\s+", " ", text).strip()
    if len(text) > limit:
        text = text[:limit] + f"... ({len(body)} bytes in all)"
    return text
