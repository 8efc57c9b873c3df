"""Inbound faxes: from FAXAGE's inbox to folders, printers and mailboxes.

:class:`~faxd.inbound.pipeline.InboundPipeline` lists what is new and hands
the faxes that are due to the dispatcher (``dispatch``: up to ``[inbound]
concurrency`` at once, each fax to one thread), which runs a
:class:`~faxd.inbound.worker.FaxWorker` on each.  The ledger (database rows,
snapshots in ``rows``), the spool (files), the backoff policy and the pass's
outcome (``outcome``) are its parts.
"""

from __future__ import annotations

from faxd.inbound.outcome import PollOutcome
from faxd.inbound.pipeline import InboundPipeline

__all__ = ["InboundPipeline", "PollOutcome"]
