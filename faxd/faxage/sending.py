"""What a sendfax POST carries: the files, the destination and the options.

Checking a fax before it goes out (a known file type, a 10-digit number, an
option FAXAGE accepts) and laying it out as the documented form fields is pure
work, apart from reading the files.  It lives here so that
:mod:`faxd.faxage.client` keeps to the POST itself and its once-only retry rule.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from faxd.errors import PermanentError
from faxd.faxage import wire
from faxd.faxage.account import normalize_did

__all__ = ["FaxFile", "file_fields", "send_options", "url_fields"]


@dataclass(frozen=True)
class FaxFile:
    """A file to fax: a name FAXAGE reads the type from, and its content.

    ``FaxFile(name, path)`` reads ``path`` when the fax is sent;
    ``FaxFile.from_bytes(name, data)`` carries the bytes itself.
    """

    name: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("FaxFile needs exactly one of path or data")

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> FaxFile:
        """A file whose content is already in memory."""
        return cls(name=name, data=data)

    def read(self) -> bytes:
        """The file's bytes (read from disk now if it has a path)."""
        if self.data is not None:
            return self.data
        assert self.path is not None
        return self.path.read_bytes()


def file_fields(
    faxno: str, recipname: str, files: Sequence[FaxFile]
) -> dict[str, wire.FormValue]:
    """Standard-mode fields: the destination, then each file's name and base64 content.

    The files are checked (at least one, each of a type FAXAGE faxes) before
    any is read.
    """
    if not files:
        raise PermanentError("no files given to fax", operation="sendfax")
    for item in files:
        ext = item.name.rsplit(".", 1)[-1].lower() if "." in item.name else ""
        if ext not in wire.SEND_EXTENSIONS:
            raise PermanentError(
                f"{item.name!r}: FAXAGE cannot fax .{ext or '(none)'} files; use one of "
                + ", ".join(sorted(wire.SEND_EXTENSIONS)),
                operation="sendfax",
            )
    fields = _destination(faxno, recipname)
    fields["faxfilenames"] = [item.name for item in files]
    fields["faxfiledata"] = [base64.b64encode(item.read()).decode("ascii") for item in files]
    return fields


def url_fields(
    faxno: str,
    recipname: str,
    urls: Sequence[str],
    url_types: Sequence[str] | None,
    async_: bool,
) -> dict[str, wire.FormValue]:
    """URL-mode fields: the destination, then ``faxurl`` or ``faxurls[]`` (+ ``faxurltypes[]``).

    One URL without a type is sent as ``faxurl``; otherwise every URL goes in
    ``faxurls[]``, with one type per URL when ``url_types`` is given.
    """
    if not urls:
        raise PermanentError("no URLs given to fax", operation="sendfax")
    if url_types is not None and len(url_types) != len(urls):
        raise PermanentError(
            f"{len(url_types)} url_types for {len(urls)} URLs; give one type per URL",
            operation="sendfax",
        )
    fields = _destination(faxno, recipname)
    if len(urls) == 1 and url_types is None:
        fields["faxurl"] = urls[0]
    else:
        fields["faxurls"] = list(urls)
        fields["faxurltypes"] = list(url_types) if url_types is not None else None
    fields["async"] = async_
    return fields


def _destination(faxno: str, recipname: str) -> dict[str, wire.FormValue]:
    """``faxno`` as 10 digits and the recipient name cut to FAXAGE's 32 characters."""
    return {"recipname": recipname[:32], "faxno": normalize_did(faxno, "sendfax")}


def send_options(
    tagname: str | None,
    tagnumber: str | None,
    em_notify: bool,
    url_notify: str | None,
    resolution: int | None,
    contrastalgo: int | None,
    priority: str | None,
) -> dict[str, wire.FormValue]:
    """The optional sendfax fields, each checked against the values FAXAGE documents."""
    if priority is not None and priority not in ("high", "low"):
        raise PermanentError(f"priority {priority!r} must be 'high' or 'low'", operation="sendfax")
    if resolution is not None and resolution not in (1, 2):
        raise PermanentError(
            f"resolution {resolution!r} must be 1 (fine) or 2 (hyperfine)", operation="sendfax"
        )
    if contrastalgo is not None and contrastalgo not in (1, 2):
        raise PermanentError(f"contrastalgo {contrastalgo!r} must be 1 or 2", operation="sendfax")
    return {
        "tagname": tagname,
        "tagnumber": tagnumber[:14] if tagnumber else None,
        "em_notify": em_notify,
        "url_notify": url_notify,
        "resolution": resolution,
        "contrastalgo": contrastalgo,
        "priority": priority,
    }
