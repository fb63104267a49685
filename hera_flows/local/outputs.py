"""What a local run produces and how it is reported.

The records (``TaskResult`` per task, ``RunResult`` per run), the outputs Argo derives from tasks: a DAG template's
output parameters (``dag_outputs``) and a fanned-out task's aggregated ones (``aggregate``), and the summary
``hera-flows run`` prints (``report``). Kept apart so scheduling, pods and the entry module share one definition of
what a result is.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hera_flows.local.errors import RunError
from hera_flows.local.substitution import go_json, substitute


@dataclass
class TaskResult:
    name: str
    phase: str  # Succeeded | Failed | Skipped | Omitted
    outputs: dict[str, str] = field(default_factory=dict)
    message: str = ""
    attempts: int = 0
    log: str = ""
    seconds: float = 0.0
    children: list[TaskResult] = field(default_factory=list)  # the tasks of a DAG template it ran
    artifacts: dict[str, str] = field(default_factory=dict)  # output artifact -> object key in the repository


@dataclass
class RunResult:
    workflow_name: str
    phase: str
    tasks: dict[str, TaskResult]
    outputs: dict[str, str]
    parameters: dict[str, str]
    workdir: Path
    synchronization: list[str] = field(default_factory=list)  # the locks it took, names resolved
    exit_handler: TaskResult | None = None  # spec.onExit, run after the entrypoint whatever its outcome
    # Deleting the Workflow: Argo's artifact GC (spec.artifactGC) deletes every output the run stored, as its GC pod
    # would (ArtifactStore.delete); returns the objects deleted. None: no artifact GC for this workflow.
    delete_artifacts: Callable[[], int] | None = field(default=None, repr=False, compare=False)

    @property
    def message(self) -> str:
        failed = [t for t in self.tasks.values() if t.phase == "Failed"]
        return failed[0].message if failed else ""


def dag_outputs(dag: dict[str, Any], scope: dict[str, str]) -> dict[str, str]:
    """A DAG template's output parameters (``valueFrom.parameter``, substituted in the DAG's final scope; the
    ``default`` when it does not resolve)."""
    outputs: dict[str, str] = {}
    for param in dag.get("outputs", {}).get("parameters", []):
        value_from = param.get("valueFrom", {})
        try:
            outputs[param["name"]] = substitute(value_from.get("parameter", ""), scope, where="outputs")
        except RunError:
            outputs[param["name"]] = value_from.get("default", "")
    return outputs


def aggregate(outputs: list[dict[str, str]]) -> dict[str, str]:
    """Argo's aggregation of a fanned-out task's output parameters (``aggregatedJsonValueList``): per name, a JSON
    list of the values in item order — parsed values when every value is JSON, otherwise the strings."""
    names = sorted({name for out in outputs for name in out})
    aggregated: dict[str, str] = {}
    for name in names:
        values = [out[name] for out in outputs if name in out]
        try:
            aggregated[name] = go_json([json.loads(v) for v in values])
        except json.JSONDecodeError:
            aggregated[name] = go_json(values)
    return aggregated


def last_line(log: str) -> str:
    """The last non-blank line of a log: a failed container's message."""
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


MAX_REPORTED_CHILDREN = 20


def _task_lines(task: TaskResult, depth: int) -> list[str]:
    """A task, the tasks it ran (a DAG's tasks, a fan-out's items; at most MAX_REPORTED_CHILDREN each) and what a
    DAG or fan-out returned."""
    pad = "  " * depth
    width = 10 if depth == 1 else 12
    lines = [f"{pad}{task.name:<{width}} {task.phase:<10} {task.message}"]
    for child in task.children[:MAX_REPORTED_CHILDREN]:
        lines += _task_lines(child, depth + 1)
    if len(task.children) > MAX_REPORTED_CHILDREN:
        lines.append(f"{pad}  ... {len(task.children) - MAX_REPORTED_CHILDREN} more")
    if task.children:
        for key, value in task.outputs.items():
            lines.append(f"{pad}  output {key}: {value}")
    return lines


def report(result: RunResult) -> list[str]:
    """The lines ``hera-flows run`` prints after a run: the workflow's phase, each task (and a referenced DAG's
    tasks and outputs, a fan-out's items), the exit handler, the locks, the outputs and where the files are."""
    lines = [f"workflow {result.workflow_name}: {result.phase}"]
    for task in result.tasks.values():
        lines += _task_lines(task, 1)
    if result.exit_handler is not None:
        handler = result.exit_handler
        lines.append(f"  {'onExit':<10} {handler.phase:<10} {handler.message}")
        for child in handler.children:
            lines.append(f"    {child.name:<12} {child.phase:<10} {child.message}")
    for lock in result.synchronization:
        lines.append(f"  {lock} (held for the run; free locally)")
    for key, value in result.outputs.items():
        if value:
            lines.append(f"  output {key}: {value}")
    lines.append(f"  files: {result.workdir}")
    return lines
