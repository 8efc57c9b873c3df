"""Small, valid PDF and TIFF files for the simulator to serve.

Every seeded fax must be a real document (faxd sniffs the magic, counts pages
and hands files to printers and mail) and unique (tests tell deliveries apart
by content), so each file carries its own text, e.g. ``Fax 104729``, on each of
its pages.  ``size`` pads a file to about that many bytes with an unreferenced
object (PDF) or trailing bytes after the image data (TIFF), both of which
readers ignore.  No third-party library: the formats are written by hand.
"""

from __future__ import annotations

import random
import re
import struct

PDF_MAGIC = b"%PDF-"
TIFF_MAGIC = b"II*\x00"


def _pdf_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _padding(label: str, count: int) -> bytes:
    """``count`` deterministic, incompressible bytes derived from ``label``."""
    return random.Random(label).randbytes(count)  # noqa: S311 - filler, not a secret


def make_pdf(title: str, pagecount: int = 1, *, size: int | None = None) -> bytes:
    """A valid PDF of ``pagecount`` pages, each showing ``title`` and its page number.

    With ``size``, an unreferenced stream object pads the file to about that many
    bytes (never smaller than the unpadded document).
    """
    if pagecount < 1:
        raise ValueError(f"a fax has at least one page, not {pagecount}")
    objects: list[bytes] = []
    kids = " ".join(f"{4 + 2 * i} 0 R" for i in range(pagecount))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {pagecount} >>".encode())
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for page in range(1, pagecount + 1):
        content_id = 5 + 2 * (page - 1)
        text = _pdf_escape(f"{title} - page {page} of {pagecount}")
        stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>".encode()
        )
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    document = _assemble_pdf(objects)
    if size is not None and size > len(document) + 64:
        filler = _padding(title, size - len(document) - 64)
        objects.append(b"<< /Length %d >>\nstream\n" % len(filler) + filler + b"\nendstream")
        document = _assemble_pdf(objects)
    return document


def _assemble_pdf(objects: list[bytes]) -> bytes:
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: list[int] = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref_at,
    )
    return bytes(out)


_WIDTH = 64  # pixels; 8 bytes a row at 1 bit a pixel
_HEIGHT = 32


def make_tiff(title: str, pagecount: int = 1, *, size: int | None = None) -> bytes:
    """A valid little-endian bilevel TIFF with one IFD per page.

    Each page carries ``title`` in its ImageDescription tag and a bit pattern
    derived from it, so two faxes never share bytes.
    """
    if pagecount < 1:
        raise ValueError(f"a fax has at least one page, not {pagecount}")
    row_bytes = _WIDTH // 8
    out = bytearray(TIFF_MAGIC + b"\x00\x00\x00\x00")  # first IFD offset patched below
    previous_link = 4
    for page in range(1, pagecount + 1):
        description = f"{title} - page {page} of {pagecount}".encode("ascii", "replace") + b"\0"
        pattern = _padding(f"{title}:{page}", row_bytes * _HEIGHT)
        desc_at = len(out)
        out += description
        if len(out) % 2:
            out += b"\0"
        strip_at = len(out)
        out += pattern
        if len(out) % 2:
            out += b"\0"
        ifd_at = len(out)
        struct.pack_into("<I", out, previous_link, ifd_at)
        entries = [
            (256, 4, 1, _WIDTH),  # ImageWidth
            (257, 4, 1, _HEIGHT),  # ImageLength
            (258, 3, 1, 1),  # BitsPerSample
            (259, 3, 1, 1),  # Compression: none
            (262, 3, 1, 0),  # Photometric: WhiteIsZero
            (270, 2, len(description), desc_at),  # ImageDescription
            (273, 4, 1, strip_at),  # StripOffsets
            (277, 3, 1, 1),  # SamplesPerPixel
            (278, 4, 1, _HEIGHT),  # RowsPerStrip
            (279, 4, 1, len(pattern)),  # StripByteCounts
            (297, 3, 2, page - 1 | (pagecount << 16)),  # PageNumber
        ]
        out += struct.pack("<H", len(entries))
        for tag, kind, count, value in entries:
            out += struct.pack("<HHII", tag, kind, count, value)
        previous_link = len(out)
        out += b"\x00\x00\x00\x00"
    if size is not None and size > len(out):
        out += _padding(title, size - len(out))
    return bytes(out)


def make_document(kind: str, title: str, pagecount: int = 1, *, size: int | None = None) -> bytes:
    """A ``"pdf"`` or ``"tiff"`` document; anything else is a :class:`ValueError`."""
    if kind == "pdf":
        return make_pdf(title, pagecount, size=size)
    if kind == "tiff":
        return make_tiff(title, pagecount, size=size)
    raise ValueError(f"unknown document kind {kind!r}; use 'pdf' or 'tiff'")


_PDF_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")


def count_pages(name: str, data: bytes) -> int:
    """Pages a sent file would make: PDF page objects, TIFF IFDs, else one."""
    if data.startswith(PDF_MAGIC):
        return max(1, len(_PDF_PAGE.findall(data)))
    if data.startswith(TIFF_MAGIC):
        return max(1, _tiff_ifd_count(data))
    return 1


def _tiff_ifd_count(data: bytes) -> int:
    count = 0
    seen: set[int] = set()
    (offset,) = struct.unpack_from("<I", data, 4)
    while offset and offset not in seen and offset + 2 <= len(data):
        seen.add(offset)
        count += 1
        (entries,) = struct.unpack_from("<H", data, offset)
        link = offset + 2 + 12 * entries
        if link + 4 > len(data):
            break
        (offset,) = struct.unpack_from("<I", data, link)
    return count
