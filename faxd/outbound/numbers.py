"""Provider names and numbers as the outbound core compares and shows them.

Why here: the submitter, the follow-up and the CLI name the provider in every
reason a person reads ("FAXAGE refused the fax...") and compare a job's stored
number with the number a provider reports, which may be written as E.164, as
10 NANP digits or with an ``011`` prefix.  One place decides both.
"""

from __future__ import annotations

from faxd.phone import digits

#: How people know each provider.
LABELS = {"faxage": "FAXAGE", "voipms": "VoIP.ms", "ifax": "iFax", "faxnummer": "faxnummer.de"}


def label(provider: str) -> str:
    """The provider's name as people write it."""
    return LABELS.get(provider, provider)


def _canonical(number: str) -> str:
    """Country code and number as digits: ``+1 303...``, ``303...`` and ``011 1 303...`` agree."""
    found = digits(number)
    if number.strip().startswith("+"):
        return found
    if found.startswith("011"):
        return found[3:]
    if len(found) == 10:
        return f"1{found}"  # a stored or reported NANP number without its country code
    return found


def e164(number: str) -> str:
    """A stored number (E.164, or 10 NANP digits from before E.164) as E.164."""
    return f"+{_canonical(number)}"


def same_number(a: str, b: str) -> bool:
    """Whether two ways of writing a fax number dial the same line."""
    return bool(digits(a)) and _canonical(a) == _canonical(b)
