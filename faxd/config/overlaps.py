"""Folders that must never share ground: deliveries, spools and the outbox.

A folder action writing into a spool finds faxd's own spool file, calls it
"already delivered", and the spool clean-up then deletes the only copy after
``delfax`` (issue 10, finding 2).  A delivery tree holding the hot folder
faxes every received fax out again; one holding the sent or failed folder
mixes documents the office keeps apart.  The loader refuses each such config
with the key to change, before the first fax can be lost.

What a folder action can write is its *tree*: the fixed folder before the
first field of its path template.  When fields name folders
(``/srv/fax/{route}/{recvid}.pdf``) anything below that root may be written,
so the root must be neither inside, equal to nor above a protected folder.
When only the file name has fields (``/srv/fax/{recvid}.pdf``) the files land
in that one folder, so it only must not be inside or equal to one.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from string import Formatter

from faxd.config.model import (
    FolderSpec,
    InboundSettings,
    OutboundSettings,
    RetentionSettings,
    RouteSpec,
)
from faxd.config.reader import Problems


def fixed_root(template: str) -> tuple[Path, bool]:
    """The folder before the template's first field, and whether fields name folders.

    ``/srv/fax/{dnis}/fax-{recvid}.pdf`` -> ``(/srv/fax, True)``;
    ``/srv/fax/in/{recvid}.pdf`` -> ``(/srv/fax/in, False)``.
    """
    prefix, rest = "", ""
    try:
        parsed = list(Formatter().parse(template))
    except ValueError:  # a broken template: the route reader already said why
        parsed = [(template.split("{", 1)[0], "x", "", None)]
    for index, (literal, name, _spec, _conversion) in enumerate(parsed):
        prefix += literal
        if name is not None:
            rest = "".join(part[0] for part in parsed[index + 1 :]) + "{"
            break
    cut = prefix.rfind("/")
    root = Path(os.path.normpath(prefix[:cut] or "/")) if cut >= 0 else Path(".")
    fields_name_folders = "/" in prefix[cut + 1 :] + rest if rest else False
    return root, fields_name_folders


def protected_folders(
    inbound: InboundSettings,
    outbound: OutboundSettings,
    retention: RetentionSettings | None = None,
) -> list[tuple[str, Path]]:
    """Folders no delivery may reach, each with the key that sets it.

    The sent and failed folders are protected while the outbox runs, and also
    while ``[retention]`` cleans them (it would remove delivered faxes there).
    """
    found = [
        ("[inbound] spool_dir", inbound.spool_dir),
        ("[outbound] spool_dir", outbound.spool_dir),
    ]
    if outbound.enabled:
        found.append(("[outbound] hot_folder", outbound.hot_folder))
    sent_days = retention.sent_days if retention is not None else None
    failed_days = retention.failed_days if retention is not None else None
    if outbound.enabled or sent_days is not None:
        found.append(("[outbound] sent_folder", outbound.sent_folder))
    if outbound.enabled or failed_days is not None:
        found.append(("[outbound] failed_folder", outbound.failed_folder))
    return found


def folder_actions(routes: tuple[RouteSpec, ...]) -> Iterator[tuple[str, FolderSpec]]:
    """Every folder action with the key of its path (``routes[0].actions[1].path``)."""
    for r, route in enumerate(routes):
        for a, action in enumerate(route.actions):
            if isinstance(action, FolderSpec):
                yield f"routes[{r}].actions[{a}].path", action


def check_overlaps(
    routes: tuple[RouteSpec, ...],
    inbound: InboundSettings,
    outbound: OutboundSettings,
    problems: Problems,
    retention: RetentionSettings | None = None,
) -> None:
    """Add a problem for every folder action that can write where it must not."""
    if not inbound.enabled:
        return  # routes are not used: nothing is delivered
    protected = protected_folders(inbound, outbound, retention)
    for key, action in folder_actions(routes):
        root, fields_name_folders = fixed_root(action.path)
        for what, folder in protected:
            relation = _relation(root, folder)
            if relation is None or (relation == "above" and not fields_name_folders):
                continue
            if what == "[outbound] hot_folder" and relation == "above":
                problems.add(
                    what,
                    f"{folder} is inside the delivery tree {root} of {key} "
                    f"({action.path!r}): a received fax delivered there would be faxed "
                    "out again; move the hot folder out of it, or give the folder action "
                    "a root of its own (e.g. /srv/fax/inbox/...)",
                )
            else:
                problems.add(
                    key,
                    f"{action.path!r} writes {_WHERE[relation]} {what} ({folder}): "
                    f"{_WHY.get(what, _WHY_OUTBOX)}; give the folder action a folder of "
                    "its own, apart from the spools and the outbox folders "
                    "(e.g. /srv/fax/inbox/{recvid}.{ext})",
                )


_WHERE = {"equal": "into", "inside": "inside", "above": "into folders that include"}
_WHY = {
    "[inbound] spool_dir": "faxd would take its own spool file for a delivered fax, "
    "delete the fax on FAXAGE, then clean the spool and lose the only copy",
    "[outbound] spool_dir": "received faxes would mix with the files waiting to be sent",
}
_WHY_OUTBOX = "received faxes would mix with the files the outbox sends and files"


def _relation(root: Path, folder: Path) -> str | None:
    """How ``root`` lies to ``folder`` (as written, and with links resolved): or ``None``."""
    for a, b in ((root, folder), (_real(root), _real(folder))):
        if a == b:
            return "equal"
        if a.is_relative_to(b):
            return "inside"
        if b.is_relative_to(a):
            return "above"
    return None


def _real(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop: compare as written
        return path
