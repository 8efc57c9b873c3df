"""What a poll, a sweep or a pass of the inbound pipeline achieved.

:class:`PollOutcome` is the pipeline's answer to the daemon (status lines,
``STATUS=`` for systemd, the health check); :class:`Tally` counts one pass
while it runs.  A tally belongs to the thread that dispatches the pass: the
worker threads hand their results back to it and never touch it themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from faxd.inbound.rows import FaxRow
from faxd.store.states import FaxState


@dataclass(frozen=True)
class PollOutcome:
    """What one poll, sweep or pass achieved, for status lines."""

    new: int = 0
    done: int = 0
    failed: int = 0
    held: int = 0
    errors: int = 0
    paused: bool = False

    def summary(self) -> str:
        if self.paused:
            return "paused: the provider refused the login"
        return (
            f"{self.new} new, {self.done} done, {self.failed} failed, "
            f"{self.held} held, {self.errors} errors"
        )

    def __add__(self, other: PollOutcome) -> PollOutcome:
        return PollOutcome(
            new=self.new + other.new,
            done=self.done + other.done,
            failed=self.failed + other.failed,
            held=self.held + other.held,
            errors=self.errors + other.errors,
            paused=self.paused or other.paused,
        )


@dataclass
class Tally:
    """Counts of one pass; kept by the dispatching thread only."""

    done: int = 0
    failed: int = 0
    held: int = 0
    errors: int = 0
    paused: bool = False

    def count(self, row: FaxRow) -> None:
        """Count where one fax ended this pass."""
        if row.state is FaxState.DONE:
            self.done += 1
        elif row.state is FaxState.FAILED:
            self.failed += 1
        elif row.state is FaxState.HELD:
            self.held += 1
        elif row.last_error:
            self.errors += 1

    def outcome(self) -> PollOutcome:
        return PollOutcome(
            done=self.done,
            failed=self.failed,
            held=self.held,
            errors=self.errors,
            paused=self.paused,
        )
