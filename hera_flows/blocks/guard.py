"""The guard: the first task of every pattern. It authenticates and normalises the event, and decides
race-free whether this run proceeds (replay and cooldown records live in Kubernetes Leases)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hera.workflows import Container

from hera_flows.blocks import metrics, security
from hera_flows.blocks.step import SecretEnv, step_template
from hera_flows.catalog import Pattern
from hera_flows.config import Config
from hera_flows.steps.contract import GUARD_OUTPUTS

GUARD_TASK = "guard"
__all__ = ["GUARD_OUTPUTS", "GUARD_TASK", "guard_arguments", "guard_output", "guard_template", "proceeds"]


def guard_template(
    cfg: Config,
    pattern: Pattern,
    *,
    flags: Mapping[str, Any],
    claim_seconds: int,
    secrets: Sequence[SecretEnv] = (),
    service_account: str = security.GUARD_SA,
    step: str | None = None,
) -> Container:
    """The pattern's guard step (``<id>-guard``); ``flags`` are its own, the shared guard flags are added here.
    ``service_account`` lets a guard that must read more than Leases run as its own identity; ``claim_seconds``
    (the workflow's deadline) is how long its claims stay pending before they count as abandoned; ``step`` names
    another guard step of the pattern (one pattern, two event sources: the triage guard for Flyte)."""
    return step_template(
        cfg,
        name=GUARD_TASK,
        step=step or pattern.step_name("guard"),
        flags={"state_namespace": cfg.namespace, "claim_seconds": claim_seconds, **flags},
        secrets=list(secrets),
        network=True,
        service_account=service_account,
        metrics=metrics.guard_metrics(pattern.label),
    )


def guard_arguments(parameters: Sequence[str]) -> dict[str, str]:
    """The guard task's arguments: the workflow parameters it reads, and the run's identity."""
    return ({name: f"{{{{workflow.parameters.{name}}}}}" for name in parameters}
            | {"workflow-name": "{{workflow.name}}", "workflow-uid": "{{workflow.uid}}"})


def proceeds() -> str:
    """The `when` of the first task after the guard: skipped runs stop there and end Succeeded."""
    return f"'{{{{tasks.{GUARD_TASK}.outputs.parameters.decision}}}}' == 'proceed'"


def guard_output(name: str) -> str:
    return f"{{{{tasks.{GUARD_TASK}.outputs.parameters.{name}}}}}"
