"""Faults the simulator injects on demand, so tests can prove faxd survives them.

A fault is a kind (what goes wrong), an optional operation it is limited to,
and how often it fires: every matching request (the default), the next
``times`` matching requests, or each matching request with probability
``rate`` drawn from the simulator's seeded :class:`random.Random` (so a run is
reproducible).  With both ``times`` and ``rate``, the fault fires at random
until it has fired ``times`` times.

Kinds:

``http500``  answer HTTP 500 with a short text body.
``err01``    answer ``ERR01: Database connection failed`` (HTTP 200).
``err02``    answer ``ERR02: Login incorrect`` although the login is right.
``err13``    getfax only: answer ``ERR13: File could not be opened``.
``err08``    answer ``ERR08: Unknown operation specified or bad POST`` with the whole
             POST echoed back in ``print_r`` form (password and base64 file data
             included), as FAXAGE does when it dislikes a request.
``reset``    close the connection with a TCP reset and no answer at all.
``slow``     wait ``slow_seconds`` before answering normally.
``truncate`` downloads only (getfax, dlstatus, dltrans): send the headers with
             the full Content-Length, half of the body, then close.

``http500``, ``err01``, ``err02``, ``err08``, ``err13`` and ``reset`` answer *instead of*
the operation: nothing is changed on the account.  With ``after=True`` the
operation is carried out first and only its answer is lost or replaced (a
sendfax that created a job, a delfax that deleted), which is the case a client
must reconcile.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass

FAULT_KINDS = frozenset(
    {"http500", "err01", "err02", "err08", "err13", "reset", "slow", "truncate"}
)
#: Operations that answer with a file, where ``truncate`` makes sense.
DOWNLOAD_OPERATIONS = frozenset({"getfax", "dlstatus", "dltrans"})
#: Kinds that can be applied after the operation ran (``after=True``).
AFTER_KINDS = frozenset({"http500", "err01", "err02", "err08", "err13", "reset"})


@dataclass
class Fault:
    """One injected fault and how many more times it may fire."""

    kind: str
    operation: str | None
    remaining: int | None
    rate: float | None
    after: bool = False
    fired: int = 0

    def applies_to(self, operation: str) -> bool:
        """Whether this fault can fire for ``operation`` at all."""
        if self.operation is not None and self.operation != operation:
            return False
        if self.kind == "err13":
            return operation == "getfax"
        if self.kind == "truncate":
            return operation in DOWNLOAD_OPERATIONS
        return True


class FaultPlan:
    """The faults in force; thread-safe, drawing from one seeded random source."""

    #: What :meth:`inject` makes (a provider's own says where its kinds apply).
    fault_class: type[Fault] = Fault

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def inject(
        self,
        kind: str,
        *,
        operation: str | None = None,
        times: int | None = None,
        rate: float | None = None,
        after: bool = False,
    ) -> Fault:
        """Add a fault; see the module docstring for the kinds and how they fire."""
        self.check(kind, operation, after)
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1 (or None for always), not {times}")
        if rate is not None and not 0.0 < rate <= 1.0:
            raise ValueError(f"rate is a probability in (0, 1], not {rate}")
        fault = self.fault_class(kind, operation, times, rate, after)
        with self._lock:
            self._faults.append(fault)
        return fault

    def check(self, kind: str, operation: str | None, after: bool) -> None:
        """Refuse a kind, operation or ``after`` this simulator cannot apply (FAXAGE's here).

        Another provider's simulator overrides this and :attr:`fault_class`;
        counting, drawing and the common checks stay here.
        """
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {sorted(FAULT_KINDS)}")
        if kind == "err13" and operation not in (None, "getfax"):
            raise ValueError("err13 is a getfax answer; inject it with operation='getfax'")
        if kind == "truncate" and operation not in (None, *DOWNLOAD_OPERATIONS):
            raise ValueError(f"truncate only applies to {sorted(DOWNLOAD_OPERATIONS)}")
        if after and kind not in AFTER_KINDS:
            raise ValueError(f"after=True only applies to {sorted(AFTER_KINDS)}")

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    @property
    def active(self) -> list[Fault]:
        """A snapshot of the faults still in force."""
        with self._lock:
            return list(self._faults)

    def draw(self, operation: str) -> list[Fault]:
        """The faults that fire for this request, at most one per kind, in injection order.

        Firing uses up one of a fault's ``times``; a used-up fault is removed.
        """
        fired: list[Fault] = []
        kinds: set[str] = set()
        with self._lock:
            for fault in list(self._faults):
                if fault.kind in kinds or not fault.applies_to(operation):
                    continue
                if fault.rate is not None and self._rng.random() >= fault.rate:
                    continue
                fault.fired += 1
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining <= 0:
                        self._faults.remove(fault)
                kinds.add(fault.kind)
                fired.append(fault)
        return fired
