"""A FAXAGE simulator: the real protocol over HTTP on loopback.

Used by faxd's tests, by ``faxd demo``, and by people pointing a test install
at it (``python -m faxd.sim --port 8025``).  See :class:`FaxageSimulator`.
"""

from __future__ import annotations

from faxd.sim.models import SimCdr, SimFax, SimJob, SimRequest
from faxd.sim.server import FaxageSimulator

__all__ = ["FaxageSimulator", "SimCdr", "SimFax", "SimJob", "SimRequest"]
