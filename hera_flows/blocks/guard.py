"""The guard: the first task of every pattern. It authenticates and normalises the event, and decides
race-free whether this run proceeds (replay and cooldown records live in Kubernetes Leases)."""

from __future__ import annotations

from collections.abc import Sequence

from hera.workflows import Container

from hera_flows.blocks import metrics, security
from hera_flows.blocks.step import SecretEnv, step_template
from hera_flows.config import Config

GUARD_TASK = "guard"
# Every guard writes these; patterns add their own normalised fields.
GUARD_OUTPUTS = ["decision", "reason", "dedupe-key", "branch", "event"]
# Identify the run to the lease store (holder, and owner reference for garbage collection).
RUN_IDENTITY = {"workflow-name": "{{workflow.name}}", "workflow-uid": "{{workflow.uid}}"}


def guard_template(
    cfg: Config,
    pattern: str,
    *,
    flags: list[str],
    inputs: list[str],
    outputs: list[str],
    secrets: Sequence[SecretEnv] = (),
    step: str = "guard",
    service_account: str = security.GUARD_SA,
    claim_seconds: int,
) -> Container:
    """``step`` is the pattern's guard step (``guard`` is promotion's; other patterns register their own);
    ``service_account`` lets a guard that must read more than Leases run as its own identity; ``claim_seconds``
    (the workflow's deadline) is how long its claims stay pending before they count as abandoned."""
    return step_template(
        cfg,
        name=GUARD_TASK,
        step=step,
        flags=[f"--pattern={pattern}", f"--state-namespace={cfg.namespace}", f"--claim-seconds={claim_seconds}",
               *flags],
        inputs=[*inputs, *RUN_IDENTITY],
        outputs=[*GUARD_OUTPUTS, *(o for o in outputs if o not in GUARD_OUTPUTS)],
        secrets=list(secrets),
        network=True,
        service_account=service_account,
        metrics=metrics.guard_metrics(pattern),
    )


def proceeds() -> str:
    """The `when` of the first task after the guard: skipped runs stop there and end Succeeded."""
    return f"'{{{{tasks.{GUARD_TASK}.outputs.parameters.decision}}}}' == 'proceed'"


def guard_output(name: str) -> str:
    return f"{{{{tasks.{GUARD_TASK}.outputs.parameters.{name}}}}}"
