"""Deliver a fax by printing it with CUPS ``lp``.

A print counts as delivered only when ``lp`` exits 0 *and* names the job it
queued (``request id is sales-laser-42 (1 file(s))``): that job id is the proof
CUPS accepted the file (DESIGN invariant 1), and it is what the ledger records.
``lp`` is run without a shell, with a time limit, and looked up on ``PATH``
unless the action's ``command`` names another program.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping

from faxd.actions.base import Deliverable, run_program
from faxd.config import PrintSpec
from faxd.errors import DeliveryError
from faxd.redact import summarize_body

#: Seconds ``lp`` may take to hand the file to CUPS.
LP_TIMEOUT = 120.0

_JOB_ID = re.compile(r"request id is (?P<job>\S+-\d+)")


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
        cid = item.facts.cid or "unknown caller"
        argv += ["-t", f"Fax {item.facts.recvid} from {cid}", str(item.path)]
        return argv

    def deliver(self, item: Deliverable) -> str:
        """Queue the fax with ``lp``; return the CUPS job id."""
        command = self.spec.command
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
                f"{result.returncode}): {summarize_body(result.stderr) or 'no message'}",
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
