"""What faxd believes about a file FAXAGE hands over or is handed.

A file name from the server is display text, never a path (DESIGN invariant
4), and a file's type is read from its first bytes, never from a header.  These
rules are shared by the listfax parser, the download checks and sendfax, so
they live in one small pure module.
"""

from __future__ import annotations

import re
from email.message import Message

__all__ = ["SEND_EXTENSIONS", "filename_from_content_disposition", "safe_filename", "sniff_kind"]

#: File extensions FAXAGE accepts for sendfax (lower case, no dot); png, ppt,
#: pptx, wps and wpd are in the 2014-era documents.
SEND_EXTENSIONS = frozenset(
    {"pdf", "ps", "tif", "tiff", "jpg", "jpeg", "gif", "bmp", "doc", "dot", "docx", "odt"}
    | {"rtf", "xls", "xlsx", "ods", "csv", "htm", "html", "pcl", "txt"}
    | {"png", "ppt", "pptx", "wps", "wpd"}
)

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_filename(name: str | None, *, limit: int = 100) -> str | None:
    """A server-supplied file name made harmless: basename, safe characters, or None."""
    if not name:
        return None
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = _SAFE.sub("_", base).lstrip(".")[:limit]
    return base if base.strip("_") else None


def filename_from_content_disposition(header: str | None) -> str | None:
    """The file name in a Content-Disposition header, safe for display; never a path."""
    if not header:
        return None
    message = Message()
    message["content-disposition"] = header
    try:
        name = message.get_filename()
    except (ValueError, LookupError):
        return None
    return safe_filename(name)


def sniff_kind(first_bytes: bytes) -> str | None:
    """``"pdf"`` or ``"tiff"`` from a body's magic bytes, else ``None``."""
    if first_bytes.startswith(b"%PDF-"):
        return "pdf"
    if first_bytes.startswith((b"II*\x00", b"MM\x00*")):
        return "tiff"
    return None
