"""Deliver a fax by running a program the operator chose (an OCR step, an upload).

The program is run without a shell, with the fax's spool folder as its working
directory and a time limit.  It learns about the fax from environment variables
rather than from text pasted into its command line, so a caller id can never
become an argument or a shell word:

``FAXD_FILE`` (absolute path of the fax file), ``FAXD_RECVID``, ``FAXD_DNIS``,
``FAXD_CID`` (empty when unavailable; both digits only, 10 for a NANP number as
before numbers became E.164), ``FAXD_DNIS_E164``, ``FAXD_CID_E164`` (``+49301234567``),
``FAXD_PAGES`` (empty when unknown),
``FAXD_RECEIVED`` (ISO 8601), ``FAXD_ROUTE``, ``FAXD_SHA256``, ``FAXD_KIND``
(``pdf`` or ``tiff``).

The file path is also passed as an argument: an ``argv`` item that is exactly
``{file}`` is replaced by it; without one, it is appended as the last argument.
The program succeeds when it exits 0; it must not delete or change the file.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping

from faxd.actions.base import Deliverable, last_line, run_program
from faxd.config import CommandSpec
from faxd.errors import ConfigError, DeliveryError
from faxd.phone import template_digits, template_e164
from faxd.redact import redact

#: The ``argv`` item replaced by the fax file's path.
FILE_PLACEHOLDER = "{file}"


class CommandAction:
    """Run ``argv`` for the fax; exit 0 means delivered."""

    type = "command"

    def __init__(self, spec: CommandSpec, *, env: Mapping[str, str] = os.environ) -> None:
        if not spec.argv:
            raise ConfigError(
                "a command action needs a non-empty argv: the program and its arguments"
            )
        self.spec = spec
        self.env = dict(env)

    @property
    def target(self) -> str:
        return f"command {self.spec.argv[0]}"

    def argv(self, item: Deliverable) -> list[str]:
        """The command line for ``item``: ``{file}`` replaced, or the path appended."""
        path = str(item.path)
        if FILE_PLACEHOLDER in self.spec.argv:
            return [path if arg == FILE_PLACEHOLDER else arg for arg in self.spec.argv]
        return [*self.spec.argv, path]

    def environment(self, item: Deliverable) -> dict[str, str]:
        """faxd's environment plus the ``FAXD_*`` variables describing ``item``."""
        facts = item.facts
        return {
            **self.env,
            "FAXD_FILE": str(item.path),
            "FAXD_RECVID": str(facts.recvid),
            "FAXD_DNIS": template_digits(facts.dnis),  # 10 digits for NANP, as before E.164
            "FAXD_CID": template_digits(facts.cid),
            "FAXD_DNIS_E164": template_e164(facts.dnis),
            "FAXD_CID_E164": template_e164(facts.cid),
            "FAXD_PAGES": "" if facts.pages is None else str(facts.pages),
            "FAXD_RECEIVED": facts.received.isoformat(),
            "FAXD_ROUTE": item.route,
            "FAXD_SHA256": item.sha256,
            "FAXD_KIND": item.kind,
        }

    def deliver(self, item: Deliverable) -> str:
        """Run the program; return ``"exit 0"``."""
        program = self.spec.argv[0]
        try:
            result = run_program(
                self.argv(item),
                timeout=self.spec.timeout,
                env=self.environment(item),
                cwd=item.path.parent,
            )
        except FileNotFoundError as exc:
            raise DeliveryError(
                f"the command {program!r} was not found (or the spool folder "
                f"{item.path.parent} is missing); install it or fix the command action's argv",
                transient=False,
            ) from exc
        except PermissionError as exc:
            raise DeliveryError(
                f"the command {program!r} cannot be run: permission denied; make it "
                "executable for the user faxd runs as",
                transient=False,
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise DeliveryError(
                f"the command {program!r} did not finish within {self.spec.timeout:g} s and "
                "was killed; make it faster or raise the action's timeout",
                transient=True,
            ) from exc
        if result.returncode != 0:
            why = last_line(redact(result.stderr)) or "no message on stderr"
            how = (
                f"exit code {result.returncode}"
                if result.returncode > 0
                else f"signal {-result.returncode}"
            )
            raise DeliveryError(
                f"the command {program!r} failed with {how}: {why}",
                transient=True,
            )
        return "exit 0"
