"""Typed, problem-collecting access to one TOML table of the config file.

A person fixing a config file wants every mistake at once, each named by file
and key, not one per restart.  So a :class:`Table` never raises: a missing,
mistyped or unknown key adds a message to the shared :class:`Problems` and the
getter hands back a default, letting the loader carry on and find the next one.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any


class Problems:
    """Every problem found in one config file, each prefixed with the file."""

    def __init__(self, file: Path) -> None:
        self.file = file
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        """Record ``message`` about the key or section ``where`` (may be empty)."""
        self.items.append(
            f"{self.file}: {where}: {message}" if where else f"{self.file}: {message}"
        )


def describe(value: object) -> str:
    """A short, type-first rendering of a wrong value for a message."""
    kinds = {
        bool: "true/false",
        int: "a whole number",
        float: "a number",
        str: "text",
        list: "a list",
        dict: "a table",
    }
    kind = kinds.get(type(value), type(value).__name__)
    shown = repr(value) if not isinstance(value, (list, dict)) else ""
    if len(shown) > 40:
        shown = shown[:37] + "..."
    return f"{kind} {shown}".strip()


def suggest(name: str, known: Iterable[str]) -> str:
    """``"; did you mean X?"`` for the closest known name, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean {close[0]}?" if close else ""


class Table:
    """One table (``[inbound]``, ``routes[2]``...) read key by key.

    ``where`` is how messages name the table: ``[inbound]`` for a section (keys
    then read ``[inbound] poll_interval``), ``routes[2]`` for an array entry
    (keys read ``routes[2].name``).  ``base`` is the directory relative paths
    are resolved against.
    """

    def __init__(self, data: Mapping[str, Any], where: str, problems: Problems, base: Path) -> None:
        self.data = data
        self.where = where
        self.problems = problems
        self.base = base
        self._read: set[str] = set()

    def key(self, name: str) -> str:
        """How messages name key ``name`` of this table."""
        return f"{self.where} {name}" if self.where.startswith("[") else f"{self.where}.{name}"

    def problem(self, name: str, message: str) -> None:
        """Record a problem with key ``name`` (``""`` for the table itself)."""
        self.problems.add(self.key(name) if name else self.where, message)

    def has(self, name: str) -> bool:
        """Whether the file sets ``name`` here."""
        return name in self.data

    def raw(self, name: str) -> Any:
        """The value as TOML gave it, marking the key as known."""
        self._read.add(name)
        return self.data.get(name)

    def finish(self, extra_known: Iterable[str] = ()) -> None:
        """Report every key of this table that no getter asked for."""
        known = self._read | set(extra_known)
        for name in self.data:
            if name not in known:
                self.problem(name, "unknown key" + suggest(name, sorted(known)))

    # -- getters: each records its own problem and returns a usable value -----------

    def text(self, name: str, *, required: bool = False, hint: str = "") -> str | None:
        """A non-empty string, or ``None`` when absent (a problem if ``required``)."""
        value = self.raw(name)
        if value is None:
            if required:
                self.problem(name, "missing" + (f"; {hint}" if hint else ""))
            return None
        if not isinstance(value, str):
            self.problem(name, f"must be text in quotes, not {describe(value)}")
            return None
        if not value.strip():
            self.problem(name, "must not be empty" + (f"; {hint}" if hint else ""))
            return None
        return value

    def boolean(self, name: str, default: bool) -> bool:
        """``true`` or ``false``."""
        value = self.raw(name)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(name, f"must be true or false, not {describe(value)}")
            return default
        return value

    def integer(
        self, name: str, default: int, *, minimum: int = 1, maximum: int | None = None
    ) -> int:
        """A whole number in ``minimum..maximum``."""
        value = self.raw(name)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            self.problem(name, f"must be a whole number, not {describe(value)}")
            return default
        if value < minimum or (maximum is not None and value > maximum):
            bound = f"from {minimum} to {maximum}" if maximum is not None else f"{minimum} or more"
            self.problem(name, f"must be {bound}, not {value}")
            return default
        return value

    def duration(self, name: str, default: float, *, allow_zero: bool = False) -> float:
        """A number of seconds (> 0, or >= 0 with ``allow_zero``)."""
        found = self.optional_duration(name, allow_zero=allow_zero)
        return default if found is None else found

    def optional_duration(self, name: str, *, allow_zero: bool = False) -> float | None:
        """A number of seconds, or ``None`` when the key is absent or wrong."""
        value = self.raw(name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.problem(name, f"must be a number of seconds (e.g. 60), not {describe(value)}")
            return None
        if value < 0 or (value == 0 and not allow_zero) or value != value or value == float("inf"):
            self.problem(name, f"must be a number of seconds above 0, not {value}")
            return None
        return float(value)

    def choice(self, name: str, choices: tuple[str, ...], default: str | None) -> str | None:
        """One of ``choices`` (compared case-insensitively)."""
        value = self.text(name)
        if value is None:
            return default
        if value.lower() not in choices:
            self.problem(
                name,
                f"{value!r} is not one of {' | '.join(choices)}" + suggest(value.lower(), choices),
            )
            return default
        return value.lower()

    def text_list(self, name: str, *, allow_int: bool = False) -> list[str] | None:
        """A list of strings (a single string counts as a list of one); ``None`` if absent."""
        value = self.raw(name)
        if value is None:
            return None
        items = [value] if isinstance(value, (str, int)) and not isinstance(value, bool) else value
        if not isinstance(items, list):
            self.problem(name, f'must be a list of text, like ["a", "b"], not {describe(value)}')
            return None
        result: list[str] = []
        for index, item in enumerate(items):
            if isinstance(item, str) or (
                allow_int and isinstance(item, int) and not isinstance(item, bool)
            ):
                result.append(str(item))
            else:
                self.problem(f"{name}[{index}]", f"must be text in quotes, not {describe(item)}")
        return result

    def path(
        self, name: str, default: Path | None = None, *, required: bool = False
    ) -> Path | None:
        """A path; a relative one is taken from the config file's directory."""
        value = self.text(name, required=required)
        if value is None:
            return default
        if "\0" in value:
            self.problem(name, "must not contain a NUL character")
            return default
        return resolve_path(value, self.base)

    def table(self, name: str) -> Table | None:
        """A sub-table, or ``None`` when absent or not a table."""
        value = self.raw(name)
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(name, f"must be a table, not {describe(value)}")
            return None
        return Table(value, f"[{name}]", self.problems, self.base)


def resolve_path(value: str, base: Path) -> Path:
    """``value`` as an absolute path: relative ones are taken from ``base``."""
    path = Path(value).expanduser() if value.startswith("~") else Path(value)
    return path if path.is_absolute() else base / path
