"""The FAXAGE fax API, as faxd uses it.

Three layers, each testable on its own: :mod:`~faxd.providers.faxage.wire` turns answer
text into records and errors (pure), :mod:`~faxd.providers.faxage.transport` moves bytes
over HTTP and verifies downloads, and :mod:`~faxd.providers.faxage.client` offers one
method per FAXAGE operation with the retry policy.  Callers import from here.
"""

from __future__ import annotations

from faxd.providers.faxage.client import FaxageClient, FaxFile
from faxd.providers.faxage.records import (
    CdrRecord,
    DownloadResult,
    ListfaxRecord,
    ListfaxResult,
    MalformedLine,
    NpaNxx,
    StatusRecord,
    StatusResult,
)

__all__ = [
    "CdrRecord",
    "DownloadResult",
    "FaxFile",
    "FaxageClient",
    "ListfaxRecord",
    "ListfaxResult",
    "MalformedLine",
    "NpaNxx",
    "StatusRecord",
    "StatusResult",
]
