"""Read a POST the way FAXAGE's PHP does, and echo it back the way PHP prints it.

PHP folds ``name[]=a&name[]=b`` and ``name[0]=a&name[1]=b`` into one array and
lets a later scalar overwrite an earlier one.  ``ERR08`` answers echo the whole
POST (password included) in ``print_r`` form; faxd must redact that, so the
simulator reproduces it faithfully.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

_ARRAY_NAME = re.compile(r"\A(?P<base>[^\[\]]+)\[(?P<index>[^\[\]]*)\]\Z")


class Form:
    """The decoded fields of one POST: scalars and PHP arrays."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.scalars: dict[str, str] = {}
        self._arrays: dict[str, dict[str, str]] = {}
        for name, value in pairs:
            match = _ARRAY_NAME.match(name)
            if match is None:
                self.scalars[name] = value
                self._arrays.pop(name, None)
                continue
            base, index = match.group("base"), match.group("index")
            items = self._arrays.setdefault(base, {})
            self.scalars.pop(base, None)
            if index == "":
                numeric = [int(k) for k in items if k.lstrip("-").isdigit()]
                index = str(max(numeric) + 1 if numeric else 0)
            items[index] = value

    @classmethod
    def parse(cls, body: bytes) -> Form:
        """Decode an ``application/x-www-form-urlencoded`` body (UTF-8, lenient)."""
        text = body.decode("utf-8", errors="replace")
        return cls(parse_qsl(text, keep_blank_values=True))

    def get(self, name: str) -> str | None:
        """A scalar field, or ``None`` when it was not sent."""
        return self.scalars.get(name)

    def text(self, name: str) -> str:
        """A scalar field, stripped, ``""`` when absent."""
        return (self.scalars.get(name) or "").strip()

    def flag(self, name: str) -> bool:
        """Whether a "hard code to 1" option was sent (any value but empty or 0)."""
        value = self.text(name)
        return value not in ("", "0")

    def array(self, name: str) -> list[str]:
        """The values of ``name[]`` / ``name[n]``, in index order."""
        items = self._arrays.get(name, {})

        def order(key: str) -> tuple[int, int, str]:
            if key.lstrip("-").isdigit():
                return (0, int(key), "")
            return (1, 0, key)

        return [items[key] for key in sorted(items, key=order)]

    def has_array(self, name: str) -> bool:
        """Whether any ``name[...]`` field was sent."""
        return name in self._arrays

    def logged_fields(self) -> dict[str, str | list[str]]:
        """All fields for the request log, without the password."""
        fields: dict[str, str | list[str]] = {
            k: v for k, v in self.scalars.items() if k.lower() != "password"
        }
        for name in self._arrays:
            if name.lower() != "password":
                fields[name] = self.array(name)
        return fields

    def print_r(self) -> str:
        """The POST as PHP's ``print_r($_POST)`` writes it (what ERR08 echoes)."""
        lines = ["Array", "("]
        seen: set[str] = set()
        for name, _value in self.pairs:
            match = _ARRAY_NAME.match(name)
            base = match.group("base") if match else name
            if base in seen:
                continue
            seen.add(base)
            if base in self._arrays:
                lines.append(f"    [{base}] => Array")
                lines.append("        (")
                for key, value in self._arrays[base].items():
                    lines.append(f"            [{key}] => {value}")
                lines.append("        )")
                lines.append("")
            elif base in self.scalars:
                lines.append(f"    [{base}] => {self.scalars[base]}")
        lines.append(")")
        return "\n".join(lines) + "\n"
