"""pytest fixtures: a real MLflow tracking server (session) and a webhook receiver (function).

The launcher and the receiver live in hera_flows/local/mlflow_server.py (the demo uses them too).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from hera_flows.local.mlflow_server import (  # noqa: F401 - re-exported for tests
    MlflowServer,
    ReceivedRequest,
    WebhookReceiver,
    start_mlflow_server,
    stop_mlflow_server,
)
from hera_flows.local.processes import free_port  # noqa: F401 - re-exported for tests

if TYPE_CHECKING:
    from mlflow import MlflowClient


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real MLflow tracking server for the whole test session (start-up takes a few seconds)."""
    server = start_mlflow_server(tmp_path_factory.mktemp("mlflow-server"))
    try:
        yield server
    finally:
        stop_mlflow_server(server)


@pytest.fixture()
def mlflow_client(mlflow_server: MlflowServer) -> MlflowClient:
    return mlflow_server.client()


@pytest.fixture()
def webhook_receiver() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    try:
        yield receiver
    finally:
        receiver.close()
