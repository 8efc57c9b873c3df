"""Phone numbers as faxd stores and compares them: ten plain digits.

FAXAGE writes numbers as ``(415)800-6052`` and caller ids as ``Unavailable``;
people write ``+1 303 555 0101`` or ``303-555-0101``.  Everything that matches
or stores a number goes through here, so one rule decides what "the same number"
means.
"""

from __future__ import annotations

import re

_NON_DIGITS = re.compile(r"\D")

#: Caller-id placeholders that mean "no number".
UNKNOWN_CALLER_IDS = frozenset({"", "unavailable", "unknown", "anonymous", "private", "restricted"})


def digits(text: str) -> str:
    """Every digit of ``text`` in order."""
    return _NON_DIGITS.sub("", text)


def normalize_number(text: str) -> str:
    """Return the 10-digit NANP number written in ``text``.

    Accepts ``3035550101``, ``(303)555-0101``, ``303-555-0101``,
    ``+1 303 555 0101`` and ``1-303-555-0101``.  Raises :class:`ValueError`
    with a message a person can act on for anything else.
    """
    found = digits(text)
    if len(found) == 11 and found.startswith("1"):
        found = found[1:]
    if len(found) != 10:
        raise ValueError(
            f"{text!r} is not a 10-digit fax number (found {len(found)} digits); "
            "write it as 3035550101, (303)555-0101 or +1 303 555 0101"
        )
    return found


def normalize_caller_id(text: str) -> str:
    """Caller id as stored: 10 digits when it is a NANP number, ``""`` when unknown.

    Anything else (international numbers, junk) is kept as its digits, at most
    32 of them, so a hostile 300-character caller id cannot bloat paths or logs.
    """
    stripped = text.strip()
    if stripped.lower() in UNKNOWN_CALLER_IDS:
        return ""
    try:
        return normalize_number(stripped)
    except ValueError:
        return digits(stripped)[:32]


def format_number(number: str) -> str:
    """Display form of a stored number: ``(303) 555-0101``; others unchanged."""
    if len(number) == 10 and number.isdigit():
        return f"({number[:3]}) {number[3:6]}-{number[6:]}"
    return number
