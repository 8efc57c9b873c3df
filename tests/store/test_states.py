"""states.advance(): the only way a fax or a job changes state, checked against the tables."""

from __future__ import annotations

from datetime import datetime

import pytest

from faxd.store.models import InboundFax, OutboundJob
from faxd.store.states import (
    FAX_TRANSITIONS,
    JOB_TRANSITIONS,
    FaxState,
    IllegalTransition,
    JobState,
    advance,
)

# Sorted: the transition tables hold sets, and test ids must not depend on the hash seed.
LEGAL_FAX = [
    (old, new)
    for old, targets in FAX_TRANSITIONS.items()
    for new in sorted(targets, key=lambda s: s.value)
]
ILLEGAL_FAX = [
    (old, new)
    for old in FaxState
    for new in FaxState
    if old != new and new not in FAX_TRANSITIONS[old]
]
LEGAL_JOB = [
    (old, new)
    for old, targets in JOB_TRANSITIONS.items()
    for new in sorted(targets, key=lambda s: s.value)
]
ILLEGAL_JOB = [
    (old, new)
    for old in JobState
    for new in JobState
    if old != new and new not in JOB_TRANSITIONS[old]
]


def _fax(state: FaxState) -> InboundFax:
    return InboundFax(
        account="acme@12345", remote_id="1", recvdate=datetime(2024, 5, 1, 9, 30), state=state.value
    )


def _job(state: JobState) -> OutboundJob:
    return OutboundJob(
        faxno="4158006052", source_name="a.pdf", spool_path="/s/a", state=state.value
    )


def test_every_state_has_a_row_in_the_tables() -> None:
    """No state is missing from its transition table (advance would KeyError on it)."""
    assert set(FAX_TRANSITIONS) == set(FaxState)
    assert set(JOB_TRANSITIONS) == set(JobState)


def test_the_tables_hold_the_documented_paths() -> None:
    """The happy paths and the retry paths of DESIGN.md are legal."""
    assert {
        (FaxState.LISTED, FaxState.DOWNLOADED),
        (FaxState.DOWNLOADED, FaxState.DELIVERED),
        (FaxState.DELIVERED, FaxState.DONE),
        (FaxState.FAILED, FaxState.LISTED),
    } <= set(LEGAL_FAX)
    assert {(JobState.QUEUED, JobState.SUBMITTING), (JobState.SUBMITTING, JobState.SUBMITTED),
            (JobState.SUBMITTED, JobState.SENT), (JobState.SUBMITTING, JobState.QUEUED),
            (JobState.SUBMITTED, JobState.CANCELLED)} <= set(LEGAL_JOB)  # fmt: skip


@pytest.mark.parametrize(("old", "new"), LEGAL_FAX, ids=lambda s: s.value)
def test_fax_legal_transition_changes_the_state(old: FaxState, new: FaxState) -> None:
    """A transition listed in FAX_TRANSITIONS moves the row to the new state's value."""
    fax = _fax(old)
    advance(fax, new)
    assert fax.state == new.value


@pytest.mark.parametrize(("old", "new"), ILLEGAL_FAX, ids=lambda s: s.value)
def test_fax_illegal_transition_raises_and_keeps_the_state(old: FaxState, new: FaxState) -> None:
    """A transition not in FAX_TRANSITIONS raises IllegalTransition naming both states."""
    fax = _fax(old)
    with pytest.raises(IllegalTransition, match=f"InboundFax: {old.value} -> {new.value}"):
        advance(fax, new)
    assert fax.state == old.value


@pytest.mark.parametrize(("old", "new"), LEGAL_JOB, ids=lambda s: s.value)
def test_job_legal_transition_changes_the_state(old: JobState, new: JobState) -> None:
    """A transition listed in JOB_TRANSITIONS moves the job to the new state's value."""
    job = _job(old)
    advance(job, new)
    assert job.state == new.value


@pytest.mark.parametrize(("old", "new"), ILLEGAL_JOB, ids=lambda s: s.value)
def test_job_illegal_transition_raises_and_keeps_the_state(old: JobState, new: JobState) -> None:
    """A transition not in JOB_TRANSITIONS raises IllegalTransition naming both states."""
    job = _job(old)
    with pytest.raises(IllegalTransition, match=f"OutboundJob: {old.value} -> {new.value}"):
        advance(job, new)
    assert job.state == old.value


def test_final_states_cannot_be_left() -> None:
    """A fax that is done and a job that was sent never change again."""
    with pytest.raises(IllegalTransition):
        advance(_fax(FaxState.DONE), FaxState.LISTED)
    with pytest.raises(IllegalTransition):
        advance(_job(JobState.SENT), JobState.QUEUED)


@pytest.mark.parametrize("state", list(FaxState), ids=str)
def test_a_fax_may_stay_in_its_state(state: FaxState) -> None:
    """Repeating a step (a retry) keeps the fax's state, even a final one."""
    fax = _fax(state)
    advance(fax, state)
    assert fax.state == state.value


@pytest.mark.parametrize("state", list(JobState), ids=str)
def test_a_job_may_stay_in_its_state(state: JobState) -> None:
    """Repeating a step (a retry) keeps the job's state, even a final one."""
    job = _job(state)
    advance(job, state)
    assert job.state == state.value
