"""Fixtures for the VoIP.ms tests: the simulator on loopback and a client pointed at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from voipms_helpers import VOIPMS_PASSWORD, VOIPMS_USER

from faxd.providers.voipms.client import VoipmsClient
from faxd.providers.voipms.sim import VoipmsSimulator


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def voipms_sim() -> Iterator[VoipmsSimulator]:
    with VoipmsSimulator(VOIPMS_USER, VOIPMS_PASSWORD, settle_seconds=0.0) as sim:
        yield sim


@pytest.fixture
def voipms_client(voipms_sim: VoipmsSimulator, sleeps: list[float]) -> Iterator[VoipmsClient]:
    client = VoipmsClient(
        VOIPMS_USER,
        VOIPMS_PASSWORD,
        base_url=voipms_sim.base_url,
        timeout=5.0,
        retries=3,
        backoff=0.0,
        sleep=sleeps.append,
    )
    try:
        yield client
    finally:
        client.close()
