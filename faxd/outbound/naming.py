"""How a file dropped in the outbox names its fax: pure rules, no I/O.

Office workers address a fax by how they name the file (``3035551212.pdf``,
``303-555-1212 - Acme Corp.pdf``, ``1 (303) 555-1212_Acme.pdf``) or by the
folder they drop it in (``outbox/3035551212/report.pdf``).  This module turns a
path relative to the hot folder into a :class:`Destination`, decides which
names are litter to ignore, and which types FAXAGE accepts.  Everything that
is wrong with a name comes back as an :class:`~faxd.errors.IntakeError` whose
message is the one line written beside the file in the failed folder.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import PurePath

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
# Characters that separate the number from the recipient name.
_SEPARATORS = " -_.,;:+()"


@dataclass(frozen=True)
class Destination:
    """Where a dropped file goes: ten digits and an optional recipient name."""

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


def parse_destination(relpath: PurePath) -> Destination:
    """Read the destination of a file from its path relative to the hot folder.

    A folder the file sits in that starts with a number wins (the user set up
    ``outbox/3035551212/`` on purpose); otherwise the file name must start
    with the number.  Raises :class:`IntakeError` naming what is wrong.
    """
    name = relpath.name
    if len(relpath.parts) > 1:
        folder = relpath.parts[-2]
        try:
            return _parse_leading_number(folder)
        except _NoNumber:
            pass
        except _BadNumber as exc:
            raise IntakeError(
                f"{name!r} is in folder {folder!r}, whose {exc.detail}; rename the folder "
                "to the 10-digit fax number, like 3035551212"
            ) from None
    stem = name.rpartition(".")[0] or name
    try:
        return _parse_leading_number(stem)
    except _NoNumber:
        raise IntakeError(
            f"{name!r} has no fax number: start the file name with the number, like "
            "'3035551212.pdf' or '303-555-1212 - Acme Corp.pdf', or drop it in a folder "
            "named with the number"
        ) from None
    except _BadNumber as exc:
        raise IntakeError(
            f"{name!r}: the {exc.detail}; rename the file so it starts with the 10-digit "
            "fax number, like '3035551212 - Acme.pdf'"
        ) from None


class _NoNumber(Exception):
    """The text does not start with a digit (after punctuation)."""


class _BadNumber(Exception):
    """The text starts with digits that are not a fax number."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


def _parse_leading_number(text: str) -> Destination:
    """Split ``text`` into a leading 10/11-digit number and a recipient name."""
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
    return Destination(found, _recipient(rest))


def _recipient(rest: str) -> str:
    """The recipient name: what follows the number, trimmed to FAXAGE's 32 characters."""
    cleaned = "".join(c for c in rest if unicodedata.category(c)[0] != "C")
    return cleaned.strip(_SEPARATORS).strip()[:RECIPIENT_MAX].strip()
