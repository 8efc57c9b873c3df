"""Tests of faxd.inbound.backoff: exponential, capped, jittered, pure."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from inbound_helpers import FixedRandom

from faxd.inbound.backoff import RetryPolicy, backoff_delay


@pytest.mark.parametrize(
    ("attempts", "expected"),
    [(1, 10.0), (2, 20.0), (3, 40.0), (4, 80.0), (5, 160.0), (6, 300.0), (30, 300.0)],
)
def test_ceiling_doubles_until_the_cap(attempts: int, expected: float) -> None:
    """With the top of the jitter range the delay is base * 2**(n-1), never above cap."""
    top = FixedRandom(0.999999999)
    assert backoff_delay(attempts, base=10, cap=300, rng=top) == pytest.approx(expected)


def test_jitter_keeps_the_upper_half_of_the_ceiling() -> None:
    """The smallest draw gives half the ceiling; every draw stays within [half, ceiling]."""
    assert backoff_delay(3, base=10, cap=300, rng=FixedRandom(0.0)) == 20.0
    rng = random.Random(7)
    delays = [backoff_delay(3, base=10, cap=300, rng=rng) for _ in range(500)]
    assert min(delays) >= 20.0
    assert max(delays) <= 40.0
    assert len({round(d, 6) for d in delays}) > 400  # really spread out


def test_huge_attempt_counts_do_not_overflow() -> None:
    """A fax retried thousands of times still gets a finite delay at the cap."""
    assert backoff_delay(5000, base=10, cap=300, rng=FixedRandom(0.5)) == 225.0


def test_zero_base_means_no_wait() -> None:
    """backoff_base = 0 retries at the next pass."""
    assert backoff_delay(4, base=0, cap=300, rng=FixedRandom(0.5)) == 0.0


def test_policy_next_attempt_at_and_exhaustion() -> None:
    """The policy adds the delay to now and gives up at max_attempts."""
    policy = RetryPolicy(base=30, cap=3600, max_attempts=3)
    now = datetime(2024, 1, 1, 12, tzinfo=UTC)
    assert policy.next_attempt_at(2, now, FixedRandom(0.0)) == now + timedelta(seconds=30)
    assert [policy.exhausted(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
