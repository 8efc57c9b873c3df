"""Turn a dropped file into something the outbound provider takes, or say why not.

Providers take fewer file types than offices drop: faxnummer.de takes only
PDF, VoIP.ms pdf/txt/jpg/gif/png/tif, FAXAGE a long list.  Before a job is
submitted, :func:`prepare` finds the file's real type from its first bytes
(never from its name alone: ``scan.pdf`` may be a PNG) and either hands the
file back as it is, when the provider takes that type, or writes a PDF of it:

- images (PNG, JPEG, GIF, TIFF with all its pages, BMP) through ``img2pdf``,
  which embeds them without re-encoding; modes it refuses (alpha, palettes
  with transparency, 16-bit) are flattened by Pillow first.  Each image is
  fitted into an A4 or Letter page, since a fax page has that size;
- plain text (UTF-8, else Latin-1) rendered with ``fpdf2`` in a monospace
  font, long lines wrapped, a form feed starting a new page.  It is read line
  by line and stops at :attr:`Converter.max_text_pages`, so a huge text file
  cannot exhaust memory;
- office documents (Word, Excel, PowerPoint, OpenDocument, RTF) through
  LibreOffice (``soffice --headless --convert-to pdf``) when it is installed,
  with a time limit and a private profile directory, so it neither hangs the
  submitter nor touches the service user's home.

Anything else raises :class:`ConversionError`, a permanent error whose message
names the provider, the types it takes and what the person can do.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import shutil
import signal
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import img2pdf  # type: ignore[import-untyped]
from fpdf import FPDF
from PIL import Image, ImageSequence

from faxd.durable import fsync_file
from faxd.errors import FaxdError
from faxd.outbound.accepted import ALIASES, DISPLAY, IMAGE_TYPES

__all__ = [
    "ConversionError",
    "Converter",
    "detect_type",
    "prepare",
    "text_encoding",
    "wrapped_lines",
]

#: Page sizes in PDF points.
PAPER = {"a4": (595.28, 841.89), "letter": (612.0, 792.0)}
#: Monospace TrueType fonts with wide Unicode coverage; Courier (Latin-1 only) otherwise.
MONO_FONTS = (
    Path("/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"),
    Path("/usr/share/fonts/dejavu/DejaVuSansMono.ttf"),
    Path("/usr/share/fonts/truetype/liberation/LiberationMono-Regular.ttf"),
)

_SNIFF = 64 * 1024
#: Characters of one line read at once; a longer line is carried over to the next read.
_LINE_READ = 64 * 1024
_ODF = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.presentation": "odp",
}
_OOXML = {"word/": "docx", "xl/": "xlsx", "ppt/": "pptx"}


class ConversionError(FaxdError):
    """A file cannot be sent through this provider as it is and cannot be converted.

    Permanent: the same file fails the same way every time.
    """

    transient = False


# ---------------------------------------------------------------------- type detection


def detect_type(path: Path) -> str | None:
    """The file's type as a lower-case extension (``pdf``, ``png``, ``docx``, ``txt``...).

    Read from the magic bytes; the name decides only between formats that
    share a container (an old ``.xls`` and ``.doc`` are both OLE2).  ``None``
    when it is none faxd knows.
    """
    with path.open("rb") as handle:
        head = handle.read(_SNIFF)
    ext = ALIASES.get(path.suffix.lower().lstrip("."), path.suffix.lower().lstrip("."))
    if head.startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "tif"
    if head[:2] == b"BM" and len(head) >= 26 and head[14:18] in _BMP_HEADER_SIZES:
        return "bmp"
    if head.startswith(b"{\\rtf"):
        return "rtf"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return ext if ext in ("doc", "xls", "ppt") else "doc"
    if head.startswith(b"PK\x03\x04"):
        return _zip_type(path)
    if _looks_like_text(head):
        return "txt"
    return None


#: The sizes of the BMP info headers (OS/2, Windows 3, 4 and 5), little-endian.
_BMP_HEADER_SIZES = {n.to_bytes(4, "little") for n in (12, 40, 52, 56, 64, 108, 124)}


def _zip_type(path: Path) -> str | None:
    """An OpenDocument or Office Open XML file by what its archive holds."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            if "mimetype" in names:
                return _ODF.get(archive.read("mimetype").strip())
            if "[Content_Types].xml" in names:
                for prefix, kind in _OOXML.items():
                    if any(name.startswith(prefix) for name in names):
                        return kind
    except (zipfile.BadZipFile, OSError, KeyError):
        return None
    return None


def _looks_like_text(head: bytes) -> bool:
    """Plain text: no NUL, at most 1 % control bytes other than tab, newlines and form feed.

    Any byte above 127 is allowed: the encoding (UTF-8, else Latin-1) is
    decided over the whole file when it is rendered.
    """
    if not head or b"\x00" in head:
        return False
    controls = sum(1 for b in head if (b < 32 and b not in (9, 10, 12, 13)) or b == 127)
    return controls * 100 <= len(head)


# ---------------------------------------------------------------------- converting


class Converter:
    """Detects and converts; ``which`` finds ``soffice`` (tests inject one that finds nothing)."""

    def __init__(
        self,
        *,
        which: Callable[[str], str | None] = shutil.which,
        soffice_timeout: float = 120.0,
        paper: str | None = None,
        max_text_pages: int = 500,
        font_size: float = 10.0,
    ) -> None:
        if paper is not None and paper.lower() not in PAPER:
            raise ValueError(f"paper {paper!r}: choose A4 or Letter")
        self.which = which
        self.soffice_timeout = soffice_timeout
        self.paper = paper
        self.max_text_pages = max_text_pages
        self.font_size = font_size

    def prepare(self, path: Path, accepted: frozenset[str], provider: str, workdir: Path) -> Path:
        """``path`` itself if ``provider`` takes its type, else a PDF of it in ``workdir``."""
        takes = frozenset(ALIASES.get(t.lower(), t.lower()) for t in accepted)
        try:
            kind = detect_type(path)
        except OSError as exc:
            raise ConversionError(
                f"{path.name!r} cannot be read ({exc.strerror or exc}); drop it again"
            ) from None
        if kind in takes:
            return path
        name = DISPLAY.get(provider, provider)
        what = f"{name} takes {', '.join(sorted(takes)) or 'nothing'}"
        if kind is None:
            raise ConversionError(
                f"{path.name!r} is not a file type faxd can fax or convert; {what}: "
                "save or print it as PDF and drop that"
            )
        if "pdf" not in takes:
            raise ConversionError(
                f"{path.name!r} is {kind.upper()}, which {name} does not take, and faxd "
                f"converts only to PDF; {what}"
            )
        paper = (self.paper or ("a4" if provider == "faxnummer" else "letter")).lower()
        out = _output_path(path, workdir)
        if kind in IMAGE_TYPES:
            data = self._image(path, kind, paper)
            _write(out, data)
        elif kind == "txt":
            self._text(path, out, paper, what)
        else:
            self._office(path, kind, out, what)
        return out

    # ------------------------------------------------------------------ images

    def _image(self, path: Path, kind: str, paper: str) -> bytes:
        layout = img2pdf.get_layout_fun(PAPER[paper], fit=img2pdf.FitMode.into)
        rotation = img2pdf.Rotation.ifvalid
        try:
            return bytes(img2pdf.convert(str(path), layout_fun=layout, rotation=rotation))
        except Exception:  # noqa: S110 - img2pdf refuses modes it cannot embed as they are
            pass  # (alpha, palettes with transparency, 16-bit...): flattened by Pillow below
        try:
            frames = list(_flattened_frames(path))
            return bytes(img2pdf.convert(frames, layout_fun=layout, rotation=rotation))
        except Exception as exc:
            raise ConversionError(
                f"{path.name!r} looks like a {kind.upper()} image but cannot be converted "
                f"({type(exc).__name__}: {str(exc)[:80]}); save it again or as PDF"
            ) from None

    # ------------------------------------------------------------------ text

    def _text(self, path: Path, out: Path, paper: str, what: str) -> None:
        encoding = text_encoding(path)
        pdf = FPDF(unit="pt", format=PAPER[paper])
        pdf.set_auto_page_break(False)
        pdf.set_margins(56, 56)
        font = next((f for f in MONO_FONTS if f.is_file()), None)
        if font is not None:
            pdf.add_font("mono", "", str(font))
            pdf.set_font("mono", size=self.font_size)
        else:
            pdf.set_font("Courier", size=self.font_size)
        width, height = PAPER[paper]
        columns = max(20, int((width - 112) / pdf.get_string_width("M")))
        leading = self.font_size * 1.2
        rows = max(10, int((height - 112) / leading))
        row = rows  # start a page on the first line
        pages = 0
        for line in wrapped_lines(path, encoding, columns):
            if line == "\f" or row >= rows:
                pages += 1
                if pages > self.max_text_pages:
                    raise ConversionError(
                        f"{path.name!r} makes more than {self.max_text_pages} pages of text; "
                        f"split it into smaller files ({what})"
                    )
                pdf.add_page()
                row = 0
                if line == "\f":
                    continue
            if font is None:
                line = line.encode("latin-1", "replace").decode("latin-1")
            if line:
                pdf.text(56, 56 + self.font_size + row * leading, line)
            row += 1
        if pages == 0:
            pdf.add_page()
        with _replacing(out) as handle:
            pdf.output(handle)

    # ------------------------------------------------------------------ office

    def _office(self, path: Path, kind: str, out: Path, what: str) -> None:
        soffice = self.which("soffice")
        if soffice is None:
            raise ConversionError(
                f"{path.name!r} is a {kind.upper()} document and {what}; faxd converts office "
                "documents with LibreOffice, which is not installed here: install it "
                "(apt install libreoffice-writer-nogui libreoffice-calc-nogui) or save the "
                "document as PDF and drop that"
            )
        with tempfile.TemporaryDirectory(prefix="faxd-soffice-", dir=out.parent) as scratch:
            root = Path(scratch).resolve()
            (root / "home").mkdir()
            (root / "out").mkdir()
            source = root / f"document.{kind}"
            shutil.copyfile(path, source)
            command = [
                soffice,
                f"-env:UserInstallation={(root / 'profile').as_uri()}",
                "--headless",
                "--norestore",
                "--nolockcheck",
                "--convert-to",
                "pdf",
                "--outdir",
                str(root / "out"),
                str(source),
            ]
            env = {
                "HOME": str(root / "home"),
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": os.environ.get("LANG", "C.UTF-8"),
                "TMPDIR": str(root),
            }
            result = _run(command, env, self.soffice_timeout, path.name)
            made = root / "out" / "document.pdf"
            if not made.is_file() or not made.read_bytes()[:5] == b"%PDF-":
                raise ConversionError(
                    f"LibreOffice could not convert {path.name!r} to PDF (exit status "
                    f"{result.returncode}: {result.stderr.strip()[-160:]!r}); open it and save "
                    "it as PDF yourself"
                )
            os.replace(made, out)
            fsync_file(out)


def _run(
    command: list[str], env: dict[str, str], timeout: float, name: str
) -> subprocess.CompletedProcess[str]:
    """Run soffice in its own process group, killing the whole group on timeout."""
    process = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        raise ConversionError(
            f"LibreOffice took longer than {timeout:.0f} s converting {name!r} and was "
            "stopped; save the document as PDF and drop that"
        ) from None
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _flattened_frames(path: Path) -> Iterator[bytes]:
    """Each frame as a PNG img2pdf takes: alpha flattened on white, odd modes made RGB or L."""
    with Image.open(path) as image:
        for frame in ImageSequence.Iterator(image):
            if frame.mode in ("1", "L", "RGB", "CMYK"):
                plain = frame.copy()
            elif frame.mode in ("RGBA", "LA", "PA") or "transparency" in frame.info:
                rgba = frame.convert("RGBA")
                plain = Image.new("RGB", rgba.size, "white")
                plain.paste(rgba, mask=rgba.getchannel("A"))
            elif frame.mode.startswith("I"):
                plain = frame.point(lambda v: v / 256).convert("L")
            else:
                plain = frame.convert("RGB")
            buffer = io.BytesIO()
            plain.save(buffer, format="PNG", dpi=frame.info.get("dpi", (200, 200)))
            yield buffer.getvalue()


def text_encoding(path: Path, *, limit: int = 16 * 1024 * 1024) -> str:
    """``utf-8-sig`` if the file is UTF-8 (checked in pieces), else ``latin-1``.

    Only the first ``limit`` bytes are checked, so a huge file costs bounded
    time; a stray byte past them is rendered as a replacement character.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    checked = 0
    try:
        with path.open("rb") as handle:
            while checked < limit and (chunk := handle.read(_SNIFF)):
                decoder.decode(chunk)
                checked += len(chunk)
            if checked < limit:
                decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return "latin-1"
    return "utf-8-sig"


def wrapped_lines(path: Path, encoding: str, columns: int) -> Iterator[str]:
    """The file's lines, tabs expanded, control characters dropped, cut at ``columns``.

    A form feed is yielded as ``"\\f"`` on its own, meaning "new page".  Lines
    are read at most :data:`_LINE_READ` characters at a time, so a file with no
    line breaks does not have to fit in memory.
    """
    with path.open("r", encoding=encoding, errors="replace", newline=None) as handle:
        carry = ""  # the start of a line longer than one read, shorter than a row
        while raw := handle.readline(_LINE_READ):
            ended = raw.endswith("\n")
            pieces = raw.rstrip("\n").split("\f")
            for index, piece in enumerate(pieces):
                last = index == len(pieces) - 1
                if index:
                    yield "\f"
                text = "".join(ch for ch in piece.expandtabs(8) if ch.isprintable())
                if index == 0:
                    text, carry = carry + text, ""
                if not text and len(pieces) > 1 and (index == 0 or (last and ended)):
                    continue  # the form feed itself, not an empty line beside it
                while len(text) > columns:
                    yield text[:columns]
                    text = text[columns:]
                if last and not ended:
                    carry = text  # the line goes on in the next read
                else:
                    yield text
        if carry:
            yield carry


def _output_path(source: Path, workdir: Path) -> Path:
    """``workdir/<stem>.pdf`` (never the source itself); the stem is made filesystem-plain."""
    stem = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in source.stem)[:100]
    out = workdir / f"{stem or 'document'}.pdf"
    if out.exists() and out.resolve() == source.resolve():
        out = workdir / f"{stem or 'document'}-converted.pdf"
    return out


@contextlib.contextmanager
def _replacing(out: Path) -> Iterator[io.BufferedWriter]:
    """Write to a temporary file beside ``out``, fsync it, then rename it over ``out``."""
    fd, tmp = tempfile.mkstemp(prefix=".converting-", suffix=".pdf", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _write(out: Path, data: bytes) -> None:
    with _replacing(out) as handle:
        handle.write(data)


#: The converter :func:`prepare` uses: soffice found on ``PATH``.
_default = Converter()


def prepare(path: Path, accepted: frozenset[str], provider: str, workdir: Path) -> Path:
    """``path`` itself if ``provider`` takes its type (``accepted``), else a PDF in ``workdir``.

    Raises :class:`ConversionError` when neither is possible.  See
    :class:`Converter` to choose the paper size or how ``soffice`` is found.
    """
    return _default.prepare(path, accepted, provider, workdir)
