"""Templates for the paths, subjects and bodies a route writes: ``{recvid}.{ext}``.

Values in a fax's template come partly from the caller (caller id, and anything
FAXAGE passes through), so a template must never be able to run code or write
outside its folder.  Templates are parsed with :class:`string.Formatter` — never
``eval`` or ``str.format`` on arbitrary objects — and only the named fields in
:data:`TEMPLATE_FIELDS` are allowed: no positional, attribute or index access.

:func:`render_path` makes every *value* safe to be one file-name component (the
literal parts of the template keep their ``/``); :func:`render_text` is for email
subjects and bodies, with :func:`one_line` for header values.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterator, Mapping
from datetime import datetime
from string import Formatter

#: The fields a template may use, in the order messages list them.
TEMPLATE_FIELDS: tuple[str, ...] = (
    "recvid", "dnis", "cid", "pages", "ext", "route", "received", "provider",
    "dnis_e164", "cid_e164",
)  # fmt: skip

#: ``{received}`` without a format spec, in a path: sortable and free of ``:``.
DEFAULT_RECEIVED_PATH = "%Y-%m-%d %H%M%S"
#: ``{received}`` without a format spec, in a subject or body.
DEFAULT_RECEIVED_TEXT = "%Y-%m-%d %H:%M:%S"
#: The longest a single value may be once rendered into a path.
MAX_COMPONENT = 100
#: What an empty value becomes in a path.
EMPTY_VALUE = "unknown"

_SAMPLES: dict[str, object] = {
    "recvid": 12345678,
    "dnis": "3035550101",
    "cid": "3035550100",
    "pages": 3,
    "ext": "pdf",
    "route": "sales",
    "received": datetime(2024, 1, 31, 23, 59, 58),
    "provider": "faxage",
    "dnis_e164": "+13035550101",
    "cid_e164": "+13035550100",
}
_KNOWN = " ".join("{" + name + "}" for name in TEMPLATE_FIELDS)
_DOTS = re.compile(r"\.{2,}")
_LINE_BREAKS = re.compile(r"[\r\n\v\f\x85\u2028\u2029]+")


def template_problems(template: str, *, path: bool = False) -> list[str]:
    """Everything wrong with ``template``, as messages; ``[]`` when it is fine.

    With ``path=True`` a literal ``..`` component is refused too, and so is a ``/``
    inside a field's format spec (it would be replaced, not make a folder).
    """
    if not isinstance(template, str):
        return [f"must be text, not {type(template).__name__}"]
    try:
        parts = list(Formatter().parse(template))
    except ValueError as exc:
        return [
            f"bad template syntax ({exc}); write fields as {{recvid}} and a literal brace as {{{{"
        ]
    problems: list[str] = []
    literal = ""
    for text, name, spec, conversion in parts:
        literal += text
        if name is None:
            continue
        literal += "x"  # a value sits here: it cannot be (part of) a ".." component
        problem = _field_problem(name, spec or "", conversion)
        if problem:
            problems.append(problem)
        elif path and spec and ("/" in spec or "\\" in spec):
            problems.append(
                f"field {{{name}:{spec}}}: a '/' in a value becomes '_', so this would not "
                "make folders; put the '/' in the template, e.g. {received:%Y}/{received:%m}"
            )
    if path and ".." in literal.replace("\\", "/").split("/"):
        problems.append("a path template must not contain a '..' component")
    if path and "\0" in literal:
        problems.append("a path template must not contain a NUL character")
    return problems


def _field_problem(name: str, spec: str, conversion: str | None) -> str | None:
    if name == "" or name.isdigit():
        return f"positional field {{{name}}} is not allowed; use a name: {_KNOWN}"
    if "." in name or "[" in name:
        return f"field {{{name}}}: attribute and index access are not allowed; use {_KNOWN}"
    if name not in TEMPLATE_FIELDS:
        close = difflib.get_close_matches(name, TEMPLATE_FIELDS, n=1)
        hint = f"; did you mean {{{close[0]}}}?" if close else ""
        return f"unknown field {{{name}}}; known: {_KNOWN}{hint}"
    if conversion is not None:
        return f"field {{{name}!{conversion}}}: conversions (!r, !s, !a) are not allowed"
    if "{" in spec or "}" in spec:
        return f"field {{{name}}}: nested fields in a format spec are not allowed"
    try:
        _format_value(name, _SAMPLES[name], spec, DEFAULT_RECEIVED_TEXT)
    except (ValueError, TypeError) as exc:
        return f"field {{{name}:{spec}}}: bad format spec ({exc})"
    return None


def render_path(template: str, fields: Mapping[str, object]) -> str:
    """Fill a path template; each value becomes one safe file-name component.

    Raises :class:`ValueError` for a template :func:`template_problems` refuses
    and, as a last guard, for any result holding a ``..`` component.
    """
    rendered = "".join(
        text if value is None else safe_component(value)
        for text, value in _expand(template, fields, DEFAULT_RECEIVED_PATH)
    )
    if ".." in rendered.split("/"):
        raise ValueError(f"path template {template!r} produced a '..' component")
    return rendered


def render_text(template: str, fields: Mapping[str, object]) -> str:
    """Fill a subject or body template; values lose control characters only.

    Pass a subject through :func:`one_line` as well.
    """
    return "".join(
        text if value is None else _strip_controls(value, keep="\n\t")
        for text, value in _expand(template, fields, DEFAULT_RECEIVED_TEXT)
    )


def one_line(text: str) -> str:
    """``text`` folded onto one line (for an email header): CR, LF and friends become spaces."""
    return " ".join(_LINE_BREAKS.sub(" ", text).split())


#: Characters a Windows client or an SMB share cannot have in a file name.
_SHARE_UNSAFE = str.maketrans({ch: "_" for ch in '<>:"|?*'})


def safe_component(value: str) -> str:
    """``value`` made safe as one file-name component.

    No ``/`` or ``\\``, no NUL, control or invisible (bidi, zero-width) characters,
    none of the characters Windows and SMB shares refuse (``<>:"|?*``: iFax's
    ``jobId:transactionId`` would otherwise be mangled on a share), no ``..``,
    no leading dot, dash or space, at most :data:`MAX_COMPONENT` characters;
    empty -> ``unknown``.
    """
    text = _strip_controls(value, keep="")
    text = text.replace("/", "_").replace("\\", "_").translate(_SHARE_UNSAFE)
    text = _DOTS.sub(".", text)
    text = text.lstrip(".- ").strip()
    text = text[:MAX_COMPONENT].rstrip(" ")
    return text or EMPTY_VALUE


def _expand(
    template: str, fields: Mapping[str, object], received_default: str
) -> Iterator[tuple[str, str | None]]:
    """Yield (literal, None) and ("", formatted value) pieces of ``template``."""
    problems = template_problems(template)
    if problems:
        raise ValueError(f"template {template!r}: {'; '.join(problems)}")
    for text, name, spec, _conversion in Formatter().parse(template):
        if text:
            yield text, None
        if name is None:
            continue
        if name not in fields:
            raise ValueError(f"template {template!r} uses {{{name}}} but no value was given")
        value = fields[name]
        try:
            yield "", _format_value(name, value, spec or "", received_default)
        except (ValueError, TypeError):
            # e.g. {pages:03d} when FAXAGE gave no page count and pages is "unknown":
            # the fax must still be delivered, so the value is used unformatted.
            yield "", "" if value is None else str(value)


def _format_value(name: str, value: object, spec: str, received_default: str) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        local = value.astimezone() if value.tzinfo is not None else value
        return local.strftime(spec or received_default)
    if name == "received":
        raise TypeError(f"{{received}} needs a datetime, got {type(value).__name__}")
    return format(value, spec)


#: Unicode categories removed from values: controls, invisible format characters
#: (bidi overrides, zero-width), surrogates, line and paragraph separators.
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def _strip_controls(text: str, *, keep: str) -> str:
    return "".join(
        ch for ch in text if ch in keep or unicodedata.category(ch) not in _HIDDEN_CATEGORIES
    )
