"""Hand faxes to up to ``[inbound] concurrency`` threads, each fax to one at a time.

After a weekend an inbox can hold hundreds of faxes; most of the time per fax
is spent waiting for FAXAGE, so several are downloaded and delivered at once.
The :class:`Dispatcher` keeps the rules that make that safe:

- **one thread per fax**: a fax is *claimed* before it is handed out and
  released when its worker returns, so two passes running at once (a poll
  and ``faxd retry``, say) never work on the same fax;
- **bounded**: never more than ``concurrency`` faxes in flight, and none
  queued behind them, so a stop takes no new fax and lets the ones in hand
  finish (:meth:`Dispatcher.run`'s ``halt``);
- **results come back to the caller's thread**, in completion order, so the
  tally of the pass and any account-wide decision (ERR02 pauses everything)
  are made in one place without locks;
- each worker runs in a copy of the caller's :mod:`contextvars`, so log
  context bound around the pass is kept.

With ``concurrency = 1`` no thread is started: faxes run one after another
in the caller's thread.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Hashable, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
#: What a fax is known by here: the pipelines of several providers may share
#: one dispatcher, so theirs is ``(provider, remote id)``.
K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Finished(Generic[K, T]):
    """How the work on one fax ended: its value, or the exception it raised."""

    key: K
    value: T | None = None
    error: BaseException | None = None


class Dispatcher:
    """Runs work on faxes, at most ``concurrency`` at once, never one fax twice at once."""

    def __init__(self, concurrency: int, *, thread_name: str = "faxd-inbound") -> None:
        self.concurrency = max(1, concurrency)
        self.thread_name = thread_name
        self._claimed: set[Hashable] = set()
        self._lock = threading.Lock()

    def claim(self, key: Hashable) -> bool:
        """Take fax ``key`` for one worker; ``False`` if another already has it."""
        with self._lock:
            if key in self._claimed:
                return False
            self._claimed.add(key)
            return True

    def release(self, key: Hashable) -> None:
        """Give ``key`` back once its worker has returned."""
        with self._lock:
            self._claimed.discard(key)

    def busy(self) -> set[Hashable]:
        """The faxes being worked on right now."""
        with self._lock:
            return set(self._claimed)

    def run(
        self,
        keys: Iterable[K],
        work: Callable[[K], T],
        *,
        halt: Callable[[], bool],
    ) -> Iterator[Finished[K, T]]:
        """Run ``work(key)`` for each fax in order; yield each as it finishes.

        ``halt`` is asked before each fax is handed out: once it says yes, no
        further fax starts, and those in flight are awaited and yielded.  A
        fax claimed elsewhere is skipped (nothing is yielded for it).
        """
        if self.concurrency == 1:
            yield from self._run_inline(keys, work, halt)
            return
        in_flight: set[Future[T]] = set()
        owner: dict[Future[T], tuple[int, K]] = {}
        with ThreadPoolExecutor(self.concurrency, thread_name_prefix=self.thread_name) as pool:
            try:
                for position, key in enumerate(keys):
                    while len(in_flight) >= self.concurrency:
                        finished, in_flight = wait(in_flight, return_when=FIRST_COMPLETED)
                        yield from _results(finished, owner)
                    if halt():
                        break
                    if not self.claim(key):
                        continue
                    context = contextvars.copy_context()
                    future = pool.submit(context.run, self._guarded, key, work)
                    owner[future] = (position, key)
                    in_flight.add(future)
            finally:
                # Also when the caller stops iterating early: nothing in
                # flight is abandoned, and every claim is released.
                finished, _ = wait(in_flight)
                results = list(_results(finished, owner))
            yield from results

    def _run_inline(
        self, keys: Iterable[K], work: Callable[[K], T], halt: Callable[[], bool]
    ) -> Iterator[Finished[K, T]]:
        for key in keys:
            if halt():
                return
            if not self.claim(key):
                continue
            try:
                value = self._guarded(key, work)
            except Exception as exc:
                yield Finished(key, error=exc)
            else:
                yield Finished(key, value=value)

    def _guarded(self, key: K, work: Callable[[K], T]) -> T:
        """Run the work of a claimed fax and release the claim however it ends."""
        try:
            return work(key)
        finally:
            self.release(key)


def _results(
    finished: Iterable[Future[T]], owner: dict[Future[T], tuple[int, K]]
) -> Iterator[Finished[K, T]]:
    """The outcome of each finished future, in the order the faxes were handed out."""
    for future in sorted(finished, key=lambda f: owner[f][0]):
        _, key = owner.pop(future)
        error = future.exception()
        if error is not None:
            yield Finished(key, error=error)
        else:
            yield Finished(key, value=future.result())
