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

#: Field names whose value is secret whatever it is: FAXAGE's ``password``, VoIP.ms's
#: ``api_password`` (in the query string of every GET), iFax's ``accessToken`` header,
#: faxnummer.de's ``sProductCode``, and faxd's own ``*_token`` / ``product_code`` keys.
_SECRET_NAMES = r"password|passwd|pass|secret|access_?token|token|s?product_?code"  # noqa: S105 - names
# name=value, name: value, "name": "value", 'name': 'value', [name] => value, e.g. in an
# echoed POST, a URL, a JSON body or a dict of headers.  A name may follow "_" (api_password).
_SECRET_FIELD = re.compile(
    rf"(?i)(?<![A-Za-z0-9])({_SECRET_NAMES})"
    r"([\"']?\s*[=:]\s*[\"']?|\"?\s*=>\s*\"?|\]?\s*=>\s*)([^&\s,;\"']+)"
)
# A multipart/form-data part named like a secret: its value is the line after the blank one.
_SECRET_PART = re.compile(
    rf"(?i)(name=\"(?:[A-Za-z0-9_]*_)?(?:{_SECRET_NAMES})\"[^\n]*\n(?:[^\r\n]+\r?\n)*\r?\n)"
    r"([^\r\n]+)"
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
    text = _SECRET_FIELD.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    if "name=" in text:
        text = _SECRET_PART.sub(lambda m: f"{m.group(1)}{MASK}", text)
    return text


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
