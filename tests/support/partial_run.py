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


def dag_tasks(template: dict[str, Any]) -> list[dict[str, Any]]:
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    return templates[template["spec"]["entrypoint"]]["dag"]["tasks"]


def run_tasks(
    generated: Path,
    template_name: str,
    *,
    run: list[str],
    upstream: dict[str, dict[str, str]],
    secrets: dict[str, dict[str, str]],
    workdir: Path,
    parameters: dict[str, str] | None = None,
) -> tuple[dict[str, TaskResult], Path]:
    """Run the DAG tasks named in ``run`` (in DAG order) after seeding ``upstream`` task -> outputs."""
    path = generated / "generated" / "workflowtemplates" / f"{template_name}.yaml"
    template = yaml.safe_load(path.read_text(encoding="utf-8"))
    params = {p["name"]: str(p.get("value", "")) for p in template["spec"].get("arguments", {}).get("parameters", [])}
    params.update(parameters or {})
    local = LocalRun(template, params, secrets, workdir, echo=False, state_dir=workdir / "state")
    return local.run_tasks(run, upstream=upstream), workdir
