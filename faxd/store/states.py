"""The state machines of an inbound fax, one delivery, and an outbound job.

Every state change in faxd goes through :func:`advance`, which checks it
against the transition tables below.  The tables are the documentation: read
them to know what can happen to a fax or a job; ``faxd inbox`` and ``faxd jobs``
show the state names verbatim.

Inbound fax::

    listed ──► downloaded ──► delivered ──► done
       │            │   ▲           │
       │            ▼   │           │
       │          held ─┘           │
       ▼            │               ▼
     failed ◄───────┴───────────── (any non-final state after max_attempts)
       │
       └──► listed / downloaded   (faxd retry)

Outbound job::

    queued ──► submitting ──► submitted ──► sent
      ▲  │          │   │           │
      │  │          │   └──► queued (POST certainly never reached FAXAGE)
      │  ▼          ▼               ▼
      └─ failed ◄───┴───────────── failed
      └─ cancelled ◄── queued / submitted (faxd cancel)
"""

from __future__ import annotations

import enum
from typing import Protocol, TypeVar


class FaxState(enum.StrEnum):
    LISTED = "listed"  # seen in listfax and committed; not yet in the spool
    DOWNLOADED = "downloaded"  # verified copy in the spool; actions may be running
    HELD = "held"  # no route matches and there is no default route: kept on FAXAGE
    DELIVERED = "delivered"  # every action succeeded; delfax still to do
    DONE = "done"  # deleted on FAXAGE (or kept there on purpose); spool file removed
    FAILED = "failed"  # gave up after max_attempts; kept on FAXAGE; `faxd retry` revives


class DeliveryState(enum.StrEnum):
    PENDING = "pending"
    DONE = "done"


class JobState(enum.StrEnum):
    QUEUED = "queued"  # file is in the spool, waiting for sendfax
    SUBMITTING = "submitting"  # committed before the POST; reconcile on restart
    SUBMITTED = "submitted"  # the provider took it (id recorded when known); following status
    SENT = "sent"  # the provider reported success; file is in sent_folder
    FAILED = "failed"  # rejected, refused or reported failed; file in failed_folder
    CANCELLED = "cancelled"  # stopped with stopfax or before submission


FAX_TRANSITIONS: dict[FaxState, frozenset[FaxState]] = {
    FaxState.LISTED: frozenset({FaxState.DOWNLOADED, FaxState.FAILED, FaxState.DONE}),
    FaxState.DOWNLOADED: frozenset(
        {FaxState.DELIVERED, FaxState.HELD, FaxState.FAILED, FaxState.LISTED}
    ),
    FaxState.HELD: frozenset({FaxState.DOWNLOADED, FaxState.FAILED, FaxState.LISTED}),
    FaxState.DELIVERED: frozenset({FaxState.DONE, FaxState.FAILED}),
    FaxState.DONE: frozenset(),
    FaxState.FAILED: frozenset({FaxState.LISTED, FaxState.DOWNLOADED, FaxState.DELIVERED}),
}

JOB_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.QUEUED: frozenset({JobState.SUBMITTING, JobState.FAILED, JobState.CANCELLED}),
    JobState.SUBMITTING: frozenset({JobState.SUBMITTED, JobState.QUEUED, JobState.FAILED}),
    JobState.SUBMITTED: frozenset({JobState.SENT, JobState.FAILED, JobState.CANCELLED}),
    JobState.SENT: frozenset(),
    JobState.FAILED: frozenset({JobState.QUEUED}),
    JobState.CANCELLED: frozenset({JobState.QUEUED}),
}

#: States in which a fax still needs work from the poller.
FAX_ACTIVE = frozenset({FaxState.LISTED, FaxState.DOWNLOADED, FaxState.DELIVERED})
#: States in which a job still needs work from the submitter or follow-up.
JOB_ACTIVE = frozenset({JobState.QUEUED, JobState.SUBMITTING, JobState.SUBMITTED})


class IllegalTransition(Exception):
    """A programming error: code tried a state change the tables forbid."""


class _HasState(Protocol):
    state: str


S = TypeVar("S", FaxState, JobState)


def advance(row: _HasState, new: S) -> None:
    """Move ``row`` (an InboundFax or OutboundJob) to state ``new``, or raise.

    Staying in the same state is always allowed (a retry of the same step).
    """
    table: dict[FaxState, frozenset[FaxState]] | dict[JobState, frozenset[JobState]]
    if isinstance(new, FaxState):
        current: FaxState | JobState = FaxState(row.state)
        table = FAX_TRANSITIONS
    else:
        current = JobState(row.state)
        table = JOB_TRANSITIONS
    if current != new and new not in table[current]:  # type: ignore[index]
        raise IllegalTransition(f"{type(row).__name__}: {current.value} -> {new.value}")
    row.state = new.value
