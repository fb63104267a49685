"""pytest fixtures: a real S3-compatible server (SeaweedFS, session) and a fresh bucket per test.

The launcher lives in hera_flows/local/s3_server.py (the benchmarks use it too).
"""

from __future__ import annotations

from collections.abc import Iterator
from secrets import token_hex
from typing import Any

import pytest

from hera_flows.local.s3_server import S3Server, start_s3_server, stop_s3_server


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS on 127.0.0.1 for the whole session, stopped with everything it started at the end."""
    server = start_s3_server(tmp_path_factory.mktemp("s3-server"))
    try:
        yield server
    finally:
        stop_s3_server(server)


@pytest.fixture()
def s3_bucket(s3_server: S3Server) -> str:
    """A new, empty bucket on the session's server."""
    name = f"hf-{token_hex(6)}"
    s3_server.client().create_bucket(Bucket=name)
    return name


def artifacts_section(server: S3Server, bucket: str) -> dict[str, Any]:
    """The configuration's ``artifacts`` section for ``bucket`` on the server (hera-flows generates the ConfigMap);
    the run's secrets need :func:`artifacts_secret`."""
    return {"repository": {"config_map": "hera-flows-artifacts", "key": "s3", "s3": {
        "endpoint": server.host, "bucket": bucket, "insecure": True,
        "access_key_secret": {"name": "s3-artifacts", "key": "accesskey"},
        "secret_key_secret": {"name": "s3-artifacts", "key": "secretkey"}}}}


def artifacts_secret(server: S3Server) -> dict[str, dict[str, str]]:
    """The Secret the repository of :func:`artifacts_section` names, as the local runner's secrets take it."""
    return {"s3-artifacts": {"accesskey": server.access_key, "secretkey": server.secret_key}}
