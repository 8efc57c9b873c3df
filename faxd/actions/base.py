"""What every delivery action shares: the item it delivers and the one method it has.

A route's actions (folder, print, email, command) are small strategies
(STYLE.md §8): each is built once from its config spec and has one
``deliver()`` that does the I/O and returns a short detail to record (the final
path, the lp job id, the SMTP server's answer).  Failure is always a
:class:`~faxd.errors.DeliveryError` whose ``transient`` flag tells the pipeline
whether to retry with backoff or to stop and show the fax as failed.

The two actions that run programs (print, command) share :func:`run_program`,
which bounds a child's run time and kills its whole process group on timeout,
and never hands on what leads to faxd's own secrets (DESIGN invariant 6): the
password variables (``FAXD_FAXAGE_PASSWORD``, ``FAXD_SMTP_PASSWORD``, any
``FAXD_*_PASSWORD``/``_TOKEN``/``_CODE``) and systemd's ``CREDENTIALS_DIRECTORY``,
the folder holding the credential files.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from faxd.config import ActionSpec, SmtpSettings
from faxd.config.secrets import FAXAGE_PASSWORD, SMTP_PASSWORD
from faxd.errors import ConfigError
from faxd.routing import FaxFacts

#: Environment variables that hold faxd's own secrets or say where they are: never
#: passed to a child (nor is any FAXD_* name ending in one of SECRET_ENV_SUFFIXES).
SECRET_ENV_VARS: frozenset[str] = frozenset(
    {FAXAGE_PASSWORD.env_var, SMTP_PASSWORD.env_var, "CREDENTIALS_DIRECTORY"}
)
SECRET_ENV_SUFFIXES = ("PASSWORD", "TOKEN", "CODE")


def child_environment(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` without faxd's secrets and the way to its credential files."""
    return {
        name: value
        for name, value in env.items()
        if name not in SECRET_ENV_VARS
        and not (name.startswith("FAXD_") and name.endswith(SECRET_ENV_SUFFIXES))
    }

#: MIME type for each extension.
MIME_TYPES: Mapping[str, tuple[str, str]] = {
    "pdf": ("application", "pdf"),
    "tif": ("image", "tiff"),
}


@dataclass(frozen=True)
class Deliverable:
    """A downloaded, checked fax file ready to hand to a route's actions."""

    facts: FaxFacts
    route: str
    path: Path
    sha256: str
    size: int
    kind: str

    @property
    def ext(self) -> str:
        """The extension that matches the file's content (``pdf`` or ``tif``).

        The pipeline derives ``facts.ext`` from the verified kind
        (:func:`faxd.inbound.spool.extension`), so there is one table of them.
        """
        return self.facts.ext

    def template_fields(self) -> dict[str, object]:
        """Template field values for this fax on this route."""
        return self.facts.template_fields(self.route)


class Action(Protocol):
    """One delivery step of a route."""

    @property
    def type(self) -> str:
        """The config ``type`` (``folder``, ``print``, ``email``, ``command``)."""
        ...

    @property
    def target(self) -> str:
        """Where it delivers, for people: ``folder /srv/fax/...``, ``printer sales-laser``."""
        ...

    def deliver(self, item: Deliverable) -> str:
        """Deliver ``item`` durably and return the detail to record.

        Raises :class:`~faxd.errors.DeliveryError` (``transient`` set) on failure.
        """
        ...


def build_action(
    spec: ActionSpec,
    *,
    smtp: SmtpSettings | None,
    env: Mapping[str, str] = os.environ,
) -> Action:
    """Build the action that ``spec`` describes.

    ``smtp`` is the ``[smtp]`` section (needed by email actions); ``env`` is the
    environment programs run with (``PATH`` finds ``lp`` and commands).
    """
    # Imported here because each action module imports Deliverable from this one.
    from faxd.actions.command import CommandAction
    from faxd.actions.email import EmailAction
    from faxd.actions.folder import FolderAction
    from faxd.actions.print import PrintAction
    from faxd.config import CommandSpec, EmailSpec, FolderSpec, PrintSpec

    if isinstance(spec, FolderSpec):
        return FolderAction(spec)
    if isinstance(spec, PrintSpec):
        return PrintAction(spec, env=env)
    if isinstance(spec, EmailSpec):
        if smtp is None:
            raise ConfigError(
                "an email action needs an [smtp] section (host, port, from); "
                "add one to the config file or remove the email action"
            )
        return EmailAction(spec, smtp)
    if isinstance(spec, CommandSpec):
        return CommandAction(spec, env=env)
    raise ConfigError(f"unknown action type {getattr(spec, 'type', spec)!r}")


@dataclass(frozen=True)
class ProgramResult:
    """How a program run by :func:`run_program` ended."""

    returncode: int
    stdout: str
    stderr: str


def run_program(
    argv: Sequence[str],
    *,
    timeout: float,
    env: Mapping[str, str],
    cwd: Path | None = None,
) -> ProgramResult:
    """Run ``argv`` (no shell) with no stdin and captured output, at most ``timeout`` s.

    The child gets its own process group; on timeout the whole group is killed
    (a shell script's children too) and :class:`subprocess.TimeoutExpired` is
    raised.  :func:`child_environment` of ``env`` is the child's environment.
    ``FileNotFoundError``/``PermissionError`` propagate when the program cannot
    be started.
    """
    with subprocess.Popen(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=child_environment(env),
        text=True,
        errors="replace",
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            # Reap it; bounded, as a child that left the group may hold the pipes.
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.communicate(timeout=5)
            raise
        return ProgramResult(proc.returncode, stdout, stderr)


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the process group ``proc`` leads (it was started in a new session)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def last_line(text: str, limit: int = 300) -> str:
    """The last non-empty line of ``text``, shortened to ``limit`` characters."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    line = lines[-1]
    return line if len(line) <= limit else line[:limit] + "..."
