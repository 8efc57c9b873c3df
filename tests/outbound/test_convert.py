"""Dropped files made fit for a provider: kept, converted to PDF, or refused with a reason."""

from __future__ import annotations

import re
import shutil
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from faxd.errors import FaxdError
from faxd.outbound.convert import (
    ConversionError,
    Converter,
    detect_type,
    prepare,
    text_encoding,
    wrapped_lines,
)
from faxd.sim.documents import make_pdf

PDF_ONLY = frozenset({"pdf"})
VOIPMS = frozenset({"pdf", "txt", "jpg", "gif", "png", "tif"})
NO_SOFFICE = Converter(which=lambda name: None)


def pages(pdf: Path) -> int:
    """Page objects in an uncompressed-dictionary PDF (img2pdf and fpdf2 write those)."""
    return len(re.findall(rb"/Type\s*/Page[^s]", pdf.read_bytes()))


def media_box(pdf: Path) -> tuple[float, float]:
    match = re.search(rb"/MediaBox\s*\[\s*0\s+0\s+([\d.]+)\s+([\d.]+)\s*\]", pdf.read_bytes())
    assert match is not None
    return float(match.group(1)), float(match.group(2))


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def image(tmp_path: Path, name: str, mode: str = "RGB", fmt: str | None = None) -> Path:
    path = tmp_path / name
    Image.new(mode, (320, 240), "white" if mode in ("RGB", "RGBA") else 0).save(path, format=fmt)
    return path


def test_accepted_type_is_returned_as_it_is(tmp_path: Path, workdir: Path) -> None:
    pdf = tmp_path / "letter.pdf"
    pdf.write_bytes(make_pdf("letter"))
    png = image(tmp_path, "scan.png")
    assert prepare(pdf, PDF_ONLY, "faxnummer", workdir) == pdf
    assert prepare(png, VOIPMS, "voipms", workdir) == png
    assert list(workdir.iterdir()) == []


def test_aliases_of_a_type_count_as_accepted(tmp_path: Path, workdir: Path) -> None:
    tif = image(tmp_path, "fax.tiff", "1", "TIFF")
    assert prepare(tif, frozenset({"PDF", "TIFF"}), "faxage", workdir) == tif


def test_type_comes_from_the_bytes_not_the_name(tmp_path: Path, workdir: Path) -> None:
    """A PNG named .pdf is converted (and its name in workdir does not overwrite it)."""
    source = workdir / "scan.pdf"
    Image.new("RGB", (100, 100), "red").save(source, format="PNG")
    original = source.read_bytes()
    out = prepare(source, PDF_ONLY, "faxnummer", workdir)
    assert out != source
    assert out.read_bytes().startswith(b"%PDF-")
    assert source.read_bytes() == original


@pytest.mark.parametrize(
    ("name", "mode", "fmt"),
    [
        ("photo.jpg", "RGB", "JPEG"),
        ("logo.png", "RGBA", "PNG"),
        ("anim.gif", "P", "GIF"),
        ("old.bmp", "RGB", "BMP"),
        ("fax.tif", "1", "TIFF"),
        ("deep.tif", "I;16", "TIFF"),  # img2pdf refuses >8 bits: Pillow flattens it
        ("float.tif", "F", "TIFF"),
        ("ycc.tif", "YCbCr", "TIFF"),  # img2pdf: unknown colour space
        ("grey-alpha.png", "LA", "PNG"),
    ],
)
def test_images_become_one_pdf_page(
    tmp_path: Path, workdir: Path, name: str, mode: str, fmt: str
) -> None:
    out = prepare(image(tmp_path, name, mode, fmt), PDF_ONLY, "faxnummer", workdir)
    assert out.parent == workdir
    assert out.suffix == ".pdf"
    assert out.read_bytes().startswith(b"%PDF-")
    assert pages(out) == 1


def test_multi_page_tiff_keeps_every_page(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "three.tif"
    frames = [Image.new("L", (200, 280), shade) for shade in (0, 128, 255)]
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert pages(prepare(path, PDF_ONLY, "faxnummer", workdir)) == 3
    deep = tmp_path / "deep-three.tif"
    frames16 = [Image.new("I;16", (50, 50), v) for v in (1, 2)]
    frames16[0].save(deep, save_all=True, append_images=frames16[1:])
    assert pages(prepare(deep, PDF_ONLY, "faxnummer", workdir)) == 2


def test_pages_are_a4_for_faxnummer_and_letter_elsewhere(tmp_path: Path, workdir: Path) -> None:
    """A tiny or huge image is fitted into the page a fax has."""
    small = image(tmp_path, "small.png")
    width, height = media_box(prepare(small, PDF_ONLY, "faxnummer", workdir))
    assert (round(width), round(height)) == (595, 842)
    bmp = image(tmp_path, "small.bmp", fmt="BMP")
    width, height = media_box(prepare(bmp, VOIPMS, "voipms", workdir))
    assert (round(width), round(height)) == (612, 792)
    out = Converter(paper="Letter").prepare(small, PDF_ONLY, "faxnummer", workdir)
    assert tuple(round(v) for v in media_box(out)) == (612, 792)


def test_broken_image_is_refused_with_a_reason(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "cut.png"
    path.write_bytes(image(tmp_path, "whole.png").read_bytes()[:60])
    with pytest.raises(ConversionError, match="cannot be converted"):
        prepare(path, PDF_ONLY, "faxnummer", workdir)
    assert [p.name for p in workdir.iterdir()] == []


def test_text_becomes_monospace_pdf_pages(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("".join(f"line {n}\twith a tab\n" for n in range(200)), encoding="utf-8")
    out = prepare(path, PDF_ONLY, "faxnummer", workdir)
    assert out.read_bytes().startswith(b"%PDF-")
    assert 3 <= pages(out) <= 5  # about 60 lines to an A4 page


def test_long_lines_are_wrapped_onto_more_pages(tmp_path: Path, workdir: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("x\n" * 50)
    long = tmp_path / "long.txt"
    long.write_text(("y" * 800 + "\n") * 50)
    assert pages(prepare(short, PDF_ONLY, "faxnummer", workdir)) == 1
    assert pages(prepare(long, PDF_ONLY, "faxnummer", workdir)) >= 8


def test_form_feed_starts_a_new_page(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "report.txt"
    path.write_text("page one\n\fpage two\n\f\npage three\n")
    assert pages(prepare(path, PDF_ONLY, "faxnummer", workdir)) == 3


def test_text_encoding_is_detected_over_the_whole_file(tmp_path: Path) -> None:
    utf8 = tmp_path / "utf8.txt"
    utf8.write_bytes(("a" * 200_000 + "\nGrüße, 30 € ✓\n").encode("utf-8"))
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(("a" * 200_000 + "\nGrüße aus Köln\n").encode("latin-1"))
    assert text_encoding(utf8) == "utf-8-sig"
    assert text_encoding(latin1) == "latin-1"


@pytest.mark.parametrize("encoding", ["utf-8", "latin-1"])
def test_both_text_encodings_convert(tmp_path: Path, workdir: Path, encoding: str) -> None:
    path = tmp_path / "brief.txt"
    path.write_bytes("Sehr geehrte Damen und Herren, Grüße\n".encode(encoding))
    assert pages(prepare(path, PDF_ONLY, "faxnummer", workdir)) == 1


def test_a_text_file_too_long_to_fax_is_refused(tmp_path: Path, workdir: Path) -> None:
    """Text is rendered line by line and stops at the page cap, so memory stays bounded."""
    path = tmp_path / "log.txt"
    path.write_text("a log line of some length\n" * 10_000)
    with pytest.raises(ConversionError, match="more than 3 pages"):
        Converter(max_text_pages=3).prepare(path, PDF_ONLY, "faxnummer", workdir)
    assert list(workdir.iterdir()) == []


def test_unknown_binary_names_provider_types_and_remedy(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "program.bin"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(ConversionError) as caught:
        prepare(path, PDF_ONLY, "faxnummer", workdir)
    message = str(caught.value)
    assert "faxnummer.de takes pdf" in message
    assert "save or print it as PDF" in message
    assert isinstance(caught.value, FaxdError)
    assert caught.value.transient is False


def test_no_conversion_when_the_provider_takes_no_pdf(tmp_path: Path, workdir: Path) -> None:
    with pytest.raises(ConversionError, match="converts only to PDF"):
        prepare(image(tmp_path, "a.png"), frozenset({"tif"}), "faxage", workdir)


def rtf(tmp_path: Path) -> Path:
    path = tmp_path / "brief.rtf"
    path.write_text(r"{\rtf1\ansi Sehr geehrte Damen und Herren\par}")
    return path


def docx(tmp_path: Path, name: str = "letter.docx") -> Path:
    """A minimal, valid Word document written by hand."""
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
            'content-types"><Default Extension="rels" ContentType="application/vnd.'
            'openxmlformats-package.relationships+xml"/><Default Extension="xml" '
            'ContentType="application/xml"/><Override PartName="/word/document.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.'
            'document.main+xml"/></Types>',
        )
        archive.writestr(
            "_rels/.rels",
            '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/'
            'package/2006/relationships"><Relationship Id="r1" Type="http://schemas.'
            'openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
            'Target="word/document.xml"/></Relationships>',
        )
        archive.writestr(
            "word/document.xml",
            '<?xml version="1.0"?><w:document xmlns:w="http://schemas.openxmlformats.org/'
            'wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Hello from faxd</w:t></w:r>'
            "</w:p></w:body></w:document>",
        )
    return path


def test_office_types_are_detected_by_content(tmp_path: Path) -> None:
    assert detect_type(rtf(tmp_path)) == "rtf"
    assert detect_type(docx(tmp_path, "renamed.bin")) == "docx"
    odt = tmp_path / "doc.zip"
    with zipfile.ZipFile(odt, "w") as archive:
        archive.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
    assert detect_type(odt) == "ods"
    ole = tmp_path / "sheet.xls"
    ole.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    assert detect_type(ole) == "xls"
    plain_zip = tmp_path / "photos.zip"
    with zipfile.ZipFile(plain_zip, "w") as archive:
        archive.writestr("a.txt", "x")
    assert detect_type(plain_zip) is None


def test_office_without_libreoffice_says_it_is_not_installed(tmp_path: Path, workdir: Path) -> None:
    """The soffice lookup is injected: a machine without LibreOffice refuses with a reason."""
    with pytest.raises(ConversionError) as caught:
        NO_SOFFICE.prepare(docx(tmp_path), PDF_ONLY, "faxnummer", workdir)
    message = str(caught.value)
    assert "LibreOffice, which is not installed" in message
    assert "faxnummer.de takes pdf" in message
    assert "save the document as PDF" in message


def fake_soffice(tmp_path: Path, script: str) -> Path:
    """A stand-in program in soffice's place, to drive the failure paths."""
    path = tmp_path / "soffice"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_soffice_that_hangs_is_stopped(tmp_path: Path, workdir: Path) -> None:
    program = fake_soffice(tmp_path, "sleep 600 & wait")
    converter = Converter(which=lambda name: str(program), soffice_timeout=1)
    with pytest.raises(ConversionError, match="took longer than 1 s"):
        converter.prepare(rtf(tmp_path), PDF_ONLY, "voipms", workdir)
    assert list(workdir.iterdir()) == []


def test_soffice_that_makes_no_pdf_is_reported(tmp_path: Path, workdir: Path) -> None:
    program = fake_soffice(tmp_path, 'echo "source file could not be loaded" >&2; exit 1')
    converter = Converter(which=lambda name: str(program))
    with pytest.raises(ConversionError, match=r"could not convert.*source file could not"):
        converter.prepare(rtf(tmp_path), PDF_ONLY, "voipms", workdir)


def test_soffice_gets_a_private_home_and_profile(tmp_path: Path, workdir: Path) -> None:
    """LibreOffice must not write into the service user's home: HOME and profile are private."""
    seen = tmp_path / "seen.txt"
    program = fake_soffice(
        tmp_path,
        f'echo "$HOME" > {seen}; echo "$@" >> {seen}; '
        'out=""; while [ $# -gt 0 ]; do [ "$1" = --outdir ] && out="$2"; shift; done; '
        'printf "%%PDF-1.4 fake" > "$out/document.pdf"',
    )
    out = Converter(which=lambda name: str(program)).prepare(
        rtf(tmp_path), PDF_ONLY, "voipms", workdir
    )
    assert out.read_bytes().startswith(b"%PDF-")
    home, args = seen.read_text().splitlines()
    assert home.startswith(str(workdir))
    assert "-env:UserInstallation=file://" + str(workdir) in args
    assert "--headless" in args
    assert [p.name for p in workdir.iterdir()] == [out.name]  # the scratch folder is gone


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
@pytest.mark.parametrize("make", [rtf, docx])
def test_libreoffice_converts_office_documents(
    tmp_path: Path, workdir: Path, make: Callable[[Path], Path]
) -> None:
    source = make(tmp_path)
    out = prepare(source, PDF_ONLY, "faxnummer", workdir)
    assert out.parent == workdir
    assert out.read_bytes().startswith(b"%PDF-")
    assert out.stat().st_size > 500


def test_a_line_longer_than_one_read_wraps_evenly(tmp_path: Path) -> None:
    """A file without line breaks is read in pieces, yet every row is full but the last."""
    path = tmp_path / "one-line.txt"
    path.write_text("x" * 200_000 + "tail")
    rows = list(wrapped_lines(path, "utf-8", 80))
    assert [len(row) for row in rows[:-1]] == [80] * 2500
    assert rows[-1] == "tail"


def test_wrapped_lines_expand_tabs_and_drop_controls(tmp_path: Path) -> None:
    path = tmp_path / "tabs.txt"
    path.write_bytes(b"a\tb\x07c\r\n\fnext\n")
    assert list(wrapped_lines(path, "utf-8", 80)) == ["a       bc", "\f", "next"]
