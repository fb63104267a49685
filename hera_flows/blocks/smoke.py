"""The smoke-test block: validate the changed manifests and send one inference request to staging."""

from __future__ import annotations

import json

from hera.workflows import Container

from hera_flows.blocks.step import step_template
from hera_flows.config import Config, SmokeConfig

SMOKE_TASK = "smoke"


def smoke_template(cfg: Config, smoke: SmokeConfig) -> Container:
    flags = [
        f"--endpoint={smoke.endpoint}",
        f"--protocol={smoke.protocol}",
        f"--max-latency-ms={smoke.max_latency_ms}",
        f"--timeout-seconds={smoke.timeout_seconds}",
    ]
    if smoke.payload is not None:
        flags.append("--payload=" + json.dumps(smoke.payload, sort_keys=True, separators=(",", ":")))
    return step_template(
        cfg,
        name=SMOKE_TASK,
        step="smoke",
        flags=flags,
        inputs=["model-name", "files"],
        outputs=["result", "report"],
        network=True,
    )
