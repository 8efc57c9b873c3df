"""When to try a fax again after a failed attempt.

A fax that cannot be downloaded, delivered or deleted is retried later, and
each failure doubles the wait up to a cap (DESIGN invariant 3).  Jitter
spreads the retries of many faxes that failed together (FAXAGE down for a
minute) so they do not all hit the provider at the same second.

Pure: the attempt count, the policy and a random source go in, a delay or a
time comes out.  The random source is injected so tests get exact answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


class RandomSource(Protocol):
    """Anything with ``random() -> float in [0, 1)`` (``random.Random`` fits)."""

    def random(self) -> float: ...


def backoff_delay(attempts: int, *, base: float, cap: float, rng: RandomSource) -> float:
    """Seconds to wait after the ``attempts``-th failure (1 = the first failure).

    The ceiling doubles with each failure, ``base * 2**(attempts-1)``, never
    above ``cap``; the delay is drawn from the upper half of it ("equal
    jitter"), so it is never less than half the ceiling and never more than
    ``cap``.
    """
    if base <= 0 or cap <= 0:
        return 0.0
    exponent = max(0, attempts - 1)
    # 2**exponent overflows floats only for absurd counts; stop doubling at the cap.
    ceiling = cap if exponent >= 64 else min(cap, base * float(2**exponent))
    half = ceiling / 2.0
    return half + half * rng.random()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long a fax is retried (from ``[inbound]``)."""

    base: float
    cap: float
    max_attempts: int

    def next_attempt_at(self, attempts: int, now: datetime, rng: RandomSource) -> datetime:
        """The time of the next try after the ``attempts``-th failure at ``now``."""
        delay = backoff_delay(attempts, base=self.base, cap=self.cap, rng=rng)
        return now + timedelta(seconds=delay)

    def exhausted(self, attempts: int) -> bool:
        """Whether ``attempts`` failures are enough to give up on the fax."""
        return attempts >= max(1, self.max_attempts)
