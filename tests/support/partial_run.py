"""Run part of a generated WorkflowTemplate's DAG on the local runner, with the upstream tasks' outputs given.

The security tests exercise the agent -> publish -> review path of every pattern with hostile input; what the
guard and context steps would have produced (they need MLflow, a cluster, a signed webhook) is seeded here as
Succeeded task results, so the rest of the DAG runs exactly as generated: the same containers, arguments,
environment, secrets and output wiring the full run uses (`hera_flows.local.runner.LocalRun`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from hera_flows.local.runner import LocalRun, TaskResult


def dag_tasks(template: dict[str, Any], dag: str | None = None) -> list[dict[str, Any]]:
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    return templates[dag or template["spec"]["entrypoint"]]["dag"]["tasks"]


def run_tasks(
    generated: Path,
    template_name: str,
    *,
    run: list[str],
    upstream: dict[str, dict[str, str]],
    secrets: dict[str, dict[str, str]],
    workdir: Path,
    parameters: dict[str, str] | None = None,
    dag: str | None = None,
    inputs: dict[str, str] | None = None,
) -> tuple[dict[str, TaskResult], Path]:
    """Run the DAG tasks named in ``run`` (in DAG order) after seeding ``upstream`` task -> outputs; ``dag`` and
    ``inputs``: a DAG template other than the entrypoint (e.g. drift's per-key chain) and its input parameters."""
    path = generated / "generated" / "workflowtemplates" / f"{template_name}.yaml"
    template = yaml.safe_load(path.read_text(encoding="utf-8"))
    params = {p["name"]: str(p.get("value", "")) for p in template["spec"].get("arguments", {}).get("parameters", [])}
    params.update(parameters or {})
    local = LocalRun(template, params, secrets, workdir, echo=False, state_dir=workdir / "state")
    return local.run_tasks(run, upstream=upstream, dag=dag, inputs=inputs), workdir


def per_key(upstream: dict[str, dict[str, str]]) -> dict[str, Any]:
    """``run_tasks`` arguments for drift's per-key chain: what the guard decided for one key (its remediation
    item, ``upstream["guard"]``) becomes the chain's inputs; the other seeded tasks stay as they are."""
    from hera_flows.patterns.drift import ITEM_FIELDS, REMEDIATE_TEMPLATE

    rest = dict(upstream)
    guard = rest.pop("guard", {})
    return {"dag": REMEDIATE_TEMPLATE, "inputs": {name: guard.get(name, "") for name in ITEM_FIELDS},
            "upstream": rest}
