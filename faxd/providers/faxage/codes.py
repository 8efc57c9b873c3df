"""What each FAXAGE ``ERRnn:`` answer means, per operation. Pure, no I/O.

FAXAGE answers errors with HTTP 200 and a text body, and one code can mean
different things on different endpoints (``ERR11`` is "nothing to list" on
listfax, ``ERR05`` is "not yours" on deprovdid).  Retry decisions read the
class this module picks, so the whole classification lives in two tables that
can be checked against the documents at a glance.  :mod:`faxd.providers.faxage.wire`
re-exports everything here; the rest of faxd imports it from there.
"""

from __future__ import annotations

import re

from faxd.errors import (
    AuthError,
    NotFoundError,
    OutcomeUnknownError,
    PermanentError,
    ProviderError,
    TransientError,
)
from faxd.redact import summarize_body

__all__ = [
    "ERROR_KINDS",
    "OPERATION_ERROR_KINDS",
    "error_code",
    "is_empty_answer",
    "raise_for_error",
]

#: What each ``ERRnn`` code means on ``httpsfax.php`` (the common case).
ERROR_KINDS: dict[str, type[ProviderError]] = {
    "ERR01": TransientError,  # database connection failed
    "ERR02": AuthError,  # login incorrect
    "ERR03": PermanentError,  # sendfax: no files to fax
    "ERR04": PermanentError,  # sendfax: fax number invalid
    "ERR05": PermanentError,  # sendfax: number blocked
    "ERR06": NotFoundError,  # job id not found (dlstatus, dltrans)
    "ERR07": NotFoundError,  # clear: job not found or still pending
    "ERR08": PermanentError,  # unknown operation or bad POST (echoes the POST)
    "ERR11": PermanentError,  # listfax: nothing to list (an empty result there)
    "ERR12": NotFoundError,  # getfax: fax id not found
    "ERR13": TransientError,  # getfax: file could not be opened
    "ERR14": NotFoundError,  # delfax: fax id not found
    "ERR15": TransientError,  # sendfax: job not inserted (see the override)
    "ERR16": PermanentError,  # invalid DID number
    "ERR17": NotFoundError,  # DID not found or not yours
    "ERR18": PermanentError,  # stopfax: no jobid
    "ERR19": NotFoundError,  # stopfax: job not found
    "ERR20": PermanentError,  # stopfax: not in queue
    "ERR21": PermanentError,  # stopfax: not on the fax server
    "ERR22": PermanentError,  # stopfax: in transmission
    "ERR23": PermanentError,  # stopfax: failed to stop
    "ERR24": TransientError,  # dlstatus/dltrans: not yet converted
    "ERR25": PermanentError,  # dlstatus/dltrans: file does not exist
}

#: Where an operation gives a code another meaning.  ``None`` means the code is
#: an empty answer there, not an error.
OPERATION_ERROR_KINDS: dict[tuple[str, str], type[ProviderError] | None] = {
    ("listfax", "ERR11"): None,  # no incoming faxes
    ("status", "ERR06"): None,  # no jobs to display
    # A job that "was not properly inserted" may still exist: reconcile, never resend.
    ("sendfax", "ERR15"): OutcomeUnknownError,
    # provision.php numbers its errors on its own.
    ("listac", "ERR03"): PermanentError,  # unknown operation
    ("listnpanxx", "ERR03"): PermanentError,
    ("listdids", "ERR03"): PermanentError,
    ("provdid", "ERR03"): PermanentError,
    ("deprovdid", "ERR03"): PermanentError,
    ("provdid", "ERR04"): PermanentError,  # invalid DID number
    ("deprovdid", "ERR04"): PermanentError,
    ("provdid", "ERR05"): PermanentError,  # DID not available
    ("deprovdid", "ERR05"): NotFoundError,  # DID not on your account
}

#: What a person can do about each kind of error.
_HINTS: dict[type[ProviderError], str] = {
    AuthError: "check username, company and password in the [faxage] section of the config, "
    "and that the FAXAGE account is not disabled",
    TransientError: "FAXAGE reported an internal fault; faxd retries later",
    NotFoundError: "the fax, job or number is not (or no longer) on the FAXAGE account",
    PermanentError: "retrying the same request cannot help; check the values sent",
    OutcomeUnknownError: "the fax may or may not have been queued; faxd reconciles with status",
}

_ERR = re.compile(rb"\A\s*(ERR\d{2})\b")


def error_code(body: str | bytes) -> str | None:
    """The ``ERRnn`` code an answer starts with, or ``None``."""
    head = body[:64].encode("latin-1", "replace") if isinstance(body, str) else body[:64]
    match = _ERR.match(head)
    return match.group(1).decode("ascii") if match else None


def raise_for_error(body: str | bytes, operation: str) -> None:
    """Raise the :mod:`faxd.errors` class for an ``ERRnn:`` answer.

    Returns quietly for any other answer, and for a code that ``operation``
    uses to say "nothing" (``ERR11`` from listfax, ``ERR06`` from status).
    The message carries the redacted, truncated body and what to do.
    """
    code = error_code(body)
    if code is None:
        return
    kind: type[ProviderError] | None
    if (operation, code) in OPERATION_ERROR_KINDS:
        kind = OPERATION_ERROR_KINDS[(operation, code)]
        if kind is None:
            return
    else:
        kind = ERROR_KINDS.get(code, PermanentError)
    hint = next(text for cls, text in _HINTS.items() if issubclass(kind, cls))
    if code not in ERROR_KINDS:
        hint = f"{code} is not in the FAXAGE documents; {hint}"
    message = f"FAXAGE answered {summarize_body(body)!r}; {hint}"
    raise kind(message, operation=operation, code=code)


def is_empty_answer(text: str, operation: str) -> bool:
    """Whether ``text`` is a code that ``operation`` uses to say "nothing"."""
    code = error_code(text)
    return code is not None and OPERATION_ERROR_KINDS.get((operation, code), 0) is None
