"""Reading ``[[routes]]`` and their actions from the config file.

Routes decide where every received fax goes, so the loader checks here what it
can before the first fax arrives: numbers that are not numbers, hours that do not
parse, template fields that do not exist, an email action with no mail server, a
default route that would hide the routes after it.
"""

from __future__ import annotations

import grp
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any

from faxd.config.model import (
    ATTACHED_NOTE,
    DEFAULT_EMAIL_BODY,
    DEFAULT_EMAIL_SUBJECT,
    DEFAULT_FILE_MODE,
    ActionSpec,
    CommandSpec,
    EmailSpec,
    FolderSpec,
    PrintSpec,
    RouteSpec,
)
from faxd.config.reader import Problems, Table, describe, resolve_path, suggest
from faxd.hours import Hours
from faxd.phone import UNKNOWN_CALLER_IDS, parse_number
from faxd.providers.base import PROVIDER_NAMES
from faxd.templates import template_problems

ACTION_TYPES = ("folder", "print", "email", "command")


def read_routes(
    raw: Any, problems: Problems, base: Path, *, have_smtp: bool, country: str = "US"
) -> tuple[RouteSpec, ...]:
    """Every ``[[routes]]`` entry, in order; problems go to ``problems``.

    ``dnis`` and ``cid`` numbers become E.164, national ones read in ``country``.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, dict) for item in raw):
        problems.add("routes", "must be written as [[routes]] tables")
        return ()
    routes = [
        _read_route(Table(item, f"routes[{i}]", problems, base), have_smtp, country)
        for i, item in enumerate(raw)
    ]
    _check_names(routes, problems)
    _check_defaults(routes, problems)
    return tuple(routes)


def _read_route(table: Table, have_smtp: bool, country: str) -> RouteSpec:
    name = table.text(
        "name",
        required=True,
        hint='give the route a name = "sales"; it is stored with each fax it takes',
    )
    if name is not None and not name.isprintable():
        table.problem("name", "must not contain control characters")
    dnis = _numbers(table, "dnis", caller_id=False, country=country)
    cid = _numbers(table, "cid", caller_id=True, country=country)
    providers = _providers(table)
    hours: Hours | None = None
    spec = table.text("hours")
    if spec is not None:
        try:
            hours = Hours.parse(spec)
        except ValueError as exc:
            table.problem("hours", str(exc))
    actions = _read_actions(table, have_smtp)
    table.finish()
    return RouteSpec(
        name=(name or table.where).strip(),
        dnis=dnis,
        cid=cid,
        hours=hours,
        actions=actions,
        providers=providers,
    )


def _providers(table: Table) -> tuple[str, ...]:
    """``provider = ["voipms"]``: the providers whose faxes the route takes."""
    given = table.text_list("provider")
    if given == []:
        table.problem(
            "provider",
            "is empty, which would make this route take no fax; list provider names, "
            "or remove provider (a route without it takes faxes from every provider)",
        )
    found: list[str] = []
    for index, text in enumerate(given or []):
        name = text.strip().lower()
        if name not in PROVIDER_NAMES:
            table.problem(
                f"provider[{index}]",
                f"{text!r} is no provider faxd knows; write one of {', '.join(PROVIDER_NAMES)}",
            )
        elif name not in found:
            found.append(name)
    return tuple(found)


def _numbers(table: Table, key: str, *, caller_id: bool, country: str) -> tuple[str, ...]:
    """Match numbers as stored: E.164; for ``cid``, "Unavailable" etc. is ``""``."""
    found: list[str] = []
    given = table.text_list(key, allow_int=True)
    if given == []:
        table.problem(
            key,
            "is empty, which would make this route take every fax; list the numbers, "
            f"or remove {key} (a route with no match keys is the default route)",
        )
    for index, text in enumerate(given or []):
        if caller_id and text.strip().lower() in UNKNOWN_CALLER_IDS:
            number = ""
        else:
            try:
                number = parse_number(text, country)
            except ValueError as exc:
                table.problem(f"{key}[{index}]", str(exc))
                continue
        if number not in found:
            found.append(number)
    return tuple(found)


def _read_actions(route: Table, have_smtp: bool) -> tuple[ActionSpec, ...]:
    raw = route.raw("actions")
    if raw is None or raw == []:
        route.problem(
            "actions",
            "missing; give the route at least one action, e.g. "
            'actions = [{ type = "folder", path = "/srv/fax/{recvid}.{ext}" }]',
        )
        return ()
    if not isinstance(raw, list):
        raw = [raw]
    actions: list[ActionSpec] = []
    for index, item in enumerate(raw):
        where = route.key(f"actions[{index}]")
        if not isinstance(item, dict):
            route.problems.add(
                where, f'must be a table like {{ type = "folder", ... }}, not {describe(item)}'
            )
            continue
        table = Table(item, where, route.problems, route.base)
        action = _read_action(table, have_smtp)
        table.finish(extra_known=("type",))
        if action is not None:
            actions.append(action)
    return tuple(actions)


def _read_action(table: Table, have_smtp: bool) -> ActionSpec | None:
    kind = table.text("type", required=True, hint=f"one of {' | '.join(ACTION_TYPES)}")
    if kind is None:
        return None
    reader = _READERS.get(kind)
    if reader is None:
        table.problem(
            "type",
            f"{kind!r} is not one of {' | '.join(ACTION_TYPES)}" + suggest(kind, ACTION_TYPES),
        )
        return None
    if kind == "email" and not have_smtp:
        table.problem("", "an email action needs an [smtp] section (host, from); add one")
    return reader(table)


def _template(table: Table, key: str, default: str | None, *, path: bool = False) -> str | None:
    value = table.text(key, required=default is None)
    if value is None:
        return default
    for problem in template_problems(value, path=path):
        table.problem(key, problem)
    return value


def _folder(table: Table) -> FolderSpec | None:
    template = _template(table, "path", None, path=True)
    if template is None:
        return None
    if template.endswith("/"):
        table.problem("path", "names a folder; end it with a file name, e.g. {recvid}.{ext}")
    if not template.startswith(("/", "~")):
        base = str(table.base).replace("{", "{{").replace("}", "}}")
        template = f"{base.rstrip('/')}/{template}"
    elif template.startswith("~"):
        template = str(Path(template).expanduser())
    group, gid = _group(table)
    return FolderSpec(path=template, mode=_file_mode(table), group=group, gid=gid)


def _file_mode(table: Table) -> int:
    """``mode = "0640"``: the delivered file's permission bits, as chmod writes them."""
    text = table.text("mode")
    if text is None:
        return DEFAULT_FILE_MODE
    digits = text.strip()
    if not (3 <= len(digits) <= 4 and all(ch in "01234567" for ch in digits)):
        table.problem(
            "mode",
            f"{text!r} is not a file mode; write it in octal as chmod does, in quotes, "
            'e.g. mode = "0640" (owner read/write, group read)',
        )
        return DEFAULT_FILE_MODE
    mode = int(digits, 8)
    if mode > 0o777:
        table.problem(
            "mode",
            f"{text!r} sets setuid/setgid/sticky bits, which a fax never needs; "
            'use permission bits only, e.g. "0640"',
        )
    elif not mode & 0o400:
        table.problem(
            "mode",
            f"{text!r} does not let the owner (faxd) read the file, so faxd could not "
            'check a redelivery; keep owner read, e.g. "0640"',
        )
    elif mode & 0o111:
        table.problem("mode", f'{text!r} makes a fax executable; drop the x bits, e.g. "0640"')
    elif mode & 0o002:
        table.problem(
            "mode",
            f"{text!r} lets every user on the machine change delivered faxes; "
            'give write access through a group instead, e.g. mode = "0660" with group',
        )
    else:
        return mode
    return DEFAULT_FILE_MODE


def _group(table: Table) -> tuple[str | None, int | None]:
    """``group = "fax"``: the group delivered files and made folders get, and its id."""
    name = table.text("group")
    if name is None:
        return None, None
    try:
        return name, grp.getgrnam(name).gr_gid
    except (KeyError, ValueError):  # ValueError: a NUL in the name
        table.problem(
            "group",
            f"there is no group {name!r} on this machine (see `getent group`); create it "
            f"(groupadd {name}) and add the user faxd runs as to it, or fix the name",
        )
    return None, None


def _print(table: Table) -> PrintSpec | None:
    # No printer: lp's default destination (`lpstat -d`).
    printer = table.text("printer") or ""
    if printer and (printer.startswith("-") or any(ch.isspace() or ch in "/#" for ch in printer)):
        table.problem(
            "printer",
            f"{printer!r} is not a printer name (no spaces, /, # "
            "or leading -); `lpstat -p` lists them",
        )
    options = table.text_list("options") or []
    for index, option in enumerate(options):
        if option.startswith("-") or not option.strip():
            table.problem(
                f"options[{index}]",
                f"{option!r} is not an lp option; "
                'write name=value, e.g. "sides=two-sided-long-edge"',
            )
    copies = table.integer("copies", 1, minimum=1, maximum=99)
    command = table.text("command") or "lp"
    if "/" in command and not command.startswith("/"):
        command = str(resolve_path(command, table.base))
    return PrintSpec(printer=printer, options=tuple(options), copies=copies, command=command)


def _email(table: Table) -> EmailSpec | None:
    to = table.text_list("to")
    if not to:
        table.problem("to", 'missing; give the addresses, e.g. to = ["sales@example.com"]')
    for index, address in enumerate(to or []):
        if (
            "@" not in address
            or not address.isprintable()
            or any(ch.isspace() or ch in ",;<>" for ch in address)
        ):
            table.problem(f"to[{index}]", f"{address!r} is not one email address")
    attach = table.boolean("attach", True)
    subject = _template(table, "subject", DEFAULT_EMAIL_SUBJECT)
    body = _template(table, "body", DEFAULT_EMAIL_BODY + (ATTACHED_NOTE if attach else ""))
    if not to or subject is None or body is None:
        return None
    return EmailSpec(to=tuple(to), subject=subject, body=body, attach=attach)


def _command(table: Table) -> CommandSpec | None:
    raw = table.raw("argv")
    argv: list[str] | None = None
    if isinstance(raw, str):
        try:
            argv = shlex.split(raw)
        except ValueError as exc:
            table.problem("argv", f"cannot split {raw!r} into words ({exc}); use a list")
    else:
        argv = table.text_list("argv")
    if argv is not None and not argv:
        table.problem("argv", "is empty; name the program to run")
    if raw is None:
        table.problem("argv", 'missing; e.g. argv = ["/usr/local/bin/fax-hook", "--fast"]')
    timeout = table.duration("timeout", 60.0)
    if not argv:
        return None
    if "/" in argv[0] and not argv[0].startswith("/"):
        argv[0] = str(resolve_path(argv[0], table.base))
    return CommandSpec(argv=tuple(argv), timeout=timeout)


_READERS: dict[str, Callable[[Table], ActionSpec | None]] = {
    "folder": _folder,
    "print": _print,
    "email": _email,
    "command": _command,
}


def _check_names(routes: list[RouteSpec], problems: Problems) -> None:
    seen: dict[str, int] = {}
    for index, route in enumerate(routes):
        key = route.name.casefold()
        if key in seen:
            problems.add(
                f"routes[{index}].name",
                f"{route.name!r} is also the name of "
                f"routes[{seen[key]}]; give each route its own name",
            )
        else:
            seen[key] = index


def _check_defaults(routes: list[RouteSpec], problems: Problems) -> None:
    defaults = [i for i, route in enumerate(routes) if route.is_default]
    if len(defaults) > 1:
        listed = ", ".join(f"routes[{i}] ({routes[i].name!r})" for i in defaults)
        problems.add(
            "routes",
            f"more than one default route (no dnis, cid or hours): {listed}; "
            "keep one and give the others match keys",
        )
    elif defaults and defaults[0] != len(routes) - 1:
        first = defaults[0]
        later = ", ".join(
            f"routes[{i}] ({routes[i].name!r})" for i in range(first + 1, len(routes))
        )
        problems.add(
            f"routes[{first}]",
            f"{routes[first].name!r} is the default route (no dnis, "
            f"cid or hours) so it takes every fax; {later} could never match; "
            "move the default route last",
        )
