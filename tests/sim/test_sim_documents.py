"""The generated PDF and TIFF files are structurally valid, unique and padded on request."""

from __future__ import annotations

import re
import struct

import pytest

from faxd.sim.documents import count_pages, make_document, make_pdf, make_tiff


def check_pdf(data: bytes) -> int:
    """Follow startxref and every xref offset; return the page count the tree declares."""
    assert data.startswith(b"%PDF-1.4\n") and data.endswith(b"%%EOF\n")
    startxref = int(re.search(rb"startxref\n(\d+)\n%%EOF\n\Z", data).group(1))  # type: ignore[union-attr]
    assert data[startxref:].startswith(b"xref\n0 ")
    count = int(data[startxref:].split(b"\n")[1].split()[1])
    entries = data[startxref:].split(b"\n")[3 : 3 + count - 1]
    for number, entry in enumerate(entries, start=1):
        offset = int(entry.split()[0])
        assert data[offset:].startswith(b"%d 0 obj\n" % number), number
    for match in re.finditer(rb"<< /Length (\d+) >>\nstream\n", data):
        end = match.end() + int(match.group(1))
        assert data[end:].startswith(b"\nendstream")
    return int(re.search(rb"/Count (\d+)", data).group(1))  # type: ignore[union-attr]


def check_tiff(data: bytes) -> list[str]:
    """Walk the IFD chain; return each page's ImageDescription."""
    assert data[:4] == b"II*\x00"
    (offset,) = struct.unpack_from("<I", data, 4)
    descriptions = []
    while offset:
        (n,) = struct.unpack_from("<H", data, offset)
        tags = {}
        for i in range(n):
            tag, kind, count, value = struct.unpack_from("<HHII", data, offset + 2 + 12 * i)
            tags[tag] = (kind, count, value)
        _, count, at = tags[270]
        descriptions.append(data[at : at + count - 1].decode())
        strip_at, strip_len = tags[273][2], tags[279][2]
        width, height = tags[256][2], tags[257][2]
        assert strip_len == width // 8 * height and strip_at + strip_len <= len(data)
        (offset,) = struct.unpack_from("<I", data, offset + 2 + 12 * n)
    return descriptions


@pytest.mark.parametrize("pages", [1, 2, 5])
def test_pdf_is_valid_with_pages(pages: int) -> None:
    """make_pdf writes a consistent xref and the requested page count."""
    data = make_pdf("Fax 104729", pages)
    assert check_pdf(data) == pages
    assert count_pages("x.pdf", data) == pages
    assert b"(Fax 104729 - page 1 of %d)" % pages in data


def test_pdf_padding_keeps_it_valid() -> None:
    """size pads the PDF to about that many bytes without breaking its structure."""
    data = make_pdf("Fax 7", 2, size=100_000)
    assert 99_000 <= len(data) <= 101_000
    assert check_pdf(data) == 2
    assert count_pages("x.pdf", data) == 2


def test_pdf_escapes_parentheses() -> None:
    """Text with parentheses cannot break the content stream."""
    data = make_pdf("Job (1) \\ x", 1)
    assert b"(Job \\(1\\) \\\\ x - page 1 of 1)" in data
    check_pdf(data)


@pytest.mark.parametrize("pages", [1, 3])
def test_tiff_is_valid_with_pages(pages: int) -> None:
    """make_tiff writes one IFD per page, each describing itself."""
    data = make_tiff("Fax 104730", pages)
    assert check_tiff(data) == [f"Fax 104730 - page {p} of {pages}" for p in range(1, pages + 1)]
    assert count_pages("x.tif", data) == pages


def test_tiff_padding() -> None:
    """size pads a TIFF after its image data."""
    data = make_tiff("Fax 1", 1, size=10_000)
    assert len(data) == 10_000 and len(check_tiff(data)) == 1


def test_documents_differ_by_title() -> None:
    """Two titles never give the same bytes, padded or not."""
    assert make_pdf("Fax 1", size=5000) != make_pdf("Fax 2", size=5000)
    assert make_tiff("Fax 1") != make_tiff("Fax 2")


def test_make_document_rejects_unknown_kind_and_zero_pages() -> None:
    """Bad kinds and page counts are refused with a message naming them."""
    with pytest.raises(ValueError, match="'gif'"):
        make_document("gif", "x")
    with pytest.raises(ValueError, match="at least one page"):
        make_pdf("x", 0)


def test_count_pages_other_files() -> None:
    """Files that are neither PDF nor TIFF count as one page."""
    assert count_pages("a.txt", b"hello") == 1
