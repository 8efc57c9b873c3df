"""DESIGN invariant 1 ("succeeded durably"), watched at the system-call level.

A file that was renamed into place but never fsync'd can come back empty after a
power cut, and a rename whose folder was never fsync'd can vanish; neither shows
in any test that only looks at the files afterwards.  So the real daemon
(`python -m faxd run --once`) runs under ``strace -f -y``, which prints every
fsync/fdatasync with the path of its file descriptor, directories included,
while it receives a fax from the FAXAGE simulator into a folder action and sends
a file dropped in the outbox.  The test then asks for an fsync of:

- the delivered file (its temporary name in the target folder, or its final name),
  and after it, of the target folder itself (the rename or link into place);
- the inbound spool file, and after it, of the inbound spool folder, before the
  fax is delivered;
- the outbound spool copy of the dropped file, and after it, of the outbound spool
  folder, before the dropped file leaves the outbox (else a power cut could take both)
  and before anything moves on to sent/;
- each folder a name was renamed or linked into (spool, outbound spool, delivery
  folder), after that rename or link: strace also reports renames, links and unlinks.

The transport that downloads a fax fsyncs its spool file too, so a second test
runs ``Spool.commit`` alone on a file nobody fsync'd: the spool keeps its promise
whoever wrote the file.

Matching is by path (which folder the fd lives in), not by call site or by the
shape of a temporary name, so code that writes through directory fds or copies
by fd is judged the same way.  Without strace, or where ptrace is not allowed,
the test is skipped with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from faxd.demo import DemoLayout, write_config
from faxd.sim.documents import make_pdf

DNIS = "3035550101"

# "1234  fsync(5</tmp/x/faxes/.7.pdf.faxd-1a2b>) = 0"; strace -y writes the fd's path
# between < and > (printable ASCII paths are written as they are).  When another
# thread's call comes in between, the line ends "<unfinished ...>" and a later
# "<... fsync resumed>) = 0" line holds the result: such a call is counted too.
_CALL = re.compile(
    r"^\d+\s+(?P<call>fsync|fdatasync)\(\d+<(?P<path>[^>]*)>"
    r"(\)\s*=\s*0\s*$| <unfinished \.\.\.>$)"
)
# 'rename("/a/.x.faxd-tmp", "/a/x") = 0' or 'linkat(9</a>, ".x", 9</a>, "x", 0) = 0': a
# name put in place (a call split by another thread's is counted as it starts).
_PLACE = re.compile(
    r'^\d+\s+(?:rename|link)\("[^"]*", "(?P<path>[^"]*)"'
    r'|^\d+\s+(?:renameat2?|linkat)\([^,]*, "[^"]*", (?:\d+<(?P<dir>[^>]*)>|AT_FDCWD), '
    r'"(?P<name>[^"]*)"'
)
# 'unlink("/a/x") = 0' or 'unlinkat(9</a>, "x", 0) = 0': a name removed.
_REMOVE = re.compile(
    r'^\d+\s+unlink\("(?P<path>[^"]*)"'
    r'|^\d+\s+unlinkat\((?:\d+<(?P<dir>[^>]*)>|AT_FDCWD), "(?P<name>[^"]*)"'
)
_FAILED = re.compile(r"= -1 [A-Z]+")
TRACED = "fsync,fdatasync,rename,renameat,renameat2,link,linkat,unlink,unlinkat"


@dataclass(frozen=True)
class Sync:
    """One successful fsync or fdatasync (or, in ``placed``, a rename or link that put a
    name in place): its line in the trace and the fd's path (the new name's)."""

    index: int
    path: Path


def strace_problem() -> str | None:
    """Why strace cannot watch a child here, or None when it can."""
    strace = shutil.which("strace")
    if strace is None:
        return "strace is not installed (apt-get install strace)"
    probe = subprocess.run(
        [strace, "-f", "-qq", "-e", "trace=fsync", "-o", "/dev/null", sys.executable, "-c", "0"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    if probe.returncode != 0:
        return f"strace cannot trace a child here (ptrace not permitted?): {probe.stderr.strip()}"
    return None


def traced(trace: Path, *args: str) -> None:
    """Run ``python *args`` under strace, its fsyncs, renames and links written to ``trace``."""
    done = subprocess.run(
        ["strace", "-f", "-qq", "-y", "-e", f"trace={TRACED}", "-o", str(trace),
         sys.executable, *args],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]


def read_syncs(trace: Path) -> list[Sync]:
    syncs: list[Sync] = []
    for index, line in enumerate(trace.read_text(errors="replace").splitlines()):
        match = _CALL.match(line)
        if match is not None:
            syncs.append(Sync(index, Path(match.group("path"))))
    return syncs


def read_named(trace: Path, call: re.Pattern[str]) -> list[Sync]:
    """The names ``call`` (:data:`_PLACE` or :data:`_REMOVE`) put in place or removed."""
    named: list[Sync] = []
    for index, line in enumerate(trace.read_text(errors="replace").splitlines()):
        match = call.match(line)
        if match is not None and not _FAILED.search(line):
            name = match.group("path") or match.group("name")
            named.append(Sync(index, Path(match.group("dir") or "/", name)))
    return named


def placed_then_folder(
    syncs: list[Sync], placed: list[Sync], folder: Path, what: str
) -> str | None:
    """None if every name renamed or linked into ``folder`` was followed by an fsync of it."""
    for name in (p for p in placed if p.path.parent == folder):
        if not any(s.path == folder and s.index > name.index for s in syncs):
            return f"{what}: {folder} was not fsync'd after {name.path.name} was put in it"
    return None


def file_then_folder(
    syncs: list[Sync], folder: Path, what: str, *, before: Path | None = None
) -> str | None:
    """None if a file in ``folder`` was fsync'd, then ``folder`` itself; else the problem.

    With ``before``, the folder's fsync must also come before the next fsync of that
    next folder or a file in it (the next step may not start on a name that could vanish).
    """
    files = [s for s in syncs if s.path.parent == folder]
    if not files:
        return f"{what}: no fsync of any file in {folder}"
    first = files[0]
    nexts = [s.index for s in syncs if before is not None and before in (s.path, s.path.parent)]
    limit = min((i for i in nexts if i > first.index), default=sys.maxsize)
    if not any(s.path == folder and first.index < s.index < limit for s in syncs):
        after = f" before the next step in {before}" if before is not None else ""
        return f"{what}: {folder} was not fsync'd after {first.path.name}{after}"
    return None


def copy_durable_before_source_goes(
    syncs: list[Sync], removed: list[Sync], folder: Path, source: Path, what: str
) -> str | None:
    """None if ``folder`` was fsync'd after its first file was, before ``source`` lost a name.

    Otherwise a power cut could take both the copy's name and the source.
    """
    files = [s for s in syncs if s.path.parent == folder]
    # The source leaves from where it lies when taken: the outbox, or (claimed first by
    # a rename, for several servers) its claim folder inside the outbox.
    gone = [r.index for r in removed if r.path.parent.is_relative_to(source)]
    if not files or not gone:
        return f"{what}: no fsync of a file in {folder}, or nothing removed from {source}"
    if not any(s.path == folder and files[0].index < s.index < gone[0] for s in syncs):
        return f"{what}: {folder} was not fsync'd before the source left {source}"
    return None


@pytest.mark.slow
def test_delivery_path_fsyncs_every_file_and_folder(sim: Any, tmp_path: Path) -> None:
    """A received fax and a sent file are fsync'd, and so is each folder they enter."""
    problem = strace_problem()
    if problem is not None:
        pytest.skip(problem)
    layout = DemoLayout(tmp_path / "site")
    target = layout.root / "delivered" / "sales"
    routes = (
        f'[[routes]]\nname = "sales"\ndnis = ["{DNIS}"]\n'
        f'actions = [{{ type = "folder", path = "{target}/{{recvid}}.{{ext}}" }}]\n'
    )
    config = write_config(
        layout, base_url=sim.base_url, username=sim.username, company=sim.company,
        password=sim.password, interval=1.0, routes=routes,
    )
    fax = sim.add_fax(DNIS)
    layout.outbox.mkdir(parents=True)
    part = layout.outbox / "3035551212 - Acme Corp.pdf.part"
    part.write_bytes(make_pdf("quote", pagecount=1))
    part.rename(layout.outbox / "3035551212 - Acme Corp.pdf")

    trace = tmp_path / "fsync.trace"
    traced(trace, "-m", "faxd", "run", "--once", "--config", str(config))

    # The run really delivered the fax and sent the file, so the trace covers both paths.
    delivered = target / f"{fax.recvid}.pdf"
    assert delivered.read_bytes() == fax.data
    assert [job.recipname for job in sim.jobs.values()] == ["Acme Corp"]
    syncs = read_syncs(trace)
    assert syncs, f"strace saw no fsync at all: {trace.read_text()[-2000:]}"

    state = layout.root / "state"
    problems = [
        file_then_folder(syncs, target, "delivered fax"),
        file_then_folder(syncs, state / "spool", "inbound spool", before=target),
        file_then_folder(syncs, state / "outbound", "outbound spool", before=layout.sent),
    ]
    placed = read_named(trace, _PLACE)
    for folder, what in ((target, "delivered fax"), (state / "spool", "inbound spool"),
                         (state / "outbound", "outbound spool")):
        assert any(p.path.parent == folder for p in placed), f"{what}: nothing put in {folder}"
        problems.append(placed_then_folder(syncs, placed, folder, what))
    problems.append(copy_durable_before_source_goes(
        syncs, read_named(trace, _REMOVE), state / "outbound", layout.outbox, "outbound spool"
    ))
    missing = [p for p in problems if p]
    seen = "\n".join(str(s.path) for s in syncs)
    assert not missing, "\n".join(missing) + f"\nfsync'd paths, in order:\n{seen}"


# The download's writer (each provider's transport) fsyncs the .part too, so the daemon's
# trace above cannot tell when the spool's own fsync is gone; this run has no other writer.
_COMMIT = """
import sys
from pathlib import Path
from faxd.inbound.spool import Spool
spool = Spool(Path(sys.argv[1]))
spool.ensure()
part = spool.new_part("42")
part.write_bytes(b"%PDF-1.4 written by a download that never fsyncs")
spool.commit(part, "42", "pdf")
"""


def test_spool_commit_fsyncs_a_file_whoever_wrote_it(tmp_path: Path) -> None:
    """Spool.commit fsyncs the part file itself, then the spool folder after the rename."""
    problem = strace_problem()
    if problem is not None:
        pytest.skip(problem)
    root = tmp_path / "spool"
    trace = tmp_path / "fsync.trace"
    traced(trace, "-c", _COMMIT, str(root))
    assert (root / "faxage-42.pdf").exists()
    syncs = read_syncs(trace)
    assert root / "faxage-42.part" in [s.path for s in syncs], syncs
    assert file_then_folder(syncs, root, "inbound spool") is None, syncs
    assert placed_then_folder(syncs, read_named(trace, _PLACE), root, "inbound spool") is None
