"""The simulator calls back, as FAXAGE does: ``url_notify`` and the inbound push.

After a job sent with ``url_notify`` finishes, FAXAGE posts the fields of its
status record as a form to that URL, with the query string dropped (DESIGN
"FAXAGE wire notes"); when a fax arrives on an account with a push URL, it
posts ``recvid, recvdate, starttime, cid, dnis, pagecount, tsid``.  Each post
runs on its own daemon thread, after the event, so a slow receiver never holds
the simulator; a post that fails is counted in ``push_failures`` and dropped
(FAXAGE does not promise delivery either: polling is the truth).

:class:`Pusher` is the same for the other simulators (a VoIP.ms multipart
``url_callback``, an iFax JSON webhook): one push URL, the posts that
arrived and the ones that failed.
"""

from __future__ import annotations

import threading
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING

from faxd.sim.models import SimFax, SimJob, format_time

if TYPE_CHECKING:
    from faxd.sim.state import SimState

#: Seconds a callback post may take.
POST_TIMEOUT = 5.0


def without_query(url: str) -> str:
    """``url`` minus its query string and fragment, as FAXAGE posts to it."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def status_fields(job: SimJob) -> dict[str, str]:
    """The ``url_notify`` form: the job's status record, by the 2014 document's names."""
    hours, rest = divmod(job.xmitseconds, 3600)
    return {
        "jobid": str(job.jobid),
        "commid": str(job.commid),
        "destname": job.recipname,
        "destnum": job.faxno,
        "shortstatus": job.shortstatus,
        "longstatus": job.longstatus,
        "sendtime": format_time(job.sendtime),
        "completetime": format_time(job.completetime),
        "xmittime": f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}",
        "pagecount": str(job.pagecount),
        "xmitpages": str(job.xmitpages),
    }


def fax_fields(fax: SimFax) -> dict[str, str]:
    """The inbound push form for a received fax."""
    return {
        "recvid": str(fax.recvid),
        "recvdate": format_time(fax.recvdate),
        "starttime": format_time(fax.starttime),
        "cid": fax.cid,
        "dnis": fax.dnis,
        "pagecount": str(fax.pagecount),
        "tsid": "",
    }


def post_later(state: SimState, url: str, fields: dict[str, str], delay: float = 0.0) -> None:
    """Post ``fields`` to ``url`` (query dropped) from a daemon thread after ``delay`` s."""
    timer = threading.Timer(delay, _post, args=(state, without_query(url), fields))
    timer.daemon = True
    timer.start()


def notify_when_done(state: SimState, job: SimJob) -> None:
    """Post the job's status to its ``url_notify`` once it has finished."""
    url = job.url_notify
    if not url:
        return

    def finish() -> None:
        with state.lock:
            state.settle(job)
            if job.pending:  # stopped, or the clock is not there yet: FAXAGE says nothing
                return
            fields = status_fields(job)
        post_later(state, url, fields)

    wait = (job.settle_at - state.clock()) / timedelta(seconds=1)
    timer = threading.Timer(max(0.0, wait) + 0.05, finish)
    timer.daemon = True
    timer.start()


def _post(state: SimState, url: str, fields: dict[str, str]) -> None:
    data = urllib.parse.urlencode(fields).encode("ascii")
    arrived = send(url, data, "application/x-www-form-urlencoded")
    with state.lock:
        if arrived:
            state.push_posts.append((url, fields))
        else:
            state.push_failures += 1


def send(url: str, body: bytes, content_type: str) -> bool:
    """POST ``body`` to ``url`` (http or https only); whether it was answered with 2xx."""
    request = urllib.request.Request(  # noqa: S310 - the URL faxd gave, http(s) only
        url, data=body, headers={"Content-Type": content_type}
    )
    try:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"not an http URL: {url}")
        with urllib.request.urlopen(request, timeout=POST_TIMEOUT) as answer:  # noqa: S310
            answer.read(1024)
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return True


class Pusher:
    """A simulator's push URL and what it posted there (VoIP.ms, iFax).

    ``url`` is what the account's portal setting would hold (``None``: off).
    Each post runs on its own daemon thread after ``delay`` seconds; one that
    arrived is appended to ``posts`` as ``(url, body)``, one that did not is
    counted in ``failures`` (the real providers retry a few times; a test
    wants to see the first refusal).
    """

    def __init__(self) -> None:
        self.url: str | None = None
        self.posts: list[tuple[str, bytes]] = []
        self.failures = 0
        self._lock = threading.Lock()

    def post(self, body: bytes, content_type: str, *, delay: float = 0.0) -> None:
        """Post ``body`` to :attr:`url` (if set) from a daemon thread after ``delay`` s."""
        url = self.url
        if not url:
            return
        timer = threading.Timer(delay, self._post, args=(url, body, content_type))
        timer.daemon = True
        timer.start()

    def _post(self, url: str, body: bytes, content_type: str) -> None:
        arrived = send(url, body, content_type)
        with self._lock:
            if arrived:
                self.posts.append((url, body))
            else:
                self.failures += 1


class PushesCallbacks:
    """``push_url`` for a simulator whose :class:`Pusher` is ``self.pusher``."""

    pusher: Pusher

    @property
    def push_url(self) -> str | None:
        """Where the simulator posts its callbacks (the portal's setting); ``None``: off."""
        return self.pusher.url

    @push_url.setter
    def push_url(self, url: str | None) -> None:
        self.pusher.url = url


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body of ``fields`` and ``files`` (part -> (name, bytes))."""
    boundary = f"sim-{uuid.uuid4().hex}"
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, (filename, data) in files.items():
        head = (
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"; "
            f'filename="{filename}"\r\nContent-Type: application/pdf\r\n\r\n'
        )
        parts.append(head.encode() + data + b"\r\n")
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"
