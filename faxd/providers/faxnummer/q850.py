"""Q.850 release causes in words, for a failed faxnummer.de job.

faxnummer.de reports why a fax call ended only as a number
(``StatusQ850Cause``); the person reading ``faxd jobs`` needs to know whether
to try later (busy, congestion) or to check the number (unallocated, invalid
format).  The wording follows ITU-T Q.850 table 1, shortened, with the usual
reading for a fax call after the colon.
"""

from __future__ import annotations

__all__ = ["CAUSES", "describe"]

CAUSES: dict[int, str] = {
    1: "unallocated number: the number does not exist; check it",
    2: "no route to the specified network: the number cannot be reached from here",
    3: "no route to destination: the number cannot be reached",
    6: "channel unacceptable",
    16: "normal call clearing: the call ended before the fax was through "
    "(often no fax machine answered)",
    17: "user busy: the line was busy; try again later",
    18: "no user responding: nothing answered the call",
    19: "no answer: the line rang but nobody picked up",
    20: "subscriber absent: the line is not reachable",
    21: "call rejected: the other side refused the call",
    22: "number changed: the number is no longer in use; find the new one",
    26: "non-selected user clearing",
    27: "destination out of order: the line or fax machine is not working",
    28: "invalid number format: the number is incomplete or mistyped",
    29: "facility rejected",
    31: "normal, unspecified: the call failed without a reason",
    34: "no circuit/channel available: the network is busy; try again later",
    38: "network out of order: try again later",
    41: "temporary failure: try again later",
    42: "switching equipment congestion: try again later",
    43: "access information discarded",
    44: "requested circuit/channel not available",
    47: "resource unavailable, unspecified: try again later",
    50: "requested facility not subscribed",
    55: "incoming calls barred: the other line takes no incoming calls",
    57: "bearer capability not authorized",
    58: "bearer capability not presently available",
    63: "service or option not available",
    65: "bearer capability not implemented",
    79: "service or option not implemented",
    88: "incompatible destination: the number is not a fax line",
    95: "invalid message, unspecified",
    96: "mandatory information element missing",
    100: "invalid information element contents",
    102: "recovery on timer expiry: the call timed out",
    111: "protocol error, unspecified",
    127: "interworking, unspecified: the call failed between networks",
}


def describe(cause: str | int | None) -> str:
    """``"cause 17 (user busy: ...)"`` for a Q.850 cause as faxnummer.de gives it."""
    if cause is None or str(cause).strip() == "":
        return "no Q.850 cause given"
    text = str(cause).strip()
    try:
        number = int(text)
    except ValueError:
        return f"Q.850 cause {text[:20]!r} (not a number)"
    words = CAUSES.get(number)
    if words is None:
        return f"Q.850 cause {number} (not in faxd's table; see ITU-T Q.850)"
    return f"Q.850 cause {number} ({words})"
