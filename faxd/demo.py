"""``faxd demo``: the whole daemon against built-in provider simulators, for a newcomer.

No account, no printer, no root: the demo starts a provider's simulator (FAXAGE
by default; ``--provider`` picks VoIP.ms, iFax, faxnummer.de, or ``all``:
FAXAGE and VoIP.ms receiving while faxnummer.de sends, as an office moving its
numbers would run) with a dozen faxes waiting on three numbers, writes a config
into a folder of its own (two routes to folders, one to a stand-in printer that
saves what it prints, and an outbox), runs the very same
:class:`~faxd.daemon.Daemon` as ``faxd run`` with short intervals, drops two
documents into the outbox, and narrates what happens from the database as it
happens.  It stops by itself after about 20 seconds (``--keep``: at Ctrl-C),
prints what ``faxd status``, ``faxd inbox`` and ``faxd jobs`` show, and leaves
the folder to look at.

:func:`write_config` is also what the daemon's and CLI's tests use to get a
realistic config pointed at a simulator.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from faxd.config import Config

DEMO_USER, DEMO_COMPANY, DEMO_PASSWORD = "demo", "12345", "demo-password"
SALES, SUPPORT, FRONT_DESK = "3035550101", "3035550102", "3035550103"
#: The two documents dropped into the outbox (relative path, title).
OUTBOX_FILES = (
    ("3035551212 - Acme Corp.pdf", "Quote for Acme Corp"),
    ("3035559876/price list.pdf", "Price list"),
)

_PRINTER_SCRIPT = '''#!{python}
"""Stand-in for CUPS lp in the faxd demo: "prints" by copying into printed/."""
import pathlib, shutil, sys
args, printer, source = sys.argv[1:], "printer", None
while args:
    arg = args.pop(0)
    if arg in ("-d", "-n", "-o", "-t"):
        value = args.pop(0)
        printer = value if arg == "-d" else printer
    else:
        source = pathlib.Path(arg)
folder = pathlib.Path({printed!r})
folder.mkdir(parents=True, exist_ok=True)
count = len(list(folder.iterdir())) + 1
shutil.copyfile(source, folder / source.name)
print(f"request id is {{printer}}-{{count}} (1 file(s))")
'''

DEFAULT_ROUTES = f'''
[[routes]]
name = "sales"
dnis = ["{SALES}"]
actions = [{{ type = "folder", path = "faxes/sales/{{recvid}}.{{ext}}" }}]

[[routes]]
name = "support"
dnis = ["{SUPPORT}"]
actions = [{{ type = "folder", path = "faxes/support/{{received:%Y-%m-%d}}/{{recvid}}.{{ext}}" }}]

[[routes]]
name = "front-desk"
dnis = ["{FRONT_DESK}"]
actions = [{{ type = "print", printer = "front-desk", command = "PRINTER" }}]

[[routes]]
name = "default"
actions = [{{ type = "folder", path = "faxes/other/{{recvid}}.{{ext}}" }}]
'''


#: The same routes for the other providers' demos: ``{provider}`` in the folder
#: templates shows which provider each fax came from.
PROVIDER_ROUTES = DEFAULT_ROUTES.replace('path = "faxes/', 'path = "faxes/{provider}/')


@dataclass(frozen=True)
class DemoPlan:
    """Which providers receive and which one sends in one ``--provider`` choice."""

    receivers: tuple[str, ...]
    sender: str

    @property
    def providers(self) -> tuple[str, ...]:
        """Every provider whose simulator runs, receivers first."""
        return (*self.receivers, *(() if self.sender in self.receivers else (self.sender,)))


#: ``faxd demo --provider NAME``: the choices and what each one runs.
PLANS: dict[str, DemoPlan] = {
    "faxage": DemoPlan(("faxage",), "faxage"),
    "voipms": DemoPlan(("voipms",), "voipms"),
    "ifax": DemoPlan(("ifax",), "ifax"),
    "faxnummer": DemoPlan((), "faxnummer"),
    "all": DemoPlan(("faxage", "voipms"), "faxnummer"),
}
#: Seconds between polls (and job status checks) when a provider in the demo is not pushed.
POLL_DEMO_INTERVAL = 1.0


@dataclass(frozen=True)
class DemoLayout:
    """The folders of one demo (or test) installation under ``root``."""

    root: Path
    config: Path = field(init=False)
    outbox: Path = field(init=False)
    sent: Path = field(init=False)
    failed: Path = field(init=False)
    printed: Path = field(init=False)
    printer: Path = field(init=False)

    def __post_init__(self) -> None:
        for name, relative in (
            ("config", "faxd.toml"), ("outbox", "outbox"), ("sent", "sent"),
            ("failed", "failed"), ("printed", "printed"), ("printer", "bin/lp"),
        ):
            object.__setattr__(self, name, self.root / relative)


def write_config(
    layout: DemoLayout,
    *,
    base_url: str | None,
    username: str = DEMO_USER,
    company: str = DEMO_COMPANY,
    password: str = DEMO_PASSWORD,
    interval: float = 2.0,
    routes: str = DEFAULT_ROUTES,
    extra_inbound: str = "",
    extra: str = "",
    sections: str = "",
) -> Path:
    """Write ``faxd.toml`` (mode 0600: it holds a password) and the stand-in printer.

    ``base_url=None`` leaves ``[faxage]`` out; ``sections`` adds provider
    sections (those :mod:`faxd.sim.kits` writes).
    """
    faxage = "" if base_url is None else f'''[faxage]
username = "{username}"
company = "{company}"
password = "{password}"
base_url = "{base_url}"
timeout = 10
'''
    layout.root.mkdir(parents=True, exist_ok=True)
    layout.printer.parent.mkdir(parents=True, exist_ok=True)
    layout.printer.write_text(
        _PRINTER_SCRIPT.format(python=sys.executable, printed=str(layout.printed))
    )
    layout.printer.chmod(0o755)
    text = f'''# faxd demo configuration: see `faxd check-config --config {layout.config}`
{faxage}{sections}
[database]
url = "sqlite:///{layout.root / 'state' / 'faxd.db'}"

[inbound]
poll_interval = {interval}
sweep_interval = {interval * 15}
spool_dir = "{layout.root / 'state' / 'spool'}"
backoff_base = 1
backoff_max = 5
{extra_inbound}
{routes.replace('"PRINTER"', f'"{layout.printer}"')}
[outbound]
hot_folder = "{layout.outbox}"
sent_folder = "{layout.sent}"
failed_folder = "{layout.failed}"
spool_dir = "{layout.root / 'state' / 'outbound'}"
settle_seconds = 1
status_interval = {interval}
{extra}'''
    fd = os.open(layout.config, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    layout.config.chmod(0o600)
    return layout.config


def drop_outbox_files(layout: DemoLayout) -> list[Path]:
    """Put the demo's two documents in the outbox the way a person would (atomically)."""
    from faxd.sim.documents import make_pdf

    dropped = []
    for relative, title in OUTBOX_FILES:
        final = layout.outbox / relative
        final.parent.mkdir(parents=True, exist_ok=True)
        part = final.with_name(final.name + ".part")
        part.write_bytes(make_pdf(title, pagecount=2))
        part.rename(final)
        dropped.append(final)
    return dropped


def run_demo(
    *,
    provider: str = "faxage",
    seconds: float | None = 20.0,
    directory: Path | None = None,
    out: Callable[[str], None] = print,
) -> int:
    """Run the demo for ``provider`` (a key of :data:`PLANS`); ``seconds=None`` runs until Ctrl-C.

    Returns the exit code.
    """
    from contextlib import ExitStack

    from faxd.config import load_config
    from faxd.daemon import Daemon
    from faxd.sim.kits import KITS

    plan = PLANS[provider]
    root = (directory or Path(tempfile.mkdtemp(prefix="faxd-demo-"))).absolute()
    layout = DemoLayout(root)
    with ExitStack() as stack:
        sims = {}
        for name in plan.providers:
            sims[name] = KITS[name].start(settle_seconds=3.0)
            stack.callback(sims[name].stop)
        for name in plan.receivers:
            seed_faxes(name, sims[name], 12)
        pushed = "faxage" in plan.receivers
        # FAXAGE pushes new faxes and finished jobs, so its polls are rare; the
        # others are polled every second so the demo does not wait on them.
        interval = PUSH_DEMO_INTERVAL if plan.receivers == ("faxage",) else POLL_DEMO_INTERVAL
        http, hook = push_settings() if pushed else ("", "")
        write_config(
            layout,
            base_url=None,
            interval=interval,
            routes=DEFAULT_ROUTES if provider == "faxage" else PROVIDER_ROUTES,
            extra_inbound=(
                _toml_list("providers", plan.receivers) if plan.receivers else "enabled = false"
            ),
            extra=f'provider = "{plan.sender}"\n{http}',
            sections="\n".join(KITS[name].section(sims[name]) for name in plan.providers),
        )
        if pushed:
            sims["faxage"].push_url = hook
        config = load_config(layout.config)
        out(f"faxd demo in {root}")
        for name in plan.providers:
            out(_introduce(name, sims[name], plan))
        daemon = Daemon(config)
        narrator = Narrator(config.database.url, root, out, released=released_phrases(config))
        timers = [threading.Timer(3.0, _drop, (layout, out))]
        timers += [
            threading.Timer(6.0, _new_fax, (name, sims[name], interval, out))
            for name in plan.receivers
        ]
        if seconds is not None:
            timers.append(threading.Timer(seconds, daemon.request_stop))
            out(f"running for {seconds:g} seconds (faxd demo --keep runs until Ctrl-C) ...")
        else:
            out("running until Ctrl-C ...")
        for timer in timers:
            timer.daemon = True
            timer.start()
        narrator.start()
        try:
            code = daemon.run()
        finally:
            for timer in timers:
                timer.cancel()
            narrator.stop()
    out("")
    out(f"stopped. Everything is still in {root}:")
    for line in tree_lines(root, skip={"state", "bin"}):
        out("  " + line)
    for command in ("status", "inbox", "jobs"):
        out("")
        out(f"$ faxd {command} --config {layout.config}")
        out(cli_output(command, layout.config))
    return code


#: The demo's poll and status intervals: long, as push does the work.
PUSH_DEMO_INTERVAL = 60.0


def seed_faxes(provider: str, sim: Any, count: int) -> None:
    """``count`` faxes waiting at ``provider`` for sales, support and the front desk."""
    lines = (SALES, SUPPORT, FRONT_DESK)
    # iFax writes its numbers in E.164; the others as 10 digits.
    sim.seed_inbound(count, dnis=tuple("+1" + n for n in lines) if provider == "ifax" else lines)


def _toml_list(key: str, names: tuple[str, ...]) -> str:
    import json

    return f"{key} = {json.dumps(list(names))}"  # a JSON list of plain names is TOML too


def _introduce(name: str, sim: Any, plan: DemoPlan) -> str:
    from faxd.sim.kits import KITS

    label = KITS[name].label
    does = []
    if name in plan.receivers:
        does.append(
            f"12 faxes waiting for sales {_fmt(SALES)}, support {_fmt(SUPPORT)} "
            f"and the front desk {_fmt(FRONT_DESK)}"
        )
    if name == plan.sender:
        does.append("sends the outbox")
    line = f"{label} simulator at {sim.base_url}: {' and '.join(does)}"
    if not KITS[name].receives:
        line += f" ({label} cannot receive faxes: its API has no receive functions, " \
            "so this demo shows it only sending)"
    return line


def released_phrases(config: Config) -> dict[str, str]:
    """What happens on each configured receiving provider once a fax is delivered."""
    phrases = {}
    if config.faxage is not None:
        kept = not config.inbound.delete_after_delivery
        phrases["faxage"] = "kept on FAXAGE" if kept else "deleted on FAXAGE"
    if config.voipms is not None:
        phrases["voipms"] = {
            "delete": "deleted on VoIP.ms",
            "move": f"moved to {config.voipms.archive_folder} on VoIP.ms",
        }.get(config.voipms.after_delivery, "kept on VoIP.ms")
    if config.ifax is not None:
        phrases["ifax"] = "kept on iFax, which has no delete; faxd remembers it took it"
    return phrases


def cli_output(command: str, config: Path) -> str:
    """What ``faxd COMMAND --config CONFIG`` prints, for the demo's closing view."""
    import contextlib
    import io

    from faxd.cli import main

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        main([command, "--config", str(config)])
    return buffer.getvalue().rstrip("\n")


def push_settings() -> tuple[str, str]:
    """An ``[http]`` section on a free loopback port, and the hook URL it serves."""
    import secrets
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    token = secrets.token_hex(16)
    url = f"http://127.0.0.1:{port}"
    section = f'\n[http]\nlisten = "127.0.0.1:{port}"\npublic_url = "{url}"\ntoken = "{token}"\n'
    return section, f"{url}/hook/{token}/faxage"


def _new_fax(provider: str, sim: Any, interval: float, out: Callable[[str], None]) -> None:
    """One more fax for sales, mid-run: FAXAGE pushes it, the others are found by a poll."""
    if provider == "faxage":
        fax = sim.add_fax(SALES, "(720)555-0142", pagecount=2)
        due = " (no poll due)" if interval >= PUSH_DEMO_INTERVAL else ""
        out(f"a new fax {fax.recvid} arrives for sales; FAXAGE pushes it to faxd{due}")
        return
    if provider == "voipms":
        fax = sim.add_fax(SALES, "7205550142", pages=2)
        label = "VoIP.ms"
    else:
        (fax,) = sim.seed_inbound(1, dnis=("+1" + SALES,), cid="+17205550142")
        label = "iFax"
    out(f"a new fax {fax.remote_id} arrives for sales on {label}; "
        f"faxd's next poll (every {interval:g} s) finds it")


def _drop(layout: DemoLayout, out: Callable[[str], None]) -> None:
    for path in drop_outbox_files(layout):
        out(f"dropped {path.relative_to(layout.outbox)} into the outbox")


def _fmt(number: str) -> str:
    from faxd.phone import format_number

    return format_number(number)


class Narrator:
    """Reads the database every half second and says what changed, in plain words."""

    def __init__(
        self,
        url: str,
        root: Path,
        out: Callable[[str], None],
        *,
        released: dict[str, str] | None = None,
    ) -> None:
        from faxd.store.db import Database

        self.db = Database(url)
        self.db.upgrade()  # the daemon does it too; the narrator may look first
        self.root = root
        self.out = out
        #: By provider: what became of a delivered fax there ("deleted on FAXAGE").
        self.released = released or {"faxage": "deleted on FAXAGE"}
        self.seen: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="faxd-demo-narrator", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.look()  # the last changes before the stop
        self.db.dispose()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            try:
                self.look()
            except Exception as exc:  # narration must never stop the demo
                self.out(f"(the demo could not read the database just now: {exc})")

    def look(self) -> None:
        """Print one line for every fax or job whose state changed since last time."""
        from sqlalchemy import select
        from sqlalchemy.orm import selectinload

        from faxd.store.models import InboundFax, OutboundJob

        with self.db.session() as session:
            faxes = session.scalars(
                select(InboundFax).options(selectinload(InboundFax.deliveries))
            ).all()
            jobs = session.scalars(select(OutboundJob)).all()
            for fax in faxes:
                key = f"fax:{fax.provider}:{fax.remote_id}"
                self._say(key, fax.state, partial(self._fax_line, fax))
            for job in jobs:
                self._say(f"job:{job.id}", job.state, partial(self._job_line, job))

    def _say(self, key: str, state: str, line: Callable[[], str | None]) -> None:
        if self.seen.get(key) == state:
            return
        self.seen[key] = state
        text = line()
        if text:
            self.out(text)

    def _fax_line(self, fax: Any) -> str | None:
        from faxd.outbound.numbers import label

        source = "" if len(self.released) == 1 else f"{label(fax.provider)} "
        caller = _fmt(fax.cid) if fax.cid else "an unknown caller"
        head = f"{source}fax {fax.remote_id} from {caller}"
        if fax.state == "done":
            places = [self._place(d.action_type, d.detail) for d in fax.deliveries]
            released = self.released.get(fax.provider, f"released on {label(fax.provider)}")
            return f"{head} -> {', '.join(places) or fax.route} ({released})"
        if fax.state == "failed":
            return f"{head} FAILED: {fax.last_error}"
        if fax.state == "held":
            return f"{head} held: {fax.last_error}"
        return None

    def _place(self, kind: str, detail: str | None) -> str:
        if kind == "print":
            return f"printed ({detail})"
        if detail and detail.startswith(str(self.root)):
            return os.path.relpath(detail, self.root)
        return detail or kind

    def _job_line(self, job: Any) -> str | None:
        from faxd.outbound.numbers import label

        head = f"outbound {job.source_relpath or job.source_name} -> {_fmt(job.faxno)}"
        if job.state == "queued":
            return f"{head}: queued as job {job.id}"
        if job.state == "submitted" and job.remote_jobid is None:
            return f"{head}: handed to {label(job.provider)}, which returns no job id yet"
        if job.state == "submitted":
            return f"{head}: handed to {label(job.provider)} (job {job.remote_jobid})"
        if job.state == "sent":
            return f"{head}: sent, file moved to sent/"
        if job.state == "failed":
            return f"{head}: failed ({job.last_error}), file moved to failed/"
        return None


def tree_lines(root: Path, *, skip: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """An indented listing of the files under ``root`` (folders first, sorted)."""
    lines: list[str] = []

    def walk(folder: Path, depth: int) -> None:
        entries = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
        for entry in entries:
            if depth == 0 and entry.name in skip:
                continue
            if entry.is_dir():
                lines.append("    " * depth + entry.name + "/")
                walk(entry, depth + 1)
            else:
                lines.append("    " * depth + entry.name)

    walk(root, 0)
    return lines
