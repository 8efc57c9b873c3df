"""A private CUPS scheduler for the print tests: real ``cupsd``, real ``lp``.

The print action's promise (DESIGN invariant 1: a print counts only once CUPS
has accepted the job and named it) can only be tested against CUPS itself; a
stand-in ``lp`` shares our reading of what ``lp`` says.  :class:`PrivateCups`
starts ``cupsd`` in the foreground with its own configuration, spool, logs and
a Unix socket inside a fresh folder (no TCP port, nothing of the machine's own
CUPS touched), adds queues whose device is a file, and stops it again.

Clients reach it through ``CUPS_SERVER=<socket>`` in their environment, which
is how the print action is pointed at it.

The queues use a tiny PPD whose only filter is CUPS's own ``gziptoany`` (a
pass-through), so the bytes ``lp`` was given arrive unchanged at the device
file; CUPS 2.4 no longer runs any filter for a "raw" queue and then writes
nothing at all to a ``file:`` device.  With ``LogLevel debug`` cupsd logs the
argument vector it hands the filter chain, which is where copies (argv[4]) and
options such as ``sides`` (argv[5]) show that they reached the job.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path


def unavailable_reason() -> str | None:
    """Say why a private cupsd cannot be started on this machine (``None``: it can)."""
    missing = [tool for tool in ("cupsd", "lp", "lpadmin", "lpstat") if shutil.which(tool) is None]
    if missing:
        return (
            f"CUPS is not installed ({', '.join(missing)} missing): "
            "apt-get install cups cups-client (.ci/run does this)"
        )
    if os.geteuid() != 0:
        return "a private cupsd needs root here (it drops to the lp user for its filters)"
    return None


PPD = """*PPD-Adobe: "4.3"
*FormatVersion: "4.3"
*FileVersion: "1.0"
*LanguageVersion: English
*LanguageEncoding: ISOLatin1
*PCFileName: "FAXDTEST.PPD"
*Manufacturer: "faxd"
*Product: "(faxd test queue)"
*ModelName: "faxd test queue"
*ShortNickName: "faxd test queue"
*NickName: "faxd test queue"
*PSVersion: "(3010.000) 0"
*LanguageLevel: "3"
*ColorDevice: False
*DefaultColorSpace: Gray
*FileSystem: False
*Throughput: "1"
*cupsFilter: "application/pdf 0 gziptoany"
*cupsFilter: "image/tiff 0 gziptoany"
*OpenUI *PageSize: PickOne
*DefaultPageSize: Letter
*PageSize Letter/US Letter: ""
*PageSize A4/A4: ""
*CloseUI: *PageSize
*OpenUI *Duplex/2-Sided Printing: PickOne
*DefaultDuplex: None
*Duplex None/Off: ""
*Duplex DuplexNoTumble/Long Edge: ""
*Duplex DuplexTumble/Short Edge: ""
*CloseUI: *Duplex
"""


class PrivateCups:
    """One ``cupsd`` of our own, in a temporary folder, reached over a Unix socket."""

    def __init__(self) -> None:
        # Not under pytest's 0700 tmp tree: cupsd runs its filters as ``lp``,
        # which must be able to walk to the spool.
        # .ci/run sets the tag so that its clean-up stops only its own cupsd.
        tag = os.environ.get("FAXD_TEST_CUPS_TAG", "")
        self.root = Path(tempfile.mkdtemp(prefix=f"faxd-cups-{tag}"))
        self.root.chmod(0o755)
        self.socket = self.root / "cups.sock"
        self.devices = self.root / "devices"
        self.error_log = self.root / "log" / "error_log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def env(self) -> dict[str, str]:
        """The environment a client needs to talk to this scheduler (and only it)."""
        env = dict(os.environ)
        env["CUPS_SERVER"] = str(self.socket)
        env["LC_ALL"] = "C"
        return env

    def start(self) -> PrivateCups:
        for name in ("spool", "state", "cache", "log", "tmp", "ppd", "devices"):
            (self.root / name).mkdir()
        shutil.chown(self.root / "spool", group="lp")
        (self.root / "spool").chmod(0o710)
        shutil.chown(self.root / "tmp", user="lp", group="lp")
        (self.root / "cups-files.conf").write_text(
            f"ServerRoot {self.root}\n"
            f"RequestRoot {self.root / 'spool'}\n"
            f"StateDir {self.root / 'state'}\n"
            f"CacheDir {self.root / 'cache'}\n"
            f"TempDir {self.root / 'tmp'}\n"
            f"AccessLog {self.root / 'log' / 'access_log'}\n"
            f"ErrorLog {self.error_log}\n"
            f"PageLog {self.root / 'log' / 'page_log'}\n"
            "FileDevice Yes\n"
            "User lp\nGroup lp\nSystemGroup root\n"
        )
        (self.root / "cupsd.conf").write_text(
            "LogLevel debug\n"
            f"Listen {self.socket}\n"
            f"Printcap {self.root / 'printcap'}\n"
            "Browsing No\nWebInterface No\nDefaultAuthType None\n"
            "PreserveJobHistory Yes\n"
            "<Location />\n  Order allow,deny\n  Allow all\n</Location>\n"
            "<Policy default>\n  <Limit All>\n    Order deny,allow\n  </Limit>\n</Policy>\n"
        )
        (self.root / "faxtest.ppd").write_text(PPD)
        self._process = subprocess.Popen(
            [
                "cupsd", "-f",
                "-c", str(self.root / "cupsd.conf"),
                "-s", str(self.root / "cups-files.conf"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        self._wait_until_answering()
        return self

    def _wait_until_answering(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"cupsd exited at start; see {self.error_log}")
            probe = self.run("lpstat", "-r", check=False)
            if "scheduler is running" in probe.stdout:
                return
            time.sleep(0.1)
        raise RuntimeError(f"cupsd did not answer within {timeout:g} s; see {self.error_log}")

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a CUPS client command against this scheduler."""
        return subprocess.run(
            list(argv), env=self.env, capture_output=True, text=True, check=check, timeout=60
        )

    def add_queue(self, name: str) -> Path:
        """A queue printing into a file; returns that file's path (it appears once printed)."""
        device = self.devices / name
        self.run("lpadmin", "-p", name, "-E", "-v", f"file://{device}", "-P",
                 str(self.root / "faxtest.ppd"))  # fmt: skip
        return device

    def wait_for_job(self, job_id: str, timeout: float = 60.0) -> None:
        """Wait until CUPS lists ``job_id`` as completed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.run("lpstat", "-W", "completed", "-o", check=False).stdout
            if re.search(rf"^{re.escape(job_id)}\s", done, re.MULTILINE):
                return
            time.sleep(0.1)
        raise AssertionError(f"CUPS job {job_id} did not complete within {timeout:g} s")

    def job_argv(self, job_id: str) -> dict[int, str]:
        """The argument vector cupsd handed the filter chain for ``job_id``, from its log."""
        number = job_id.rsplit("-", 1)[1]
        pattern = re.compile(rf"\[Job {number}\] argv\[(\d)\]=\"(.*)\"$")
        argv: dict[int, str] = {}
        for line in self.error_log.read_text(errors="replace").splitlines():
            found = pattern.search(line)
            if found:
                argv[int(found.group(1))] = found.group(2)
        return argv

    def stop(self) -> None:
        """Stop cupsd (whatever state the tests left it in) and remove its folder."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=30)
        self._process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def stop_scheduler_only(self) -> None:
        """Stop cupsd but keep its folder, as when CUPS is down on a server."""
        if self._process is not None:
            self._process.send_signal(signal.SIGTERM)
            self._process.wait(timeout=30)
        self._process = None
