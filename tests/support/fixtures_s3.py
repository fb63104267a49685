"""pytest fixtures: a real S3-compatible server (SeaweedFS, session) and a fresh bucket per test.

The launcher lives in hera_flows/local/s3_server.py (the benchmarks use it too).
"""

from __future__ import annotations

from collections.abc import Iterator
from secrets import token_hex

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
