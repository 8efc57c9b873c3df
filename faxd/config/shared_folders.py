"""What several faxd instances need of the outbound folders, checked when the config is read.

On PostgreSQL several servers may run faxd on one database and one hot folder
on a network share (DESIGN "Several instances").  Each queued job's file
waits in ``[outbound] spool_dir`` until it is sent; if that folder is a local
disk, the file of a job queued by a server that then dies is out of reach of
the one that takes over, and the job fails instead of being sent.  So the
spool must be on the share as well: on the same file system as the hot
folder (same ``st_dev``), which is also what lets a file move from the hot
folder into the spool by a rename.

This is a warning, not an error: a single server on PostgreSQL is a valid
setup, and the folders may not exist yet (the nearest existing folder above
each one is compared then).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from faxd.config.model import DatabaseSettings, OutboundSettings

StatFn = Callable[[Path], os.stat_result]


def spool_share_warning(
    database: DatabaseSettings, outbound: OutboundSettings, *, stat: StatFn = os.stat
) -> list[str]:
    """The warning when a shared database's outbound spool is not beside the hot folder."""
    if not outbound.enabled or not database.url.startswith("postgresql"):
        return []
    hot = _device(outbound.hot_folder, stat)
    spool = _device(outbound.spool_dir, stat)
    if hot is None or spool is None or hot == spool:
        return []
    return [
        f"[outbound] spool_dir ({outbound.spool_dir}) is not on the same file system as "
        f"hot_folder ({outbound.hot_folder}); with several servers on this PostgreSQL "
        "database, a job queued by a server that stops cannot be sent by another: put "
        "spool_dir on the same share as the hot folder (e.g. a folder beside it)"
    ]


def _device(folder: Path, stat: StatFn) -> int | None:
    """The device of ``folder``, or of the nearest folder above it that exists."""
    for place in (folder, *folder.parents):
        try:
            return stat(place).st_dev
        except FileNotFoundError:
            continue
        except OSError:
            return None  # not readable: nothing to compare
    return None
