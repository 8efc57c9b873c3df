"""What the FAXAGE simulator remembers: received faxes, sent jobs, requests, CDRs.

These are plain mutable records that tests read (and sometimes tweak) through
``sim.faxes``, ``sim.jobs`` and ``sim.requests``.  They are changed only while
the simulator's lock is held; the answer types at the bottom are what an
operation handler hands back to the HTTP layer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

#: How FAXAGE writes a time: ``YYYY-MM-DD HH:MM:SS``.
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
#: The completetime of a job that has not finished yet.
ZERO_TIME = "0000-00-00 00:00:00"


def format_time(when: datetime | None) -> str:
    """A timestamp as FAXAGE writes it; ``None`` is the all-zero time."""
    return ZERO_TIME if when is None else when.strftime(TIME_FORMAT)


def extra_values(count: int) -> list[str]:
    """``count`` trailing columns of the kind FAXAGE adds over the years."""
    return [f"extra{n}" for n in range(1, count + 1)]


@dataclass
class SimFax:
    """One received fax in the account's inbox.

    ``dnis`` is kept as 10 digits; ``cid`` as given (``(303)555-0100``,
    ``Unavailable`` or anything hostile a test wants to serve).  The file is
    either ``data`` in memory or, for very large faxes, ``data_path`` on disk
    (then ``data`` is empty and the file is streamed in chunks).
    """

    recvid: int
    recvdate: datetime
    starttime: datetime
    cid: str
    dnis: str
    filename: str
    pagecount: int
    data: bytes = b""
    data_path: Path | None = None
    deleted: bool = False
    deleted_at: datetime | None = None
    getfax_count: int = 0

    @property
    def remote_id(self) -> str:
        """The id faxd knows the fax by (the provider-neutral simulator contract)."""
        return str(self.recvid)

    @property
    def released(self) -> bool:
        """Deleted on the account (the simulator contract's name)."""
        return self.deleted

    @property
    def size(self) -> int:
        """Bytes getfax serves for this fax."""
        if self.data_path is not None:
            return self.data_path.stat().st_size
        return len(self.data)


@dataclass
class SimJob:
    """One sendfax job and its lifecycle (pending -> success / failure).

    ``files`` holds the decoded uploads as ``(name, bytes)``; URL-mode jobs have
    ``urls`` instead.  ``settle_at`` is when a pending job finishes; the status
    is worked out lazily from the simulator's clock whenever someone looks.
    """

    jobid: int
    commid: int
    faxno: str
    recipname: str
    files: list[tuple[str, bytes]]
    urls: list[str]
    url_types: list[str]
    login: str
    sendtime: datetime
    settle_at: datetime
    pagecount: int
    tagname: str | None = None
    tagnumber: str | None = None
    em_notify: bool = False
    url_notify: str | None = None
    resolution: str | None = None
    contrastalgo: str | None = None
    priority: str | None = None
    async_: bool = False
    shortstatus: str = "pending"
    longstatus: str = "In Queue"
    completetime: datetime | None = None
    xmitseconds: int = 0
    xmitpages: int = 0
    csid: str = ""
    cleared: bool = False
    stopped: bool = False

    @property
    def pending(self) -> bool:
        """Whether the job has not reached a final status yet."""
        return self.shortstatus == "pending"


@dataclass(frozen=True)
class SimRequest:
    """One POST the simulator received, with the password field removed.

    ``fields`` maps scalar names to their value and PHP arrays (``name[]`` or
    ``name[0]``) to the list of their values under the bare name.
    """

    operation: str
    fields: Mapping[str, str | list[str]]
    path: str = "/httpsfax.php"


@dataclass(frozen=True)
class SimCdr:
    """One call detail record served by getcdr.php."""

    nuid: int
    calldate: datetime
    direction: str
    src: str
    dst: str
    duration: int


@dataclass(frozen=True)
class TextAnswer:
    """A text body (FAXAGE answers everything, errors included, with HTTP 200)."""

    body: str
    status: int = 200


@dataclass(frozen=True)
class FileAnswer:
    """A binary download: in-memory ``data`` or a file streamed from ``path``."""

    filename: str
    data: bytes = b""
    path: Path | None = None

    @property
    def size(self) -> int:
        """The Content-Length of the full file."""
        if self.path is not None:
            return self.path.stat().st_size
        return len(self.data)


Answer = TextAnswer | FileAnswer
