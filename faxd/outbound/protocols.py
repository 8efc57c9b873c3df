"""The slice of the FAXAGE client the outbound half uses, as a Protocol.

The submitter, follow-up and CLI helpers take any object with these methods:
the real :class:`faxd.providers.faxage.client.FaxageClient` in production and in the
integration tests (against the simulator), a small fake in unit tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from faxd.providers.faxage.records import StatusRecord, StatusResult


class OutboundClient(Protocol):
    """``sendfax`` / ``status`` / ``clear`` / ``stopfax`` as the outbound half calls them."""

    @property
    def account(self) -> str:
        """``username@company``, the account unreadable status lines are recorded under."""
        ...

    def sendfax(
        self,
        faxno: str,
        recipname: str,
        files: Sequence[Any],
        *,
        tagname: str | None = ...,
        tagnumber: str | None = ...,
        resolution: Any = ...,
        priority: Any = ...,
        url_notify: str | None = ...,
    ) -> int: ...

    def status(
        self,
        jobids: Sequence[int] | None = ...,
        *,
        pagecount: bool = ...,
        csid: bool = ...,
        xmitpages: bool = ...,
    ) -> list[StatusRecord]: ...

    def status_result(
        self,
        jobids: Sequence[int] | None = ...,
        *,
        pagecount: bool = ...,
        csid: bool = ...,
        xmitpages: bool = ...,
    ) -> StatusResult: ...

    def clear(self, jobid: int) -> None: ...

    def stopfax(self, jobid: int) -> None: ...
