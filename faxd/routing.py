"""Which route a received fax takes: a pure decision, no I/O and no clock.

The config lists routes in order; the first whose match keys all agree with the
fax wins.  Match keys are the number the fax was sent to (``dnis``), the
caller id (``cid``) and the time of day (``hours``).  A route without match keys
matches every fax, so it is the default; put it last.

``route()`` takes ``now`` instead of reading the clock (STYLE.md §4), so the
pipeline decides which instant counts (the time the fax is processed) and
tests hand in any instant they like.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from faxd.config import RouteSpec
from faxd.errors import RoutingError
from faxd.phone import template_digits, template_e164
from faxd.templates import EMPTY_VALUE as UNKNOWN


@dataclass(frozen=True)
class FaxFacts:
    """What faxd knows about a received fax when it routes and delivers it.

    ``dnis`` is the number it was sent to (E.164), ``cid`` the normalised caller
    id (``""`` when unavailable), ``ext`` the file extension (``pdf``/``tif``),
    ``received`` the time the provider reports it arrived, ``recvid`` the
    provider's remote id of the fax and ``provider`` the provider's name.
    """

    recvid: str
    dnis: str
    cid: str
    pages: int | None
    ext: str
    received: datetime
    provider: str = ""

    def template_fields(self, route_name: str) -> dict[str, object]:
        """The values of the path and text template fields for this fax.

        Keys are those of :data:`faxd.templates.TEMPLATE_FIELDS`; ``received``
        stays a ``datetime`` so ``{received:%Y-%m}`` can format it.  A fact
        FAXAGE did not give (caller id withheld, no page count) reads
        ``unknown``, so a subject says "Fax from unknown", not "Fax from ".
        ``{dnis}``/``{cid}`` are digits only: 10 for a NANP number, as before
        numbers became E.164 (folder layouts stay as they were), else the E.164
        digits without ``+``; ``{dnis_e164}``/``{cid_e164}`` keep the ``+``.
        """
        return {
            "recvid": self.recvid,
            "dnis": template_digits(self.dnis) or UNKNOWN,
            "cid": template_digits(self.cid) or UNKNOWN,
            "dnis_e164": template_e164(self.dnis) or UNKNOWN,
            "cid_e164": template_e164(self.cid) or UNKNOWN,
            "pages": self.pages if self.pages is not None else UNKNOWN,
            "ext": self.ext,
            "route": route_name,
            "received": self.received,
            "provider": self.provider or UNKNOWN,
        }


def route(facts: FaxFacts, routes: Sequence[RouteSpec], now: datetime) -> RouteSpec:
    """Return the first route in ``routes`` that matches ``facts`` at ``now``.

    ``now`` is compared with a route's ``hours`` in the server's local time: an
    aware ``now`` is converted with ``.astimezone()``; a naive one is taken as
    local wall-clock time already.  Raises :class:`~faxd.errors.RoutingError`
    when no route matches and there is no default route.
    """
    local_now = now.astimezone() if now.tzinfo is not None else now
    for spec in routes:
        if _matches(spec, facts, local_now):
            return spec
    raise RoutingError(
        f"no route matches {facts.provider} fax {facts.recvid} "
        f"sent to {facts.dnis or 'an unknown number'} "
        f"from {facts.cid or 'an unknown caller'}; add a route for this number or a "
        "default route (one with no dnis, cid or hours) at the end of the [[routes]] list"
    )


def _matches(spec: RouteSpec, facts: FaxFacts, local_now: datetime) -> bool:
    """Whether every match key ``spec`` sets agrees with the fax (none set: yes)."""
    if spec.dnis and facts.dnis not in spec.dnis:
        return False
    if spec.cid and facts.cid not in spec.cid:
        return False
    if spec.providers and facts.provider not in spec.providers:
        return False
    return spec.hours is None or spec.hours.contains(local_now)
