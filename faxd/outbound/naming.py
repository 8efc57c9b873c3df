"""How a file dropped in the outbox names its fax: pure rules, no I/O.

Office workers address a fax by how they name the file (``3035551212.pdf``,
``303-555-1212 - Acme Corp.pdf``, ``1 (303) 555-1212_Acme.pdf``, abroad
``+49 30 1234567 invoice.pdf`` or ``0049301234567_x.pdf``, and national numbers
of ``[outbound] country``) or by the folder they drop it in
(``outbox/3035551212/report.pdf``).  This module turns a
path relative to the hot folder into a :class:`Destination`, decides which
names are litter to ignore, and which types FAXAGE accepts.  Everything that
is wrong with a name comes back as an :class:`~faxd.errors.IntakeError` whose
message is the one line written beside the file in the failed folder.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import PurePath

from faxd import phone
from faxd.errors import IntakeError
from faxd.providers.faxage.files import SEND_EXTENSIONS

#: File types FAXAGE converts and sends (its "Supported File Types" table).
SUPPORTED_EXTENSIONS: frozenset[str] = SEND_EXTENSIONS

#: FAXAGE's limit for ``recipname``.
RECIPIENT_MAX = 32

_IGNORED_NAMES = frozenset({"thumbs.db", "desktop.ini"})
_IGNORED_PREFIXES = (".", "~$", "._")
_IGNORED_SUFFIXES = (".tmp", ".part", ".crdownload", ".swp")
_IGNORED_DIRS = frozenset({"@eadir"})

# Characters people put between the digits of a number: "1 (303) 555-1212".
_NUMBER_PUNCTUATION = frozenset(" ()-.+")
# The most digits read as one number: E.164's 15 and an 00/011 prefix.
_MAX_DIGITS = 18
# Characters that separate the number from the recipient name.
_SEPARATORS = " -_.,;:+()"


@dataclass(frozen=True)
class Destination:
    """Where a dropped file goes: an E.164 number and an optional recipient name."""

    faxno: str
    recipname: str


def is_ignored_name(name: str) -> bool:
    """Whether a file or folder name is litter that faxd leaves alone.

    Hidden files, Office lock files (``~$x.docx``), partial downloads and
    editor swap files, macOS resource forks (``._x``), Windows ``Thumbs.db`` /
    ``desktop.ini`` and Synology ``@eaDir`` folders.
    """
    lowered = name.lower()
    return (
        not name
        or name.startswith(_IGNORED_PREFIXES)
        or lowered.endswith(_IGNORED_SUFFIXES)
        or lowered in _IGNORED_NAMES
        or lowered in _IGNORED_DIRS
    )


def is_ignored_path(relpath: PurePath) -> bool:
    """Whether any part of ``relpath`` (relative to the hot folder) is ignored."""
    return any(is_ignored_name(part) for part in relpath.parts)


def extension_of(name: str) -> str:
    """The lower-case extension of ``name`` without the dot (``""`` if none)."""
    _stem, dot, ext = name.rpartition(".")
    return ext.lower() if dot and _stem else ""


def check_extension(name: str) -> str:
    """Return the extension of ``name`` if FAXAGE can send it, else raise."""
    ext = extension_of(name)
    if ext in SUPPORTED_EXTENSIONS:
        return ext
    kinds = ", ".join(sorted(SUPPORTED_EXTENSIONS))
    shown = f".{ext} files" if ext else "files without an extension"
    raise IntakeError(
        f"{name!r} cannot be faxed: {shown} are not supported; save it as PDF "
        f"(or one of {kinds}) and drop it in the outbox again"
    )


def parse_destination(relpath: PurePath, country: str = "US") -> Destination:
    """Read the destination of a file from its path relative to the hot folder.

    A folder the file sits in that starts with a number wins (the user set up
    ``outbox/3035551212/`` on purpose); otherwise the file name must start
    with the number.  National numbers are read in ``country``.  Raises
    :class:`IntakeError` naming what is wrong.
    """
    name = relpath.name
    if len(relpath.parts) > 1:
        folder = relpath.parts[-2]
        try:
            return _parse_leading_number(folder, country)
        except _NoNumber:
            pass
        except _BadNumber as exc:
            raise IntakeError(
                f"{name!r} is in folder {folder!r}, whose {exc.detail}; rename the folder "
                "to the fax number, like 3035551212 or +49 30 1234567"
            ) from None
    stem = name.rpartition(".")[0] or name
    try:
        return _parse_leading_number(stem, country)
    except _NoNumber:
        raise IntakeError(
            f"{name!r} has no fax number: start the file name with the number, like "
            "'3035551212.pdf' or '303-555-1212 - Acme Corp.pdf', or drop it in a folder "
            "named with the number"
        ) from None
    except _BadNumber as exc:
        raise IntakeError(
            f"{name!r}: the {exc.detail}; rename the file so it starts with the fax "
            "number, like '3035551212 - Acme.pdf' or '+49 30 1234567 - Acme.pdf'"
        ) from None


class _NoNumber(Exception):
    """The text does not start with a digit (after punctuation)."""


class _BadNumber(Exception):
    """The text starts with digits that are not a fax number."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _parse_leading_number(text: str, country: str) -> Destination:
    """Split ``text`` into a leading number and a recipient name.

    A NANP number (at home in a NANP country, or after ``+1``) is the first
    10 digits, or 11 with a leading 1, as it always was.  Any other number
    (``+``, ``00``, ``011``, or national in another country) ends where a
    group of digits ends: the longest run of groups that is a valid number
    wins.  ``_`` or `` - `` always ends it, so ``+49 30 1234567 - 2024 report``
    is unambiguous where the name starts with digits.
    """
    plus, head = _number_start(text)
    if not head:
        raise _NoNumber()
    home_nanp = phone.is_nanp_country(country)
    if plus:
        nanp = head.startswith("1")
    else:
        nanp = home_nanp and not head.startswith("00") and not head.startswith("011")
    if nanp:
        return _parse_nanp(text)
    return _parse_grouped(text, country)


def _number_start(text: str) -> tuple[bool, str]:
    """Whether a ``+`` comes before the first digit, and the first three digits."""
    plus = False
    head = ""
    for char in text:
        if char.isascii() and char.isdigit():
            head += char
            if len(head) == 3:
                break
        elif char not in _NUMBER_PUNCTUATION:
            break
        elif char == "+" and not head:
            plus = True
    return plus, head


def _parse_grouped(text: str, country: str) -> Destination:
    """A non-NANP leading number: the longest run of digit groups that is valid."""
    ends: list[int] = []  # indexes just after each group of digits
    count = 0
    for index, char in enumerate(text):
        if char.isascii() and char.isdigit():
            count += 1
            if count > _MAX_DIGITS:
                break
            following = text[index + 1 : index + 2]
            if not (following.isascii() and following.isdigit()):
                ends.append(index + 1)
        elif char not in _NUMBER_PUNCTUATION or text.startswith(" - ", index):
            break
    if not ends:
        raise _BadNumber(f"number has more than {_MAX_DIGITS} digits")
    first_problem = ""
    for end in reversed(ends):
        try:
            number = phone.parse_number(text[:end], country)
        except ValueError as exc:
            first_problem = first_problem or str(exc)
            continue
        return Destination(number, _recipient(text[end:]))
    written = text[: ends[-1]].strip()
    raise _BadNumber(f"number {written[:40]!r} is not a valid fax number ({first_problem})")


def _parse_nanp(text: str) -> Destination:
    """Split ``text`` into a leading 10/11-digit NANP number and a recipient name."""
    digits: list[str] = []
    end = 0  # index just after the last digit taken
    for index, char in enumerate(text):
        if char.isascii() and char.isdigit():
            digits.append(char)
            end = index + 1
            wanted = 11 if digits[0] == "1" else 10
            if len(digits) == wanted:
                break
        elif char not in _NUMBER_PUNCTUATION:
            break
    if not digits:
        raise _NoNumber()
    rest = text[end:]
    found = "".join(digits)
    if rest[:1].isdigit():
        raise _BadNumber(f"number starting {found!r} has more than {len(found)} digits")
    if len(found) == 11:
        found = found[1:]
    if len(found) != 10 or found[0] in "01":
        count = len(found)
        why = (
            f"number {found!r} has {count} digit{'s' if count != 1 else ''}, not 10"
            if count != 10
            else f"number {found!r} is not a valid fax number (area codes never start with 0 or 1)"
        )
        raise _BadNumber(why)
    return Destination(f"+1{found}", _recipient(rest))


def _recipient(rest: str) -> str:
    """The recipient name: what follows the number, trimmed to FAXAGE's 32 characters."""
    cleaned = "".join(c for c in rest if unicodedata.category(c)[0] != "C")
    return cleaned.strip(_SEPARATORS).strip()[:RECIPIENT_MAX].strip()
