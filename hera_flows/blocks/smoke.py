"""The smoke-test block: validate the changed manifests and send one inference request to staging."""

from __future__ import annotations

import json

from hera.workflows import Container

from hera_flows.blocks.step import step_template
from hera_flows.config import Config, SmokeConfig

SMOKE_TASK = "smoke"


def smoke_template(cfg: Config, smoke: SmokeConfig) -> Container:
    payload = None if smoke.payload is None else json.dumps(smoke.payload, sort_keys=True, separators=(",", ":"))
    return step_template(
        cfg,
        name=SMOKE_TASK,
        step="promotion-smoke",
        flags={"endpoint": smoke.endpoint, "protocol": smoke.protocol, "max_latency_ms": smoke.max_latency_ms,
               "timeout_seconds": smoke.timeout_seconds, "payload": payload,
               "verify_served_version": smoke.served_version.enabled,
               "served_version_format": smoke.served_version.format,
               "served_version_wait_seconds": smoke.served_version.wait_seconds,
               "served_version_required": smoke.served_version.required},
        network=True,
    )
