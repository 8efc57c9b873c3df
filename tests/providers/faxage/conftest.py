"""Fixtures for the FAXAGE client tests: a scripted loopback server and a dead port."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from scripted_http import ScriptedServer


@pytest.fixture
def scripted() -> Iterator[ScriptedServer]:
    server = ScriptedServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def dead_url() -> str:
    """An address on loopback where nothing listens (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"
