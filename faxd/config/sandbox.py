"""Which folders the systemd unit lets faxd write, read from the unit file.

The unit runs faxd with ``ProtectSystem=strict``: the whole file system is
read-only to it except its state directory and the ``ReadWritePaths=``.  A
delivery folder elsewhere (under ``~``, on another share) would fail only
when the first fax arrives (issue 10, finding 8).  So the loader reads the
unit, the same way systemd would (the unit file, then its drop-ins, e.g. what
``systemctl edit faxd`` wrote), and checks every folder faxd must write:
running under systemd it refuses the config, otherwise (``check-config`` by
an admin, ``faxd run --once`` from a shell) it warns, since the unit does not
apply there.

The model follows systemd's mount namespace: each rule is a path and whether
it is writable, and the longest rule that contains a folder decides.  The
unit is found through :class:`UnitSource`; tests and unusual installs give it
a file (``$FAXD_UNIT_FILE``) instead of the systemd search path.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Where systemd looks for a system unit, highest precedence first.
UNIT_DIRS = (
    Path("/etc/systemd/system"),
    Path("/run/systemd/system"),
    Path("/usr/local/lib/systemd/system"),
    Path("/usr/lib/systemd/system"),
    Path("/lib/systemd/system"),
)
UNIT_NAME = "faxd.service"
#: Environment variable naming the unit file to read instead of searching.
UNIT_FILE_ENV = "FAXD_UNIT_FILE"
_PROTECTED = {
    "yes": ("/usr", "/boot", "/efi"),
    "true": ("/usr", "/boot", "/efi"),
    "full": ("/usr", "/boot", "/efi", "/etc"),
}
_DIRECTORY_BASES = {
    "StateDirectory": "/var/lib",
    "CacheDirectory": "/var/cache",
    "LogsDirectory": "/var/log",
    "RuntimeDirectory": "/run",
}


@dataclass(frozen=True)
class Sandbox:
    """What one unit lets its service write."""

    unit: str  # a name for messages: the unit file's path
    rules: tuple[tuple[Path, bool], ...]  # (path, writable); the longest match decides
    #: The settings that made the rules, for messages (``ProtectSystem=strict`` ...).
    summary: str = ""

    def writable(self, path: Path) -> bool:
        """Whether the service may write ``path`` (links resolved where they exist)."""
        targets = {Path(os.path.normpath(path)), _real(path)}
        best: tuple[int, bool] = (-1, True)
        for rule, allowed in self.rules:
            for form in {rule, _real(rule)}:
                if any(t.is_relative_to(form) for t in targets) and len(form.parts) > best[0]:
                    best = (len(form.parts), allowed)
        return best[1]


@dataclass(frozen=True)
class UnitSource:
    """How to find the unit faxd runs under; injectable for tests.

    ``files``: read these (the unit, then drop-ins) instead of searching;
    ``env``: gives ``$INVOCATION_ID`` (set by systemd in a service) and
    ``$FAXD_UNIT_FILE``; ``cgroup``: ``/proc/self/cgroup``, which names the unit.
    """

    env: Mapping[str, str] = field(default_factory=lambda: os.environ)
    files: Sequence[Path] | None = None
    unit_dirs: Sequence[Path] = UNIT_DIRS
    cgroup: Path = Path("/proc/self/cgroup")

    @property
    def under_systemd(self) -> bool:
        """Whether this process is a systemd service (the unit's limits apply now)."""
        return bool(self.env.get("INVOCATION_ID"))

    def unit_name(self) -> str:
        """The unit this process runs as (from its cgroup), else ``faxd.service``."""
        if self.under_systemd:
            try:
                for line in self.cgroup.read_text().splitlines():
                    name = line.rsplit("/", 1)[-1]
                    if line.startswith("0::") and name.endswith(".service"):
                        return name
            except OSError:
                pass
        return UNIT_NAME

    def unit_files(self) -> list[Path]:
        """The unit file and its drop-ins, in the order systemd applies them."""
        if self.files is not None:
            return [p for p in self.files if p.is_file()]
        named = self.env.get(UNIT_FILE_ENV)
        if named:
            return [Path(named)] if Path(named).is_file() else []
        name = self.unit_name()
        names = [name]
        if "@" in name:  # an instance: its template holds the settings
            names.append(name.split("@", 1)[0] + "@.service")
        main = next(
            (d / n for n in names for d in self.unit_dirs if (d / n).is_file()),
            None,
        )
        if main is None:
            return []
        dropins: dict[str, Path] = {}
        for folder in reversed(self.unit_dirs):  # higher precedence overrides same name
            for n in names:
                d = folder / f"{n}.d"
                if d.is_dir():
                    dropins.update({p.name: p for p in d.glob("*.conf") if p.is_file()})
        return [main, *(dropins[k] for k in sorted(dropins))]

    def sandbox(self) -> Sandbox | None:
        """The unit's write rules, or ``None`` when no unit file is found or readable."""
        files = self.unit_files()
        if not files:
            return None
        try:
            texts = [f.read_text(errors="replace") for f in files]
        except OSError:
            return None
        return parse_unit(texts, name=str(files[0]))


def parse_unit(texts: Sequence[str], *, name: str) -> Sandbox:
    """The write rules of the ``[Service]`` sections of ``texts`` (unit, then drop-ins)."""
    settings: dict[str, list[str]] = {}
    for text in texts:
        for key, value in _service_lines(text):
            if value == "":  # an empty assignment resets a list setting
                settings[key] = []
            else:
                settings.setdefault(key, []).append(value)
    rules: list[tuple[Path, bool]] = []
    protect = (settings.get("ProtectSystem") or ["no"])[-1].lower()
    notes: list[str] = []
    if protect == "strict":
        rules.append((Path("/"), False))
    rules += [(Path(p), False) for p in _PROTECTED.get(protect, ())]
    if protect not in ("no", "false"):
        notes.append(f"ProtectSystem={protect}")
    home = (settings.get("ProtectHome") or ["no"])[-1].lower()
    if home in ("yes", "true", "read-only", "tmpfs"):
        rules += [(Path(p), False) for p in ("/home", "/root", "/run/user")]
        notes.append(f"ProtectHome={home}")
    if (settings.get("PrivateTmp") or ["no"])[-1].lower() in ("yes", "true"):
        # Writable, but the service's own, emptied at every stop: a fax put there
        # is lost to the office, so it counts as not writable.
        rules += [(Path("/tmp"), False), (Path("/var/tmp"), False)]  # noqa: S108
        notes.append("PrivateTmp=yes (a /tmp of its own, emptied at stop)")
    for key, base in _DIRECTORY_BASES.items():
        for value in settings.get(key, []):
            for item in _paths(value):
                rules.append((Path(base) / item.split(":", 1)[0], True))
                notes.append(f"{key}={item}")
    for key, allowed in (
        ("ReadOnlyPaths", False),
        ("InaccessiblePaths", False),
        ("ReadWritePaths", True),
    ):
        for value in settings.get(key, []):
            for item in _paths(value):
                path = item.lstrip("-+")
                if path.startswith("/") and "%" not in path:
                    rules.append((Path(os.path.normpath(path)), allowed))
                    if allowed:
                        notes.append(f"ReadWritePaths={path}")
    return Sandbox(unit=name, rules=tuple(rules), summary=", ".join(notes))


def _service_lines(text: str) -> list[tuple[str, str]]:
    """``(key, value)`` of every assignment in the ``[Service]`` section(s)."""
    found: list[tuple[str, str]] = []
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
        elif section == "Service" and "=" in line:
            key, value = line.split("=", 1)
            found.append((key.strip(), value.strip()))
    return found


def _paths(value: str) -> list[str]:
    try:
        return shlex.split(value)
    except ValueError:
        return value.split()


def _real(path: Path) -> Path:
    try:
        return Path(os.path.normpath(path.resolve()))
    except (OSError, RuntimeError):
        return Path(os.path.normpath(path))


def check_writable(
    folders: Sequence[tuple[str, Path]], source: UnitSource
) -> list[tuple[str, str]]:
    """``(key, message)`` for each folder the unit would not let faxd write."""
    sandbox = source.sandbox()
    if sandbox is None:
        return []
    found: list[tuple[str, str]] = []
    for key, folder in folders:
        if not sandbox.writable(folder):
            found.append(
                (
                    key,
                    f"{folder} is outside what the systemd unit {sandbox.unit} lets faxd "
                    f"write ({sandbox.summary or 'its defaults'}); add "
                    f"ReadWritePaths={folder} to the unit with `systemctl edit faxd` "
                    "(then systemctl restart faxd), or choose a folder under one it lists",
                )
            )
    return found
