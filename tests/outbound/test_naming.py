"""File name -> fax number rules of the hot folder (pure, no files)."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from faxd.errors import IntakeError
from faxd.outbound.naming import (
    Destination,
    check_extension,
    is_ignored_name,
    is_ignored_path,
    parse_destination,
)


@pytest.mark.parametrize(
    ("relpath", "expected"),
    [
        ("3035551212.pdf", Destination("+13035551212", "")),
        ("303-555-1212 - Acme Corp.pdf", Destination("+13035551212", "Acme Corp")),
        ("1 (303) 555-1212_Acme.pdf", Destination("+13035551212", "Acme")),
        ("+1 303 555 1212 Dr. Smith.tif", Destination("+13035551212", "Dr. Smith")),
        ("(303)555-1212.docx", Destination("+13035551212", "")),
        ("13035551212.pdf", Destination("+13035551212", "")),
        ("3035551212 2nd floor.pdf", Destination("+13035551212", "2nd floor")),
        ("3035551212/report.pdf", Destination("+13035551212", "")),
        ("303-555-1212 Acme/Q3 report.pdf", Destination("+13035551212", "Acme")),
        ("3035551212/2024 report.pdf", Destination("+13035551212", "")),
    ],
)
def test_destination_from_name_or_folder(relpath: str, expected: Destination) -> None:
    """The number comes from the file name, or from the folder it was dropped in."""
    assert parse_destination(PurePosixPath(relpath)) == expected


def test_recipient_is_cut_to_32_characters() -> None:
    """FAXAGE takes at most 32 characters of recipient name."""
    long_name = "A" * 40
    result = parse_destination(PurePosixPath(f"3035551212 - {long_name}.pdf"))
    assert result.recipname == "A" * 32


def test_folder_without_number_falls_back_to_file_name() -> None:
    """A plain folder (say, per department) does not hide the number in the file name."""
    result = parse_destination(PurePosixPath("sales/3035551212 - Acme.pdf"))
    assert result == Destination("+13035551212", "Acme")


@pytest.mark.parametrize(
    ("relpath", "words"),
    [
        ("report.pdf", "no fax number"),
        ("303555121.pdf", "9 digits"),
        ("30355512123.pdf", "more than 10 digits"),
        ("0035551212.pdf", "not a valid fax number"),
        ("2024 report.pdf", "4 digits"),
        ("30355/report.pdf", "folder '30355'"),
    ],
)
def test_bad_numbers_are_refused_with_a_reason(relpath: str, words: str) -> None:
    """A missing or malformed number is refused, and the message says what to do."""
    with pytest.raises(IntakeError) as caught:
        parse_destination(PurePosixPath(relpath))
    assert words in caught.value.message
    assert "rename" in caught.value.message or "start the file name" in caught.value.message


@pytest.mark.parametrize(
    ("relpath", "country", "expected"),
    [
        ("+49 30 1234567 invoice.pdf", "US", Destination("+49301234567", "invoice")),
        ("0049301234567_x.pdf", "US", Destination("+49301234567", "x")),
        ("011 49 30 1234567 - Acme GmbH.pdf", "US", Destination("+49301234567", "Acme GmbH")),
        ("+44 (0)20 7946 0018 Bob.pdf", "US", Destination("+442079460018", "Bob")),
        ("+49 30 1234567 - 2024 report.pdf", "US", Destination("+49301234567", "2024 report")),
        ("+49 30 1234567_2024.pdf", "US", Destination("+49301234567", "2024")),
        ("0049301234567/report.pdf", "US", Destination("+49301234567", "")),
        ("030 1234567 Rechnung.pdf", "DE", Destination("+49301234567", "Rechnung")),
        ("030-1234567.pdf", "DE", Destination("+49301234567", "")),
        ("020 7946 0018 - Bob.pdf", "GB", Destination("+442079460018", "Bob")),
        ("+1 303 555 1212 Dr. Smith.tif", "DE", Destination("+13035551212", "Dr. Smith")),
        ("3035551212 2nd floor.pdf", "CA", Destination("+13035551212", "2nd floor")),
    ],
)
def test_international_and_national_names(
    relpath: str, country: str, expected: Destination
) -> None:
    """+, 00 and 011 names, and national numbers of [outbound] country, give E.164."""
    assert parse_destination(PurePosixPath(relpath), country) == expected


@pytest.mark.parametrize(
    ("relpath", "country", "words"),
    [
        ("+49 30 12.pdf", "US", "'+49 30 12' is not a valid fax number"),
        ("+999 1234 5678 x.pdf", "US", "no country has the calling code"),
        ("00" + "4" * 30 + ".pdf", "US", "more than 18 digits"),
        ("0035551212.pdf", "US", "not a valid fax number"),
        ("+4930/report.pdf", "US", "folder '+4930'"),
        ("1 (303) 555-1212.pdf", "DE", "not a valid fax number"),
    ],
)
def test_bad_international_names_are_refused(relpath: str, country: str, words: str) -> None:
    """An unreadable number abroad is refused, saying how to write one."""
    with pytest.raises(IntakeError) as caught:
        parse_destination(PurePosixPath(relpath), country)
    assert words in caught.value.message
    assert "+49 30 1234567" in caught.value.message


@pytest.mark.parametrize("name", ["a.pdf", "A.PDF", "x.tiff", "y.docx", "z.html", "n.txt"])
def test_supported_extensions_pass(name: str) -> None:
    """Every type on the FAXAGE list is accepted, case-insensitively."""
    assert check_extension(name) == name.rsplit(".", 1)[1].lower()


@pytest.mark.parametrize("ext", ["png", "ppt", "pptx", "wps", "wpd", "PNG"])
def test_2014_era_send_types_pass(ext: str) -> None:
    """png, ppt, pptx, wps and wpd, which the 2014-era documents add, are accepted."""
    assert check_extension(f"3035551212.{ext}") == ext.lower()


@pytest.mark.parametrize("name", ["3035551212.exe", "3035551212.zip", "3035551212", "x.pdf.exe"])
def test_unsupported_extensions_are_refused(name: str) -> None:
    """Types FAXAGE cannot convert are refused with the list of ones it can."""
    with pytest.raises(IntakeError) as caught:
        check_extension(name)
    assert "not supported" in caught.value.message
    assert "pdf" in caught.value.message


@pytest.mark.parametrize(
    "name",
    [
        ".hidden.pdf",
        "~$report.docx",
        "3035551212.pdf.tmp",
        "3035551212.pdf.part",
        "3035551212.pdf.crdownload",
        ".3035551212.pdf.swp",
        "x.SWP",
        "._3035551212.pdf",
        "Thumbs.db",
        "desktop.ini",
        "@eaDir",
    ],
)
def test_litter_is_ignored(name: str) -> None:
    """Hidden, temporary, lock and OS metadata files are left alone."""
    assert is_ignored_name(name)


@pytest.mark.parametrize("name", ["3035551212.pdf", "report.tmpl.pdf", "a~$b.pdf"])
def test_ordinary_names_are_not_ignored(name: str) -> None:
    """Ordinary documents are not mistaken for litter."""
    assert not is_ignored_name(name)


def test_files_inside_ignored_folders_are_ignored() -> None:
    """Nothing under @eaDir or a hidden folder is taken."""
    assert is_ignored_path(PurePosixPath("@eaDir/3035551212.pdf/SYNOFILE_THUMB_M.jpg"))
    assert is_ignored_path(PurePosixPath(".Trash/3035551212.pdf"))
    assert not is_ignored_path(PurePosixPath("3035551212/report.pdf"))
