"""Which dropped files the outbox takes: what the sending provider takes, or can be made PDF.

Why at intake, by name: a file that can never be sent should come back to the
person who dropped it at once, with its reason beside it in the failed folder,
not sit as a queued job until the submitter tries it.  The outbound provider
takes some types as they are (``Capabilities.send_types``); when it takes
PDF, :mod:`faxd.outbound.convert` turns images, plain text and (only when
LibreOffice's ``soffice`` is installed) office documents into PDF before the
job is submitted.  Everything else is refused here with a reason that names
the provider, what it takes and what the person can do.

The name only decides whether a file is worth queueing: the submitter reads
its real type from its first bytes (:func:`faxd.outbound.convert.detect_type`)
before anything is sent.  This module imports nothing heavy, so ``faxd send``
and the hot folder do not load the image and PDF libraries.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field

from faxd.errors import IntakeError
from faxd.outbound.naming import SUPPORTED_EXTENSIONS, extension_of

__all__ = [
    "ALIASES",
    "DISPLAY",
    "IMAGE_TYPES",
    "OFFICE_TYPES",
    "TEXT_TYPES",
    "Acceptance",
    "canonical",
]

IMAGE_TYPES = frozenset({"png", "jpg", "gif", "tif", "bmp"})
TEXT_TYPES = frozenset({"txt"})
OFFICE_TYPES = frozenset({"doc", "docx", "odt", "rtf", "xls", "xlsx", "ods", "ppt", "pptx", "odp"})
#: Other spellings of a type, as a file name or a provider's list may write them.
ALIASES = {"tiff": "tif", "jpeg": "jpg", "text": "txt"}
#: How providers are named to people.
DISPLAY = {"faxage": "FAXAGE", "voipms": "VoIP.ms", "ifax": "iFax", "faxnummer": "faxnummer.de"}


def canonical(kind: str) -> str:
    """``kind`` lower-cased with its alias resolved (``TIFF`` -> ``tif``)."""
    lowered = kind.lower()
    return ALIASES.get(lowered, lowered)


@dataclass(frozen=True)
class Acceptance:
    """What the outbox takes for one sending provider; ``which`` finds ``soffice``."""

    provider: str = "faxage"
    send_types: frozenset[str] = SUPPORTED_EXTENSIONS
    which: Callable[[str], str | None] = field(default=shutil.which, compare=False)

    @property
    def label(self) -> str:
        return DISPLAY.get(self.provider, self.provider)

    def check(self, name: str) -> str:
        """The extension of ``name`` if the provider takes it or faxd can convert it; else raise."""
        ext = extension_of(name)
        kind = canonical(ext)
        takes = frozenset(canonical(t) for t in self.send_types)
        if ext in self.send_types or kind in takes:
            return ext
        converts = "pdf" in takes
        if converts and (kind in IMAGE_TYPES or kind in TEXT_TYPES):
            return ext
        offered = f"{self.label} takes {', '.join(sorted(takes)) or 'nothing'}"
        if converts and kind in OFFICE_TYPES:
            if self.which("soffice") is not None:
                return ext
            raise IntakeError(
                f"{name!r} cannot be faxed: {offered}, and LibreOffice is not installed to "
                f"convert .{ext} documents to PDF; save it as PDF and drop that in the outbox, "
                "or ask the administrator to install LibreOffice (apt install "
                "libreoffice-writer-nogui libreoffice-calc-nogui)"
            )
        shown = f".{ext} files" if ext else "files without an extension"
        made = (
            f", and faxd converts {', '.join(sorted(IMAGE_TYPES | TEXT_TYPES))} files "
            "(and office documents when LibreOffice is installed) to PDF"
            if converts
            else ""
        )
        raise IntakeError(
            f"{name!r} cannot be faxed: {shown} are not supported; {offered}{made}: "
            "save it as PDF and drop it in the outbox again"
        )
