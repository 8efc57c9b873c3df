"""Inbound faxes: from FAXAGE's inbox to folders, printers and mailboxes.

:class:`~faxd.inbound.pipeline.InboundPipeline` does the work; the ledger
(database rows), the spool (files) and the backoff policy are its parts.
"""

from __future__ import annotations

from faxd.inbound.pipeline import InboundPipeline, PollOutcome

__all__ = ["InboundPipeline", "PollOutcome"]
