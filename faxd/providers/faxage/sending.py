"""What a sendfax POST carries: the files, the destination and the options.

Checking a fax before it goes out (a known file type, a 10-digit number, an
option FAXAGE accepts) and laying it out as the documented form fields is pure
work; the files are not read here: their content is streamed into the POST
by :mod:`faxd.providers.faxage.formbody`, and :func:`file_fields` puts a token in their
place.  It lives here so that :mod:`faxd.providers.faxage.client` keeps to the POST
itself and its once-only retry rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from faxd.errors import PermanentError
from faxd.providers.faxage import wire
from faxd.providers.faxage.account import normalize_did

__all__ = ["FaxFile", "file_fields", "file_tokens", "send_options", "url_fields"]


@dataclass(frozen=True)
class FaxFile:
    """A file to fax: a name FAXAGE reads the type from, and its content.

    ``FaxFile(name, path)`` reads ``path`` when the fax is sent (never
    through a symlink); ``FaxFile.from_bytes(name, data)`` carries the bytes
    itself.  With ``size`` and ``sha256`` the file must still hold exactly
    those bytes at every POST, or nothing is sent
    (:class:`~faxd.errors.FileChangedError`).
    """

    name: str
    path: Path | None = None
    data: bytes | None = field(default=None, repr=False)
    size: int | None = None
    sha256: str | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("FaxFile needs exactly one of path or data")

    @classmethod
    def from_bytes(cls, name: str, data: bytes) -> FaxFile:
        """A file whose content is already in memory."""
        return cls(name=name, data=data)


def file_fields(
    faxno: str, recipname: str, files: Sequence[FaxFile]
) -> dict[str, wire.FormValue]:
    """Standard-mode fields: the destination, then each file's name and its token.

    The files are checked (at least one, each of a type FAXAGE faxes); the
    ``faxfiledata`` values are the tokens of :func:`file_tokens`, which the
    streamed body replaces with each file's base64 content.
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
    fields["faxfiledata"] = list(file_tokens(files))
    return fields


def file_tokens(files: Sequence[FaxFile]) -> dict[str, FaxFile]:
    """A stand-in value per file (NUL-delimited, so no real field value equals one)."""
    return {f"\0faxd-file-{index}\0": item for index, item in enumerate(files)}


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
