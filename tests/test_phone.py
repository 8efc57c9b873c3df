"""What "the same number" is: E.164 from every form people and providers write (pure)."""

from __future__ import annotations

import pytest

from faxd.phone import (
    country_code,
    format_number,
    nanp_caller_id,
    nanp_digits,
    nanp_number,
    normalize_caller_id,
    normalize_number,
    parse_number,
    template_digits,
    template_e164,
)


@pytest.mark.parametrize(
    "text",
    [
        "3035550101",
        "(303)555-0101",
        "(303) 555-0101",
        "303-555-0101",
        "303.555.0101",
        "+1 303 555 0101",
        "+13035550101",
        "1-303-555-0101",
        "13035550101",
        " 303 555 0101 ",
        "011 1 303 555 0101",
        "001 303 555 0101",
    ],
)
def test_every_nanp_form_is_the_same_e164_number(text: str) -> None:
    """Each NANP form accepted before numbers became E.164 still reads, as +1 and 10 digits."""
    assert parse_number(text) == "+13035550101"
    assert normalize_number(text) == "+13035550101"
    assert nanp_number(text) == "3035550101"


def test_dotted_and_unallocated_nanp_numbers_still_read() -> None:
    """Any 10 digits were a number before the upgrade; they still are (no metadata needed)."""
    assert parse_number("647.948.4755") == "+16479484755"
    assert parse_number("555-555-0101") == "+15555550101"


@pytest.mark.parametrize(
    ("text", "country"),
    [
        ("+49 30 1234567", "US"),
        ("+49 (0)30 1234567", "US"),
        ("0049301234567", "US"),
        ("00 49 30 1234567", "GB"),
        ("011 49 30 1234567", "US"),
        ("011 49 30 1234567", "CA"),
        ("030 1234567", "DE"),
        ("030/1234567", "de"),
        ("+49 30 1234567", "DE"),
        ("0049 30 1234567", "DE"),
    ],
)
def test_international_and_national_forms(text: str, country: str) -> None:
    """+, 00 (and 011 in NANP countries) start an international number; else it is national."""
    assert parse_number(text, country) == "+49301234567"


def test_national_numbers_in_great_britain() -> None:
    """A British national number reads in GB, and the same number written abroad agrees."""
    assert parse_number("020 7946 0018", "GB") == "+442079460018"
    assert parse_number("+44 20 7946 0018") == "+442079460018"
    assert parse_number("0044 20 7946 0018", "DE") == "+442079460018"


def test_national_numbers_depend_on_the_country() -> None:
    """10 digits are a NANP number at home, a German number in Germany."""
    assert parse_number("3035550101", "US") == "+13035550101"
    assert parse_number("3035550101", "DE") == "+493035550101"
    assert parse_number("+1 303 555 0101", "DE") == "+13035550101"


@pytest.mark.parametrize(
    ("text", "country", "words"),
    [
        ("555-12", "US", "not a 10-digit fax number (found 5 digits)"),
        ("", "US", "has no digits"),
        ("fax me", "US", "has no digits"),
        ("303-555-CALL", "US", "has letters in it"),
        ("1" * 25, "US", "more than any phone number"),
        ("+49 30 12", "US", "not a valid number in DE"),
        ("+999 1234 5678", "US", "no country has the calling code"),
        ("011 49 30 1234567", "DE", "not a valid number in DE"),
        ("+49 1", "US", "too short to be a phone number"),
        ("+44 20 7946 0018 12345", "US", "too long for a number in GB"),
        ("+44 7700 900123", "US", "not a valid number in GB"),
    ],
)
def test_bad_numbers_say_what_is_wrong_and_how_to_write_them(
    text: str, country: str, words: str
) -> None:
    """The message names the problem and shows a form that works."""
    with pytest.raises(ValueError) as caught:
        parse_number(text, country)
    message = str(caught.value)
    assert words in message
    assert "+49 30 1234567" in message or "check the digits" in message


def test_faxage_numbers_must_be_nanp() -> None:
    """FAXAGE's 10-digit fields cannot take a number abroad: the message says so."""
    with pytest.raises(ValueError) as caught:
        nanp_number("+49 30 1234567")
    assert "FAXAGE takes 10-digit NANP numbers only" in str(caught.value)
    assert "+49 30 1234567" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "stored"),
    [
        ("(415)800-6052", "+14158006052"),
        ("4158006052", "+14158006052"),
        ("+14158006052", "+14158006052"),
        ("Unavailable", ""),
        ("  anonymous ", ""),
        ("PRIVATE", ""),
        ("+44 7700 900123", "+447700900123"),  # possible, if not allocated: kept as E.164
        ("011 44 20 7946 0018", "+442079460018"),
        ("ACME FAX 01", "01"),
        ("12345", "12345"),
        ("9" * 300, "9" * 32),
        ("../../etc/passwd", ""),
    ],
)
def test_caller_ids(text: str, stored: str) -> None:
    """Numbers become E.164, placeholders "", anything else at most 32 digits."""
    assert normalize_caller_id(text) == stored


def test_caller_ids_read_national_numbers_in_the_country() -> None:
    """A provider abroad reports national caller ids; the country reads them."""
    assert normalize_caller_id("030 1234567", "DE") == "+49301234567"


def test_faxage_wire_form_keeps_ten_digits() -> None:
    """What FAXAGE reports stays 10 digits at its wire; storing it makes it E.164."""
    assert nanp_caller_id("(415)800-6052") == "4158006052"
    assert nanp_caller_id("Unavailable") == ""
    assert nanp_caller_id("+44 20 7946 0018") == "+442079460018"
    assert normalize_caller_id(nanp_caller_id("(415)800-6052")) == "+14158006052"


def test_e164_is_a_fixed_point() -> None:
    """Reading a stored number again gives the same number, in any country."""
    for number in ("+13035550101", "+49301234567", "+442079460018"):
        for country in ("US", "DE", "GB", "CA"):
            assert parse_number(number, country) == number
            assert normalize_caller_id(number, country) == number


def test_nanp_digits() -> None:
    """10 digits for +1 numbers only."""
    assert nanp_digits("+13035550101") == "3035550101"
    assert nanp_digits("+49301234567") is None
    assert nanp_digits("3035550101") is None
    assert nanp_digits("+130355501011") is None
    assert nanp_digits("") is None


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+13035550101", "(303) 555-0101"),
        ("3035550101", "(303) 555-0101"),  # a value stored before the upgrade
        ("+49301234567", "+49 30 1234567"),
        ("+442079460018", "+44 20 7946 0018"),
        ("", ""),
        ("12345", "12345"),
    ],
)
def test_display_form(stored: str, shown: str) -> None:
    """NANP as people write it at home, others in international format."""
    assert format_number(stored) == shown


@pytest.mark.parametrize(
    ("stored", "digits", "e164"),
    [
        ("+13035550101", "3035550101", "+13035550101"),
        ("+49301234567", "49301234567", "+49301234567"),
        ("3035550101", "3035550101", "3035550101"),
        ("", "", ""),
        ("+1/../../x", "1", "+1"),
    ],
)
def test_template_forms_are_digits(stored: str, digits: str, e164: str) -> None:
    """{dnis}/{cid} keep NANP's 10 digits (folder layouts stay); nothing but digits and +."""
    assert template_digits(stored) == digits
    assert template_e164(stored) == e164


@pytest.mark.parametrize(("text", "code"), [("US", "US"), ("de", "DE"), (" gb ", "GB")])
def test_country_codes(text: str, code: str) -> None:
    """ISO 3166 alpha-2, any case."""
    assert country_code(text) == code


@pytest.mark.parametrize("text", ["Germany", "XX", "", "USA"])
def test_unknown_country_codes_are_refused(text: str) -> None:
    """Not a code phonenumbers knows: the message says what to write."""
    with pytest.raises(ValueError, match="ISO 3166"):
        country_code(text)
