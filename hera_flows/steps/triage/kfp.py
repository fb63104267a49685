"""Kubeflow Pipelines v2 runs: what KFP puts on the Argo Workflow of a run, and where its fix goes.

KFP's API server turns a run into an Argo Workflow with no WorkflowTemplate behind it (kubeflow/pipelines 2.17.0,
``backend/src/apiserver/template/v2_template.go`` and ``backend/src/v2/compiler/argocompiler/argo.go``; the
shared fixture ``kubeflow-pipelines/README.md`` lists every key):

- label ``pipeline/runid`` (the KFP run id, not ``metadata.uid``), annotation ``pipelines.kubeflow.org/run_name``;
- ``metadata.generateName`` = ``<pipelineInfo.name>-``: the only place the pipeline's name is (no label has it);
- a recurring run also carries ``scheduledworkflows.kubeflow.org/scheduledWorkflowName``;
- the node tree: per task a ``<task>`` DAG node (template ``system-container-executor``) whose child Pod node
  ``executor`` (template ``system-container-impl``) runs the user's container ``main``; a failed one carries
  Argo's ``main: Error (exit code N)``. The task's name is the executor's parent DAG node's ``displayName``.

A fix goes where KFP users keep their pipeline: the compiled pipeline spec (the IR YAML ``kfp.compiler`` writes,
also the format of a v2 component YAML) under ``pipelines_dir``, found by ``pipelineInfo.name``. Task ``T`` of the
root DAG -> ``root.dag.tasks.T.componentRef.name`` -> ``components.<ref>.executorLabel`` ->
``deploymentSpec.executors.<label>.container`` (``image``, ``resources``); the task's ``retryPolicy`` sits on the
task (``ml_pipelines.PipelineTaskSpec.RetryPolicy``: ``maxRetryCount``, ``backoffDuration``, ``backoffFactor``,
``backoffMaxDuration``). KFP's driver uses ``resources.resourceMemoryLimit`` (a quantity string) and ignores the
older ``memoryLimit`` (float, in G) when the string is set (``backend/src/v2/driver/k8s.go@8ff25eb6``
``getPodResource``); the SDK writes both, so a fix keeps both in step.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from hera_flows.steps.yaml_patch import find_document

RUN_ID_LABEL = "pipeline/runid"
RUN_NAME_ANNOTATION = "pipelines.kubeflow.org/run_name"
RECURRING_RUN_LABEL = "scheduledworkflows.kubeflow.org/scheduledWorkflowName"
EXECUTOR_TEMPLATE = "system-container-impl"
# The KFP SDK's own check of a memory request/limit (kfp/dsl/pipeline_task.py, _validate_memory_request_limit).
MEMORY = re.compile(r"^[0-9]+(E|Ei|P|Pi|T|Ti|G|Gi|M|Mi|K|Ki){0,1}$")
DURATION = re.compile(r"^[0-9]+(\.[0-9]+)?s$")  # protobuf JSON form of google.protobuf.Duration


def is_kfp_run(workflow: dict[str, Any]) -> bool:
    """A Workflow KFP's API server created for a run."""
    return bool(((workflow.get("metadata") or {}).get("labels") or {}).get(RUN_ID_LABEL))


def pipeline_name(workflow: dict[str, Any]) -> str:
    """``pipelineInfo.name`` of the run's pipeline: ``generateName`` without its trailing '-' (KFP names the
    Workflow ``<pipelineInfo.name>-<random>``); the recurring run's name or the Workflow's name otherwise."""
    metadata = workflow.get("metadata") or {}
    generate = str(metadata.get("generateName") or "")
    if generate.endswith("-") and len(generate) > 1:
        return generate[:-1]
    labels = metadata.get("labels") or {}
    return str(labels.get(RECURRING_RUN_LABEL) or metadata.get("name") or "")


def task_of(workflow: dict[str, Any], node: dict[str, Any]) -> str:
    """The KFP task a Pod node ran: for an ``executor`` Pod, its parent DAG node's ``displayName``."""
    if node.get("displayName") != "executor":
        return str(node.get("displayName") or "")
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    for candidate in nodes.values():
        if isinstance(candidate, dict) and candidate.get("type") == "DAG" \
                and node.get("id") in (candidate.get("children") or []):
            return str(candidate.get("displayName") or "")
    return "executor"


def run_facts(workflow: dict[str, Any]) -> dict[str, Any]:
    """What the context says about a KFP run (shown in the issue/PR and used to find the pipeline spec)."""
    metadata = workflow.get("metadata") or {}
    labels = metadata.get("labels") or {}
    return {
        "run_id": str(labels.get(RUN_ID_LABEL, "")),
        "run_name": str((metadata.get("annotations") or {}).get(RUN_NAME_ANNOTATION, "")),
        "pipeline": pipeline_name(workflow),
        "recurring_run": str(labels.get(RECURRING_RUN_LABEL, "")),
    }


def run_url(ui_url: str, run_id: str) -> str:
    """The run's page in the KFP UI (its hash route ``#/runs/details/<run id>``)."""
    return f"{ui_url.rstrip('/')}/#/runs/details/{run_id}" if ui_url and run_id else ""


# ---------------------------------------------------------------------------------------------------------
# The pipeline spec in the repository


def find_spec(repo: Path, pipelines_dir: str, pipeline: str) -> tuple[Path, int, dict[str, Any]] | None:
    """(file, document index, data) of the pipeline spec whose ``pipelineInfo.name`` is ``pipeline``."""
    if not pipeline:
        return None
    return find_document(repo / pipelines_dir, lambda doc: is_pipeline_spec(doc) and
                         (doc.get("pipelineInfo") or {}).get("name") == pipeline)


def is_pipeline_spec(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("pipelineInfo"), dict) and "root" in doc \
        and isinstance(doc.get("deploymentSpec"), dict)


def task_paths(spec: dict[str, Any], task: str) -> tuple[tuple[Any, ...], tuple[Any, ...]] | None:
    """(path of the task in its DAG, path of its executor's container) in ``spec``, or None.

    The task is looked up in the root DAG first, then in the DAGs of sub-pipelines (a task name is unique within
    its DAG; across DAGs the first match in sorted order is taken)."""
    components = spec.get("components") or {}
    dags: list[tuple[tuple[Any, ...], dict[str, Any]]] = [(("root",), spec.get("root") or {})]
    dags += [(("components", name), comp) for name, comp in sorted(components.items()) if isinstance(comp, dict)]
    for where, component in dags:
        tasks = ((component.get("dag") or {}).get("tasks")) or {}
        entry = tasks.get(task)
        if not isinstance(entry, dict):
            continue
        ref = (entry.get("componentRef") or {}).get("name")
        executor = (components.get(ref) or {}).get("executorLabel") if isinstance(ref, str) else None
        executors = (spec.get("deploymentSpec") or {}).get("executors") or {}
        if not isinstance(executor, str) or not isinstance((executors.get(executor) or {}).get("container"), dict):
            return None
        return (*where, "dag", "tasks", task), ("deploymentSpec", "executors", executor, "container")
    return None


def spec_problems(doc: dict[str, Any]) -> list[str]:
    """What KFP's API server or driver would reject in the fields a triage fix touches (image, memory, retry),
    plus the references that tie a task to its container."""
    found: list[str] = []
    executors = (doc.get("deploymentSpec") or {}).get("executors") or {}
    if not isinstance(executors, dict):
        return ["deploymentSpec.executors is not a mapping"]
    for label, executor in sorted(executors.items()):
        container = (executor or {}).get("container") if isinstance(executor, dict) else None
        if container is None:
            continue  # importer / resolver executors
        where = f"deploymentSpec.executors.{label}.container"
        if not isinstance(container, dict) or not isinstance(container.get("image"), str) or not container["image"]:
            found.append(f"{where}.image must be a non-empty string")
            continue
        resources = container.get("resources") or {}
        for key in ("resourceMemoryLimit", "resourceMemoryRequest"):
            value = resources.get(key)
            if value is not None and not (isinstance(value, str) and (MEMORY.match(value) or "{{" in value)):
                found.append(f"{where}.resources.{key} {value!r} is not a KFP memory quantity")
        for key in ("memoryLimit", "memoryRequest"):
            value = resources.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
                found.append(f"{where}.resources.{key} must be a number (G)")
    components = doc.get("components") or {}
    for name, component in [("root", doc.get("root") or {}), *sorted(components.items())]:
        tasks = ((component or {}).get("dag") or {}).get("tasks") or {} if isinstance(component, dict) else {}
        for task, entry in sorted(tasks.items()):
            ref = ((entry or {}).get("componentRef") or {}).get("name")
            if ref not in components:
                found.append(f"{name}: task {task} refers to unknown component {ref!r}")
            policy = (entry or {}).get("retryPolicy")
            if policy is None:
                continue
            where = f"{name}: task {task}.retryPolicy"
            count = policy.get("maxRetryCount") if isinstance(policy, dict) else None
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                found.append(f"{where}.maxRetryCount must be a non-negative integer")
            for key in ("backoffDuration", "backoffMaxDuration"):
                value = policy.get(key) if isinstance(policy, dict) else None
                if value is not None and not (isinstance(value, str) and DURATION.match(value)):
                    found.append(f"{where}.{key} {value!r} is not a duration like '30s'")
            factor = policy.get("backoffFactor") if isinstance(policy, dict) else None
            if factor is not None and (isinstance(factor, bool) or not isinstance(factor, (int, float))):
                found.append(f"{where}.backoffFactor must be a number")
    for name, component in sorted(components.items()):
        label = (component or {}).get("executorLabel") if isinstance(component, dict) else None
        if label is not None and label not in executors:
            found.append(f"components.{name}.executorLabel {label!r} has no executor")
    return found
