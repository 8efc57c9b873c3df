"""Benchmark: a 100 000-line listfax answer, and a getfax body that does not end.

Issue 10 asks for bounded memory and short write locks on the inbound side:

- **listing**: faxd reads a ``listfax`` answer of 100 000 lines and records
  every fax (rows and cursor).  Figures: the rise of the process's peak RSS
  (``VmHWM`` after, minus ``VmRSS`` before) and the longest write transaction,
  from ``BEGIN IMMEDIATE`` to the end of its ``COMMIT``, timed with
  SQLAlchemy events (engine ``begin``, session ``after_commit``).  Targets:
  rise < 60 MB, longest transaction < 1 s.
- **getfax cap**: one fax whose body never ends (no Content-Length), taken
  by the pipeline with ``[inbound] max_fax_mb`` (200 by default).  Figures:
  the most bytes its ``.part`` file ever held (sampled every millisecond and
  read from the cap: it must not pass it), the peak RSS rise, and the fax's
  state and reason.  Targets: bytes written <= cap, no file left, fax
  ``failed`` and kept on FAXAGE, rise < 60 MB.

The FAXAGE side is a small HTTP server in a child process that writes the
answers as it goes, so its memory is not counted.  Run:
``.venv/bin/python bench/listfax_batches.py [--lines 100000] [--cap-mb 200]``.
Prints the figures and PASS/FAIL, writes ``bench/results/listfax_batches.json``.
Not a test: it measures the machine.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from benchlib import MiB, faxd_config, proc_status_kb, reset_peak_rss, verdict, write_results
from sqlalchemy import event
from sqlalchemy.orm import Session

from faxd.app import make_client, make_pipeline, open_database
from faxd.config import load_config
from faxd.store.models import InboundFax, PollCursor

RSS_LIMIT_MB = 60.0
LOCK_LIMIT_S = 1.0


# ------------------------------------------------------------------ the FAXAGE side


def _line(recvid: int) -> bytes:
    return (
        f"{recvid}\t2026-11-30 10:00:00\t2026-11-30 09:59:30\t(303) 555-0100\t"
        f"(303) 555-0101\tfax{recvid}.pdf\t2\n"
    ).encode()


def _serve(port_out: Any, lines: int) -> None:
    """Answer listfax with ``lines`` lines and getfax with a body that never ends."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"  # the body ends when the connection does

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            form = parse_qs(self.rfile.read(length).decode())
            operation = form.get("operation", [""])[0]
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            try:
                if operation == "listfax":
                    batch = bytearray()
                    for recvid in range(1, lines + 1):
                        batch += _line(recvid)
                        if len(batch) > 256 * 1024:
                            self.wfile.write(batch)
                            batch.clear()
                    self.wfile.write(batch)
                elif operation == "getfax":
                    self.wfile.write(b"%PDF-1.4\n")
                    block = b"\0" * (256 * 1024)
                    while True:  # until the client hangs up
                        self.wfile.write(block)
                else:
                    self.wfile.write(b"1 Deleted")
            except OSError:
                pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_out.send(server.server_address[1])
    server.serve_forever()


@contextmanager
def faxage(lines: int) -> Iterator[str]:
    """The answering server in a child process; its base URL."""
    receive, send = multiprocessing.Pipe(duplex=False)
    child = multiprocessing.Process(target=_serve, args=(send, lines), daemon=True)
    child.start()
    try:
        yield f"http://127.0.0.1:{receive.recv()}"
    finally:
        child.terminate()
        child.join()


# ------------------------------------------------------------------ measuring


class Transactions:
    """The length of every write transaction: engine ``begin`` to session ``after_commit``."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.durations: list[float] = []
        self._started = threading.local()

    def _begin(self, _connection: Any) -> None:
        self._started.at = time.perf_counter()

    def _end(self, _session: Session) -> None:
        started = getattr(self._started, "at", None)
        if started is not None:
            self.durations.append(time.perf_counter() - started)
            self._started.at = None

    def __enter__(self) -> Transactions:
        # Registered after faxd's own listener, so it runs once BEGIN IMMEDIATE holds the lock.
        event.listen(self.engine, "begin", self._begin)
        event.listen(Session, "after_commit", self._end)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "begin", self._begin)
        event.remove(Session, "after_commit", self._end)


def rss_mb() -> float:
    return proc_status_kb("VmRSS") / 1024


def peak_mb() -> float:
    return proc_status_kb("VmHWM") / 1024


def listing(lines: int) -> dict[str, Any]:
    """Record a ``lines``-line listfax answer; memory and write-lock figures."""
    with tempfile.TemporaryDirectory(prefix="faxd-bench-") as tmp, faxage(lines) as url:
        work = Path(tmp)
        config = load_config(faxd_config(work / "faxd.toml", base_url=url, work=work))
        db = open_database(config, upgrade=True)
        client = make_client(config.require_faxage("this bench"))
        pipeline = make_pipeline(config, db, client)
        assert pipeline is not None
        pipeline.ledger.cursor()  # the cursor row exists before measuring
        reset_peak_rss()
        before = rss_mb()
        started = time.perf_counter()
        with Transactions(db.engine) as transactions:
            outcome = pipeline.list_new()
        seconds = time.perf_counter() - started
        rise = peak_mb() - before
        with db.session() as session:
            rows = session.query(InboundFax).count()
            account = config.require_faxage("this bench").account
            cursor = session.get_one(PollCursor, ("faxage", account)).cursor
        client.close()
        db.dispose()
    longest = max(transactions.durations)
    return {
        "lines": lines,
        "recorded": rows,
        "new": outcome.new,
        "cursor": cursor,
        "seconds": round(seconds, 2),
        "rss_before_mb": round(before, 1),
        "peak_rss_rise_mb": round(rise, 1),
        "transactions": len(transactions.durations),
        "longest_transaction_s": round(longest, 3),
        "passed": rows == lines
        and cursor == str(lines)
        and rise < RSS_LIMIT_MB
        and longest < LOCK_LIMIT_S,
    }


def getfax_cap(cap_mb: float) -> dict[str, Any]:
    """One fax whose body never ends, taken by the pipeline with ``max_fax_mb = cap_mb``."""
    with tempfile.TemporaryDirectory(prefix="faxd-bench-") as tmp, faxage(1) as url:
        work = Path(tmp)
        path = faxd_config(
            work / "faxd.toml", base_url=url, work=work, inbound=f"max_fax_mb = {cap_mb}"
        )
        config = load_config(path)
        db = open_database(config, upgrade=True)
        client = make_client(config.require_faxage("this bench"), retries=0)
        pipeline = make_pipeline(config, db, client)
        assert pipeline is not None
        pipeline.list_new()
        spool = config.inbound.spool_dir
        most = 0
        done = threading.Event()

        def watch() -> None:
            # Any .part file: its name is the spool's to choose (faxage-1.part today).
            nonlocal most
            while not done.is_set():
                with suppress(OSError), os.scandir(spool) as entries:
                    for entry in entries:
                        if entry.name.endswith(".part"):
                            most = max(most, entry.stat(follow_symlinks=False).st_size)
                time.sleep(0.001)

        watcher = threading.Thread(target=watch, daemon=True)
        reset_peak_rss()
        before = rss_mb()
        watcher.start()
        started = time.perf_counter()
        pipeline.process_due()
        seconds = time.perf_counter() - started
        done.set()
        watcher.join()
        rise = peak_mb() - before
        row = pipeline.ledger.get("1")
        assert row is not None
        left = sorted(p.name for p in config.inbound.spool_dir.iterdir())
        client.close()
        db.dispose()
    cap = int(cap_mb * MiB)
    return {
        "cap_bytes": cap,
        "most_bytes_on_disk": most,
        "files_left": left,
        "state": row.state.value,
        "reason": row.last_error,
        "seconds": round(seconds, 2),
        "peak_rss_rise_mb": round(rise, 1),
        # The body never ends: 0 bytes seen means the download was not watched at all.
        "passed": 0 < most <= cap
        and not left
        and row.state.value == "failed"
        and rise < RSS_LIMIT_MB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000, help="listfax lines (100000)")
    parser.add_argument("--cap-mb", type=float, default=200.0, help="[inbound] max_fax_mb (200)")
    args = parser.parse_args(argv)
    listed = listing(args.lines)
    capped = getfax_cap(args.cap_mb)
    passed = bool(listed["passed"] and capped["passed"])
    path = write_results(
        "listfax_batches",
        {"listing": listed, "getfax_cap": capped, "passed": passed},
    )
    print(
        f"listfax of {listed['lines']} lines in {listed['seconds']} s: {listed['recorded']} "
        f"recorded, cursor {listed['cursor']}; peak RSS rise {listed['peak_rss_rise_mb']} MB "
        f"(before {listed['rss_before_mb']} MB, limit {RSS_LIMIT_MB:g}); "
        f"{listed['transactions']} transactions, longest {listed['longest_transaction_s']} s "
        f"(limit {LOCK_LIMIT_S:g} s)  {verdict(listed['passed'])}"
    )
    print(
        f"getfax of an endless body, cap {capped['cap_bytes']} bytes: at most "
        f"{capped['most_bytes_on_disk']} bytes on disk, files left {capped['files_left']}, "
        f"fax {capped['state']} in {capped['seconds']} s; peak RSS rise "
        f"{capped['peak_rss_rise_mb']} MB  {verdict(capped['passed'])}"
    )
    print(f"  reason: {capped['reason']}")
    print(verdict(passed))
    print(f"wrote {path}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
