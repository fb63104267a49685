"""pytest fixtures for the KServe model-server stand-in (the stand-in itself: hera_flows/local/standins/kserve.py)."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from hera_flows.local.standins.kserve import KServeStandIn, RecordedRequest, start_kserve  # noqa: F401


@pytest.fixture
def kserve_server() -> Any:
    """A running KServe stand-in serving the model ``fraud-detector``; tweak its attributes per test."""
    state, stop = start_kserve()
    try:
        yield state
    finally:
        stop()


@pytest.fixture
def kserve_unreachable_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (the port was free a moment ago)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
