"""Conversions end to end: files dropped in the real hot folder reach faxnummer.de as PDF.

faxnummer.de takes PDF only.  The outbox runs for real (inotify watcher,
intake, submitter, follow-up) against the faxnummer.de simulator over HTTP:
a PNG, a multi-page TIFF and a text file arrive there as PDFs; an office
document goes through LibreOffice when it is installed and is refused at
intake (reason file, never queued) when the lookup finds none; a file faxd can
neither send nor convert is refused at intake with a reason naming the
provider and what it takes.
"""

from __future__ import annotations

import re
import shutil
import time
from collections.abc import Callable, Iterator
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from test_convert import docx

from faxd.cli import main
from faxd.config import OutboundSettings
from faxd.config.model import FaxnummerSettings
from faxd.demo import DemoLayout, write_config
from faxd.outbound.accepted import Acceptance
from faxd.outbound.service import Outbound
from faxd.providers.faxnummer.client import FaxnummerClient
from faxd.providers.faxnummer.provider import CAPABILITIES, FaxnummerOutbound
from faxd.providers.faxnummer.sim import FaxnummerSimulator
from faxd.sim.kits import KITS
from faxd.store.models import OutboundJob


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


@pytest.fixture
def fxn() -> Iterator[FaxnummerSimulator]:
    sim = FaxnummerSimulator(settle_seconds=0.5).start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def outbox(
    fxn: FaxnummerSimulator, make_settings: Callable[..., OutboundSettings], db: Any
) -> Iterator[Callable[..., Outbound]]:
    """Start the outbox sending through faxnummer.de; ``which`` finds soffice (or not)."""
    started: list[Outbound] = []

    def build(which: Callable[[str], str | None] = shutil.which) -> Outbound:
        settings = make_settings(status_interval=0.5)
        client = FaxnummerClient(
            FaxnummerSettings(
                product_login=fxn.login,
                product_code=fxn.code,
                base_url=fxn.base_url,
                source="+49 30 1234567",
                sender="faxd test",
                status_email="fax@example.com",
                timeout=10.0,
            ),
            retries=0,
        )
        provider = FaxnummerOutbound(client)
        accepts = Acceptance(provider.name, CAPABILITIES.send_types, which)
        service = Outbound(settings, db, provider, accepts=accepts)
        service.start()
        started.append(service)
        return service

    yield build
    for service in started:
        service.stop()


def drop(folders: Any, name: str, data: bytes) -> None:
    """Write the file under a name the outbox ignores, then give it its name."""
    part = folders.hot / f"{name}.part"
    part.write_bytes(data)
    part.rename(folders.hot / name)


def run_passes(service: Outbound, until: Callable[[], bool]) -> None:
    """Submit and follow up (what the daemon schedules) until ``until`` holds."""
    deadline = time.monotonic() + 60
    while not until():
        assert time.monotonic() < deadline, "the outbox did not get there in time"
        service.submit_pending()
        service.follow_up()
        time.sleep(0.2)


def pdf_pages(data: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page[^s]", data))


def png_bytes() -> bytes:
    buffer = BytesIO()
    Image.new("RGB", (320, 240), "white").save(buffer, format="PNG")
    return buffer.getvalue()


def tiff_bytes(pages: int) -> bytes:
    frames = [Image.new("L", (200, 280), shade) for shade in (0, 128, 255)][:pages]
    buffer = BytesIO()
    frames[0].save(buffer, format="TIFF", save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def sent_to(fxn: FaxnummerSimulator, digits: str) -> list[bytes]:
    return [job.data for job in list(fxn.jobs) if job.number.endswith(digits)]


def test_image_tiff_and_text_arrive_as_pdf(
    fxn: FaxnummerSimulator, outbox: Callable[..., Outbound], folders: Any
) -> None:
    service = outbox()
    drop(folders, "3035550101 scan.png", png_bytes())
    drop(folders, "3035550102 pages.tif", tiff_bytes(3))
    drop(folders, "3035550103 memo.txt", b"Dear Sir,\nplease find the order.\n")
    run_passes(service, lambda: len(list(folders.sent.glob("*.pdf"))) == 3)
    png, tif, txt = (sent_to(fxn, f"355501{n}") for n in ("01", "02", "03"))
    for data in (png, tif, txt):
        assert len(data) == 1 and data[0].startswith(b"%PDF-")
    assert pdf_pages(tif[0]) == 3  # every page of the TIFF
    assert pdf_pages(png[0]) == pdf_pages(txt[0]) == 1
    assert not list(folders.failed.iterdir())
    with service.db.session() as session:
        names = sorted(job.source_name for job in session.query(OutboundJob))
    assert names == ["3035550101 scan.pdf", "3035550102 pages.pdf", "3035550103 memo.pdf"]


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) not installed")
def test_office_document_goes_through_libreoffice(
    fxn: FaxnummerSimulator, outbox: Callable[..., Outbound], folders: Any, tmp_path: Path
) -> None:
    service = outbox()
    source = docx(tmp_path, "letter.docx")
    drop(folders, "3035550104 letter.docx", source.read_bytes())
    run_passes(service, lambda: any(folders.sent.glob("*.pdf")))
    (data,) = sent_to(fxn, "3035550104")
    assert data.startswith(b"%PDF-")
    assert not list(folders.failed.iterdir())


def test_office_document_without_libreoffice_is_refused_at_intake(
    fxn: FaxnummerSimulator, outbox: Callable[..., Outbound], folders: Any, tmp_path: Path
) -> None:
    outbox(which=lambda _name: None)
    drop(folders, "3035550105 letter.docx", docx(tmp_path, "letter.docx").read_bytes())
    reason_file = folders.failed / "3035550105 letter.docx.txt"
    wait_until(reason_file.exists)
    reason = reason_file.read_text()
    assert "LibreOffice is not installed" in reason
    assert "faxnummer.de takes pdf" in reason and "save it as PDF" in reason
    assert (folders.failed / "3035550105 letter.docx").exists()
    assert not list(folders.spool.glob("*")) and not fxn.jobs


@pytest.mark.parametrize("name", ["3035550106 setup.exe", "3035550107 photos.zip"])
def test_unconvertible_file_is_refused_at_intake(
    fxn: FaxnummerSimulator, outbox: Callable[..., Outbound], folders: Any, name: str
) -> None:
    outbox()
    drop(folders, name, b"PK\x03\x04 not a document")
    reason_file = folders.failed / f"{name}.txt"
    wait_until(reason_file.exists)
    reason = reason_file.read_text()
    ext = name.rsplit(".", 1)[1]
    assert f".{ext} files are not supported; faxnummer.de takes pdf, and faxd converts" in reason
    assert "save it as PDF" in reason
    assert not list(folders.spool.glob("*")) and not fxn.jobs


def test_faxd_send_checks_what_the_sending_provider_takes(
    fxn: FaxnummerSimulator, sim: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``faxd send`` takes what faxnummer.de takes or faxd converts, and refuses the rest."""
    layout = DemoLayout(tmp_path / "site")
    config = write_config(
        layout, base_url=sim.base_url, username=sim.username, company=sim.company,
        password=sim.password,
    )  # fmt: skip
    text = config.read_text().replace("[outbound]", '[outbound]\nprovider = "faxnummer"')
    config.write_text(text + "\n" + KITS["faxnummer"].section(fxn))
    assert main(["db", "upgrade", "--config", str(config)]) == 0
    scan = tmp_path / "scan.png"
    scan.write_bytes(png_bytes())
    archive = tmp_path / "photos.zip"
    archive.write_bytes(b"PK\x03\x04 not a document")
    capsys.readouterr()
    assert main(["send", str(archive), "--to", "3035550108", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert "photos.zip" in err and "faxnummer.de takes pdf" in err
    assert main(["send", str(scan), "--to", "3035550108", "--config", str(config)]) == 0
    assert "scan.png -> (303) 555-0108 queued" in capsys.readouterr().out
