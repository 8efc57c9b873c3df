"""Make a job's spool file one the provider takes, converting it to PDF when it must.

Why a step of its own: FAXAGE takes most office and image types, faxnummer.de
only PDF, VoIP.ms a handful (``Capabilities.send_types``).  The submitter calls
:func:`make_sendable` for every job before it claims it, so a file dropped in
the outbox, one queued by ``faxd send`` and one resumed after a crash all pass
the same check against the provider configured *now*.  Conversion itself is
:func:`faxd.outbound.convert.prepare` (images, text, office files through
LibreOffice); a file it cannot convert fails the job with its reason, which
names the provider and what it accepts.

Crash safety: the PDF is copied into the spool under a new name and fsync'd,
then the job row is switched to it (path, size, sha256, a ``.pdf`` name), and
only then is the original spool copy removed.  A crash before the switch
converts again at the next pass; one after it leaves at most an orphan
original in the spool, never a job without its file.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import cast

import structlog

from faxd.durable import fsync_dir
from faxd.errors import FaxdError
from faxd.outbound import files, naming
from faxd.outbound.accepted import canonical
from faxd.store.db import Database
from faxd.store.models import OutboundJob

log = structlog.get_logger(__name__)

#: ``prepare(path, accepted, provider, workdir) -> the PDF it wrote in workdir``.
Converter = Callable[[Path, frozenset[str], str, Path], Path]
#: Where converters write, inside the spool (never watched, same file system).
WORKDIR = ".convert"


def convert_with_libraries(
    path: Path, accepted: frozenset[str], provider: str, workdir: Path
) -> Path:
    """:func:`faxd.outbound.convert.prepare`, imported on first use (it pulls in img2pdf, fpdf2)."""
    module = importlib.import_module("faxd.outbound.convert")
    return cast(Path, module.prepare(path, accepted, provider, workdir))


def make_sendable(
    db: Database,
    job_id: int,
    *,
    accepted: frozenset[str],
    provider: str,
    spool_dir: Path,
    convert: Converter = convert_with_libraries,
) -> str | None:
    """Convert the job's spool file if ``accepted`` lacks its type; the reason if it cannot be.

    Returns ``None`` when the job's file is ready to send (converted or not).
    """
    with db.session() as session:
        job = session.get(OutboundJob, job_id)
        if job is None:
            return None
        spool, name = Path(job.spool_path), job.source_name
    takes = {canonical(kind) for kind in accepted}
    if canonical(naming.extension_of(spool.name)) in takes or not os.path.lexists(spool):
        return None  # taken as it is (a missing file is the submitter's to report)
    workdir = spool_dir / WORKDIR
    workdir.mkdir(mode=0o700, exist_ok=True)
    try:
        pdf = convert(spool, accepted, provider, workdir)
    except FaxdError as exc:
        return exc.message
    if pdf == spool:
        return None  # its content is a type the provider takes, whatever its name said
    try:
        pdf_name = f"{PurePath(name).stem}.pdf"
        target = spool.with_name(f"{job_id}-{pdf_name}")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)  # left by a crash before the row was switched
        fd, _st = files.open_nofollow(pdf)
        try:
            size, sha256 = files.copy_fd_to_new(fd, target)
        finally:
            os.close(fd)
        fsync_dir(spool_dir)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(pdf)
    with db.session() as session:
        job = session.get(OutboundJob, job_id)
        assert job is not None
        job.spool_path, job.size, job.sha256, job.source_name = (
            str(target),
            size,
            sha256,
            pdf_name,
        )
    if target != spool:
        spool.unlink(missing_ok=True)
        fsync_dir(spool_dir)
    log.info("outbound.converted", job_id=job_id, original=name, sent_as=pdf_name, size=size)
    return None
