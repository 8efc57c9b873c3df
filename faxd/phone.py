"""Phone numbers as faxd stores and compares them: E.164 (``+13035550101``).

Providers write numbers their own way (FAXAGE ``(415)800-6052`` and caller ids
``Unavailable``; VoIP.ms and iFax plain digits or ``+1...``), and people write
``+1 303 555 0101``, ``303-555-0101``, ``+49 30 1234567``, ``0049 30 1234567``
or a national number such as ``030 1234567``.  Everything that matches or stores
a number goes through here, so one rule decides what "the same number" means.

NANP numbers (country code 1) keep the rule faxd always had: any 10 digits, or
11 starting with 1, whatever the punctuation; they need no metadata, so a number
that worked before the upgrade still works.  Anything else is read with
``phonenumbers`` (libphonenumber) and must be a valid number for its country.
A national number (no ``+``, ``00`` or, in NANP countries, ``011``) is read in
the ``country`` given, ``[outbound] country`` in the config.

FAXAGE itself speaks only 10-digit NANP numbers: :func:`nanp_number` gives its
wire what it wants, from any form.
"""

from __future__ import annotations

import re

import phonenumbers

_NON_DIGITS = re.compile(r"\D")
_E164_NANP = re.compile(r"\+1(\d{10})")

#: Caller-id placeholders that mean "no number".
UNKNOWN_CALLER_IDS = frozenset({"", "unavailable", "unknown", "anonymous", "private", "restricted"})

#: The longest number faxd reads: E.164 allows 15 digits, plus an 00/011 prefix.
_MAX_DIGITS = 18
#: How a person should write a number, for error messages.
_EXAMPLES = (
    "3035550101, (303)555-0101 or +1 303 555 0101; abroad with the country code, +49 30 1234567"
)
_TOO_SHORT = frozenset(
    {
        phonenumbers.NumberParseException.TOO_SHORT_NSN,
        phonenumbers.NumberParseException.TOO_SHORT_AFTER_IDD,
    }
)
_WHAT_IS_WRONG = {
    phonenumbers.ValidationResult.TOO_SHORT: "is too short for a number",
    phonenumbers.ValidationResult.TOO_LONG: "is too long for a number",
}


def digits(text: str) -> str:
    """Every digit of ``text`` in order."""
    return _NON_DIGITS.sub("", text)


def country_code(text: str) -> str:
    """``text`` as an ISO 3166 alpha-2 country code phonenumbers knows (``"de"`` -> ``"DE"``).

    Raises :class:`ValueError` naming what to write instead.
    """
    code = text.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(
            f"{text[:20]!r} is not a country code faxd knows; write the two-letter "
            'ISO 3166 code of the country national numbers are dialled in, e.g. "US", "DE" or "GB"'
        )
    return code


def is_nanp_country(country: str) -> bool:
    """Whether ``country`` dials within NANP (+1: US, CA and the Caribbean)."""
    return phonenumbers.country_code_for_region(country.upper()) == 1


def parse_number(text: str, country: str = "US") -> str:
    """Return the number written in ``text`` in E.164 (``+13035550101``).

    Accepts every NANP form (``3035550101``, ``(303)555-0101``, ``303-555-0101``,
    ``647.948.4755``, ``+1 303 555 0101``, ``1-303-555-0101``), international
    numbers with ``+``, ``00`` or (in NANP countries) ``011`` (``+49 30 1234567``,
    ``0049301234567``), and national numbers read in ``country`` (``030 1234567``
    in ``DE``).  Raises :class:`ValueError` with a message a person can act on.
    """
    return _parse(text, country_code(country), strict=True)


def normalize_number(text: str, country: str = "US") -> str:
    """The same as :func:`parse_number` (the name older callers use)."""
    return parse_number(text, country)


def nanp_number(text: str) -> str:
    """The 10 digits of the NANP number in ``text`` (any form, E.164 too), as FAXAGE wants it.

    Raises :class:`ValueError` for anything else, including a valid number
    outside NANP, which FAXAGE's 10-digit fields cannot take.
    """
    number = parse_number(text)
    found = nanp_digits(number)
    if found is None:
        raise ValueError(
            f"{_shown(text)} is {format_number(number)}, outside the US/Canada numbering "
            "plan; FAXAGE takes 10-digit NANP numbers only, like 3035550101"
        )
    return found


def nanp_digits(e164: str) -> str | None:
    """The 10 digits of a stored ``+1`` number (``+13035550101`` -> ``3035550101``) or ``None``."""
    match = _E164_NANP.fullmatch(e164)
    return match.group(1) if match else None


def normalize_caller_id(text: str, country: str = "US") -> str:
    """Caller id (or any number a provider reports) as stored.

    E.164 when it is a number (possible for its country; caller ids need not
    be valid), ``""`` when the provider says it is unknown.  Anything else (junk)
    is kept as its digits, at most 32 of them, so a hostile 300-character caller
    id cannot bloat paths or logs.
    """
    stripped = text.strip()
    if stripped.lower() in UNKNOWN_CALLER_IDS:
        return ""
    try:
        return _parse(stripped, country_code(country), strict=False)
    except ValueError:
        return digits(stripped)[:32]


def nanp_caller_id(text: str) -> str:
    """A number FAXAGE reports, as its wire records keep it: 10 digits for NANP.

    ``""`` when unknown; another number keeps its E.164 form, junk its digits
    (at most 32).  :func:`normalize_caller_id` turns any of these into what is
    stored, so the wire can stay in FAXAGE's terms.
    """
    number = normalize_caller_id(text)
    return nanp_digits(number) or number


def format_number(number: str) -> str:
    """Display form of a stored number: ``(303) 555-0101``, ``+49 30 1234567``; others unchanged."""
    nanp = nanp_digits(number)
    if nanp is None and len(number) == 10 and number.isdigit():
        nanp = number  # stored before numbers became E.164
    if nanp is not None:
        return f"({nanp[:3]}) {nanp[3:6]}-{nanp[6:]}"
    if number.startswith("+") and number[1:].isdigit():
        try:
            parsed = phonenumbers.parse(number, None)
        except phonenumbers.NumberParseException:
            return number
        return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    return number


def template_digits(number: str) -> str:
    """A stored number as path and text templates show it (``{dnis}``, ``{cid}``).

    NANP numbers stay the 10 digits they were before numbers became E.164, so
    folder layouts do not change on upgrade; other numbers are their E.164
    digits without the ``+`` (``49301234567``).  Only digits ever come out,
    at most 32, so nothing a provider sends can steer a path.
    """
    return nanp_digits(number) or digits(number)[:32]


def template_e164(number: str) -> str:
    """A stored number for ``{dnis_e164}``/``{cid_e164}``: ``+`` and digits only, or ``""``."""
    found = digits(number)[:32]
    if not found:
        return ""
    return f"+{found}" if number.startswith("+") else found


def _parse(text: str, region: str, *, strict: bool) -> str:
    """E.164 for ``text`` read in ``region``; ``strict`` demands valid, not just possible."""
    stripped = text.strip()
    found = digits(stripped)
    if not found:
        raise ValueError(f"{_shown(text)} has no digits; write a fax number like {_EXAMPLES}")
    if strict and any(ch.isalpha() for ch in stripped):
        raise ValueError(
            f"{_shown(text)} has letters in it; write the fax number in digits, like {_EXAMPLES}"
        )
    if len(found) > _MAX_DIGITS:
        raise ValueError(
            f"{_shown(text)} has {len(found)} digits, more than any phone number; "
            f"write one fax number, like {_EXAMPLES}"
        )
    nanp_home = is_nanp_country(region)
    international: str | None = None
    if "+" in stripped[: stripped.index(found[0])]:
        international = found
    elif found.startswith("00"):
        international = found[2:]
    elif nanp_home and found.startswith("011"):
        international = found[3:]
    if international is None and nanp_home:
        return _nanp(text, found)
    if international is not None and international.startswith("1"):
        return _nanp(text, international)
    try:
        parsed = phonenumbers.parse(f"+{international}" if international else found, region)
    except phonenumbers.NumberParseException as exc:
        if exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE:
            raise ValueError(
                f"{_shown(text)}: no country has the calling code it starts with; "
                "check the digits after the + or 00"
            ) from None
        if exc.error_type in _TOO_SHORT:
            raise ValueError(
                f"{_shown(text)} is too short to be a phone number; {_hint(international)}"
            ) from None
        raise ValueError(
            f"{_shown(text)} is not a phone number faxd can read; write it like {_EXAMPLES}"
        ) from None
    reason = phonenumbers.is_possible_number_with_reason(parsed)
    where = phonenumbers.region_code_for_country_code(parsed.country_code or 0)
    if reason == phonenumbers.ValidationResult.INVALID_COUNTRY_CODE or where == "ZZ":
        raise ValueError(
            f"{_shown(text)}: no country has the calling code +{parsed.country_code}; "
            "check the digits after the + or 00"
        )
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE or (
        strict and not phonenumbers.is_valid_number(parsed)
    ):
        what = _WHAT_IS_WRONG.get(reason, "is not a valid number")
        raise ValueError(f"{_shown(text)} {what} in {where}; {_hint(international)}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _nanp(text: str, found: str) -> str:
    """E.164 for a NANP number given as its 10 digits, or 11 with the leading 1."""
    if len(found) == 11 and found.startswith("1"):
        found = found[1:]
    if len(found) != 10:
        raise ValueError(
            f"{_shown(text)} is not a 10-digit fax number (found {len(found)} digits); "
            f"write it as {_EXAMPLES}"
        )
    return f"+1{found}"


def _hint(international: str | None) -> str:
    if international is None:
        return (
            "check the digits, or write it with + and the country code, like +49 30 1234567 "
            "(a national number is read in [outbound] country)"
        )
    return "check the digits after the country code"


def _shown(text: str) -> str:
    """``text`` quoted for a message, cut short so a hostile value cannot flood it."""
    return repr(text.strip()[:40])
