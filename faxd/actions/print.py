"""Deliver a fax by printing it with CUPS ``lp``.

A print counts as delivered only when ``lp`` exits 0 *and* names the job it
queued (``request id is sales-laser-42 (1 file(s))``): that job id is the proof
CUPS accepted the file (DESIGN invariant 1), and it is what the ledger records.
``lp`` is run without a shell, with a time limit, and looked up on ``PATH``
unless the action's ``command`` names another program.

CUPS accepts a job for a *paused* (disabled) queue and just holds it, so a job
id alone would let ``delfax`` run for a fax that sits unprinted until someone
notices.  Before printing, the queue is therefore asked with ``lpstat`` (found
beside ``lp``) whether it is enabled and accepting; a paused or rejecting queue
fails the action with the command that fixes it, and the fax is kept.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from faxd.actions.base import Deliverable, run_program
from faxd.config import PrintSpec
from faxd.errors import DeliveryError
from faxd.phone import template_digits
from faxd.redact import summarize_body

#: Seconds ``lp`` may take to hand the file to CUPS.
LP_TIMEOUT = 120.0

_JOB_ID = re.compile(r"request id is (?P<job>\S+-\d+)")
_DEFAULT = re.compile(r"^system default destination: (?P<name>\S+)", re.MULTILINE)
_STATE_REASON = r"(?:[^\n]*\n\t(?P<reason>[^\n]*))?"


class PrintAction:
    """Send the fax file to a CUPS printer queue."""

    type = "print"

    def __init__(
        self, spec: PrintSpec, *, env: Mapping[str, str] = os.environ, timeout: float = LP_TIMEOUT
    ) -> None:
        self.spec = spec
        self.env = dict(env)
        self.timeout = timeout

    @property
    def target(self) -> str:
        return f"printer {self.spec.printer or '(default)'}"

    def argv(self, item: Deliverable) -> list[str]:
        """The ``lp`` command line for ``item``."""
        argv = [self.spec.command]
        if self.spec.printer:
            argv += ["-d", self.spec.printer]
        argv += ["-n", str(self.spec.copies)]
        for option in self.spec.options:
            argv += ["-o", option]
        cid = template_digits(item.facts.cid) or "unknown caller"  # as {cid} shows it
        argv += ["-t", f"Fax {item.facts.recvid} from {cid}", str(item.path)]
        return argv

    def deliver(self, item: Deliverable) -> str:
        """Queue the fax with ``lp``; return the CUPS job id."""
        command = self.spec.command
        problem = self.queue_problem()
        if problem is not None:
            raise DeliveryError(problem, transient=True)
        try:
            result = run_program(self.argv(item), timeout=self.timeout, env=self.env)
        except FileNotFoundError as exc:
            raise DeliveryError(
                f"cannot print: the command {command!r} was not found; install cups-client "
                "(it provides lp) or set `command` in the print action",
                transient=False,
            ) from exc
        except PermissionError as exc:
            raise DeliveryError(
                f"cannot print: the command {command!r} is not executable; fix its "
                "permissions or set `command` in the print action",
                transient=False,
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise DeliveryError(
                f"{command} did not finish within {self.timeout:g} s for printer "
                f"{self.spec.printer!r}; is CUPS running?",
                transient=True,
            ) from exc
        if result.returncode != 0:
            raise DeliveryError(
                f"{command} failed for printer {self.spec.printer!r} (exit "
                f"{result.returncode}): {summarize_body(result.stderr) or 'no message'}; "
                "check that CUPS is running (lpstat -r) and the queue exists (lpstat -p)",
                transient=True,
            )
        found = _JOB_ID.search(result.stdout)
        if found is None:
            raise DeliveryError(
                f"{command} exited 0 but did not report a job id for printer "
                f"{self.spec.printer!r} (output: {summarize_body(result.stdout) or 'none'}); "
                "check the printer queue with lpstat",
                transient=True,
            )
        return found.group("job")

    def queue_problem(self) -> str | None:
        """Why CUPS would hold or refuse a job for this queue now, or ``None``.

        Asks ``lpstat`` beside ``lp``.  Anything it cannot answer (no
        ``lpstat``, an unknown queue, CUPS down) is left for ``lp`` itself to
        report, so this check never fails a print that ``lp`` would accept.
        """
        lpstat = self._lpstat()
        if lpstat is None:
            return None
        env = {**self.env, "LC_ALL": "C"}
        printer = self.spec.printer
        try:
            if not printer:
                answer = run_program([lpstat, "-d"], timeout=self.timeout, env=env)
                found = _DEFAULT.search(answer.stdout)
                if found is None:
                    return None
                printer = found.group("name")
            answer = run_program([lpstat, "-p", printer, "-a", printer], timeout=self.timeout,
                                 env=env)  # fmt: skip
        except (OSError, subprocess.TimeoutExpired):
            return None
        name = re.escape(printer)
        paused = re.search(rf"^printer {name} disabled{_STATE_REASON}", answer.stdout, re.M)
        if paused is not None:
            return (
                f"printer {printer!r} is paused in CUPS ({_reason(paused)}); the fax is kept "
                f"and printed once it is resumed: run `cupsenable {printer}`"
            )
        refusing = re.search(rf"^{name} not accepting requests{_STATE_REASON}", answer.stdout, re.M)
        if refusing is not None:
            return (
                f"printer {printer!r} is rejecting jobs in CUPS ({_reason(refusing)}); the fax "
                f"is kept and printed once it accepts again: run `cupsaccept {printer}`"
            )
        return None

    def _lpstat(self) -> str | None:
        command = self.spec.command
        if os.sep in command:
            beside = Path(command).with_name("lpstat")
            return str(beside) if beside.is_file() else None
        return shutil.which("lpstat", path=self.env.get("PATH"))


def _reason(found: re.Match[str]) -> str:
    reason = (found.group("reason") or "").strip()
    return f"reason: {summarize_body(reason)}" if reason else "no reason given"
