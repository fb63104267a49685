"""pytest fixtures for the Kubernetes API stand-in (the stand-in itself: hera_flows/local/standins/kube.py).

``kube_api`` (the Lease store of the guards and GC) and ``triage_kube`` (what the triage steps read) are the same
stand-in, each test getting its own server; ``TriageKubeAPI`` is the name the triage tests type it with.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hera_flows.local.standins.kube import (  # noqa: F401 - re-exported for tests
    HugeLog,
    KubeStandIn,
    event,
    parse_selector,
    pod_for_node,
    selector_matches,
    status,
)

TriageKubeAPI = KubeStandIn


@pytest.fixture
def kube_api() -> Iterator[KubeStandIn]:
    """A Kubernetes API stand-in on 127.0.0.1 (free port); ``.api_client()`` gives a configured client."""
    with KubeStandIn() as api:
        yield api


@pytest.fixture
def triage_kube() -> Iterator[KubeStandIn]:
    """The same stand-in, seeded by the triage tests; ``.write_kubeconfig(path)`` for subprocesses."""
    with KubeStandIn() as api:
        yield api
