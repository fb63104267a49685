"""pytest fixture for the triage Kubernetes API stand-in (the stand-in itself: hera_flows/local/standins/kube.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hera_flows.local.standins.kube import (  # noqa: F401 - re-exported for tests
    HugeLog,
    TriageKubeAPI,
    event,
    pod_for_node,
    start_triage_kube,
)


@pytest.fixture
def triage_kube() -> Iterator[TriageKubeAPI]:
    """The Kubernetes API stand-in for the triage steps; ``.write_kubeconfig(path)`` for subprocesses."""
    api, stop = start_triage_kube()
    try:
        yield api
    finally:
        stop()
