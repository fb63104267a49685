"""The builtin failure-triage editor: a clear-cut fix to the pipeline's WorkflowTemplate, or an issue.

Repository layout it expects: the WorkflowTemplate YAML files under ``--pipelines-dir`` (any depth, ``*.yaml`` /
``*.yml``, several documents per file allowed); the one whose ``metadata.name`` is the failed workflow's
template is edited. Fixes, each a surgical text edit (``yaml_patch``: comments and layout survive):

- ``oom``: ``resources.limits.memory`` of each failing template x ``--memory-factor`` (rounded up to a whole
  Mi), never above ``--memory-cap``; no limit to raise, or already at the cap -> issue;
- ``image-pull``: the failing template's image is replaced by the configured known-good reference of its
  repository (``--images``, JSON {repository: reference}); a repository without one -> issue. Deterministic: no
  registry is queried;
- ``infrastructure``, ``preemption`` and ``network`` (a reclaimed node, a flaky dependency): a ``retryStrategy``
  (limit, ``retryPolicy: Always``, backoff with factor and cap) on each failing template that has none; one that
  already retries -> issue;
- ``eviction`` (evicted for node memory pressure while using more than it requested): the failing template's
  ``resources.requests.memory`` set to its memory limit (the pod is then never a preferred eviction victim); no
  limit to copy, or the request already equals it -> issue;
- ``distributed`` whose cause is shared memory (a DataLoader's workers exhausted the pod's 64Mi ``/dev/shm``): a
  memory-backed ``emptyDir`` (``sizeLimit`` ``--shm-size-limit``) added to the failing template's ``volumes`` and
  mounted at ``/dev/shm`` in its container; one that already mounts something there -> issue.

A Kubeflow Pipelines run (context ``source: kubeflow``) has no WorkflowTemplate: the OOM, image-pull and retry
fixes go to its compiled pipeline spec (the IR YAML, also a v2 component's format) under ``--pipelines-dir``,
found by ``pipelineInfo.name`` (kfp.py): the executor container's ``resources.resourceMemoryLimit`` (and the older
``memoryLimit`` the SDK writes beside it), its ``image``, or the task's ``retryPolicy``; other classes become an
issue. A Flyte execution (``source: flyte``) is Python code (flytekit ``@task`` resources): always an issue.

Every other class (``gpu-oom``, ``distributed`` over NCCL/Gloo, ``permissions`` — the issue names the permission
the error shows missing —, ``dependency``, ``schema-drift``, ``data-missing``, ``code-bug``, ``gpu-unschedulable``,
``unschedulable``, ``timeout``, ``unknown``), and any fix that does not apply, writes ``<workspace>/issue.json``
({title, body, labels}) with the evidence, a remediation suggestion and the owner tagged; publish then pushes
nothing and review opens (or updates) the issue.
"""

from __future__ import annotations

import argparse
import json
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from hera_flows.steps.common import StepError
from hera_flows.steps.contract import Flag
from hera_flows.steps.markdown import inline_code
from hera_flows.steps.prompts import data_fence
from hera_flows.steps.triage import kfp
from hera_flows.steps.triage.classify import definitions_text
from hera_flows.steps.yaml_patch import (
    MISSING,
    YamlPatchError,
    append_item,
    find_document,
    format_path,
    read_value,
    set_values,
)

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}
_DECIMAL = {"k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "": 1}
_OWNER = re.compile(r"^@?[A-Za-z0-9][A-Za-z0-9-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
MAX_LOG_IN_ISSUE = 6000


@dataclass(frozen=True)
class TriageOptions:
    """The fixes' settings (patterns.failure_triage and its `fixes` in the configuration, the only defaults)."""

    pipelines_dir: str
    memory_factor: float
    memory_cap: str
    images: dict[str, str]
    retry_limit: int
    retry_backoff_seconds: int
    retry_factor: int
    retry_max_backoff_seconds: int
    shm_size_limit: str


@dataclass
class Outcome:
    changed: list[str] = field(default_factory=list)  # summary lines of applied edits
    problem: str = ""  # why no clear-cut fix applies (-> issue)
    file: str = ""


# The pattern's settings the editor, publish (writable paths) and the prompt read (filled from
# patterns.failure_triage and its `fixes`).
# what the prompt names that the code defines (hera_flows/steps/prompts.py pattern_constants)
PROMPT_CONSTANTS = {"class_definitions": definitions_text()}

SETTINGS = (
    Flag("pipelines-dir", "folder of the WorkflowTemplates, found by metadata.name"),
    Flag("memory-factor", "OOM: memory limit x this", kind=float),
    Flag("memory-cap", "OOM: never above this quantity"),
    Flag("images", "image-pull: repository -> known-good reference", form="json"),
    Flag("retry-limit", "infrastructure: retryStrategy limit", kind=int),
    Flag("retry-backoff-seconds", "infrastructure: first backoff", kind=int),
    Flag("retry-factor", "infrastructure: backoff factor", kind=int),
    Flag("retry-max-backoff-seconds", "infrastructure: backoff cap", kind=int),
    Flag("shm-size-limit", "shared memory: sizeLimit of the emptyDir mounted at /dev/shm"),
)


def writable_paths(repo: Path, context: dict[str, Any], settings: argparse.Namespace) -> list[str]:
    """Triage may change the failed workflow's own WorkflowTemplate (or KFP pipeline spec) file, nothing else."""
    pipelines_dir = options(settings).pipelines_dir
    workflow = context.get("workflow") or {}
    if context.get("source") == "kubeflow":
        spec = kfp.find_spec(repo, pipelines_dir, str(workflow.get("pipeline") or ""))
        return [spec[0].relative_to(repo).as_posix()] if spec is not None else []
    if context.get("source") == "flyte":
        return []
    found = find_template(repo, pipelines_dir, workflow.get("template", ""))
    return [found[0].relative_to(repo).as_posix()] if found is not None else []


def builtin_edit(repo: Path, context: dict[str, Any], settings: argparse.Namespace) -> str:
    return triage(repo, context, options(settings))


def options(args: argparse.Namespace) -> TriageOptions:
    images = args.images
    if not isinstance(images, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in images.items()):
        raise StepError("--images must be a JSON object {repository: reference}")
    return TriageOptions(args.pipelines_dir, args.memory_factor, args.memory_cap, images, args.retry_limit,
                         args.retry_backoff_seconds, args.retry_factor, args.retry_max_backoff_seconds,
                         args.shm_size_limit)


def triage(repo: Path, context: dict[str, Any], options: TriageOptions) -> str:
    """Edit the repository or write ``issue.json`` next to it; return the summary markdown."""
    classification = context.get("classification") or {}
    category = classification.get("category", "unknown")
    outcome = apply_fix(repo, context, options)
    if outcome.changed:
        return fix_summary(context, outcome)
    issue = issue_for(context, outcome.problem)
    (repo.parent / "issue.json").write_text(json.dumps(issue, ensure_ascii=False, indent=2), encoding="utf-8")
    return f"No clear-cut fix for this `{category}` failure: {outcome.problem}\n\nAn issue is opened for the owner.\n"


# ---------------------------------------------------------------------------------------------------------
# Finding the template


def find_template(repo: Path, pipelines_dir: str, name: str) -> tuple[Path, int, Any] | None:
    """(file, document index, data) of the WorkflowTemplate ``name`` under ``pipelines_dir``."""
    if not name:
        return None
    return find_document(repo / pipelines_dir, lambda doc: isinstance(doc, dict) and doc.get("kind") ==
                         "WorkflowTemplate" and (doc.get("metadata") or {}).get("name") == name)


RETRIED = ("infrastructure", "preemption", "network")  # a rerun is the fix
FIXED = ("oom", "image-pull", "eviction", *RETRIED)
KFP_FIXED = ("oom", "image-pull", *RETRIED)  # what a KFP pipeline spec can say (kfp.py)
SHM_VOLUME = "dshm"


def apply_fix(repo: Path, context: dict[str, Any], options: TriageOptions) -> Outcome:
    classification = context.get("classification") or {}
    category = classification.get("category", "unknown")
    if category == "distributed" and classification.get("cause") == "shared-memory":
        category = "shared-memory"
    elif category not in FIXED:
        return Outcome(problem=f"`{category}` failures need a person: hera-flows changes nothing for them")
    if context.get("source") == "flyte":
        return Outcome(problem="a Flyte workflow is Python code (flytekit `@task(requests=..., limits=..., "
                               "retries=...)`), not a manifest hera-flows can edit safely")
    if context.get("source") == "kubeflow":
        return apply_kfp_fix(repo, context, options, category)
    name = (context.get("workflow") or {}).get("template", "")
    if not name:
        return Outcome(problem="the workflow was not created from a WorkflowTemplate, so there is no pipeline "
                               "definition to change")
    found = find_template(repo, options.pipelines_dir, name)
    if found is None:
        return Outcome(problem=f"no WorkflowTemplate named {inline_code(name)} under "
                               f"{inline_code(options.pipelines_dir + '/')} in the repository")
    path, document, data = found
    rel = path.relative_to(repo).as_posix()
    failing = [t for t in context.get("failing_templates") or [] if isinstance(t, str)]
    templates = (data.get("spec") or {}).get("templates") or []
    indexes = [(i, t) for i, t in enumerate(templates) if isinstance(t, dict) and t.get("name") in failing]
    if not indexes:
        return Outcome(problem=f"the failing step template(s) {', '.join(map(inline_code, failing)) or '(none)'} "
                               f"are not in {inline_code(rel)}", file=rel)
    text = path.read_text(encoding="utf-8")
    if category == "shared-memory":
        return _mount_shared_memory(path, rel, text, document, indexes, options)
    edits: list[tuple[tuple[Any, ...], Any, str]] = []
    for index, template in indexes:
        body_key = "container" if "container" in template else "script" if "script" in template else None
        if category in RETRIED:
            if template.get("retryStrategy"):
                return Outcome(problem=f"template {inline_code(template['name'])} already has a retryStrategy; the "
                                       "failure persisted through its retries", file=rel)
            base: tuple[Any, ...] = ("spec", "templates", index, "retryStrategy")
            why = {"preemption": "the node was reclaimed: rerun the step with backoff",
                   "network": "a network dependency flaked: retry with backoff"}.get(
                       category, "infrastructure flake: retry with backoff")
            edits += [
                ((*base, "limit"), str(options.retry_limit), why),
                ((*base, "retryPolicy"), "Always", why),
                ((*base, "backoff", "duration"), f"{options.retry_backoff_seconds}s", why),
                ((*base, "backoff", "factor"), str(options.retry_factor), why),
                ((*base, "backoff", "cap"), f"{options.retry_max_backoff_seconds}s", why),
            ]
            continue
        if body_key is None:
            return Outcome(problem=f"template {inline_code(template['name'])} is not a container or script template",
                           file=rel)
        if category == "oom":
            limit_path = ("spec", "templates", index, body_key, "resources", "limits", "memory")
            current = read_value(data, limit_path)
            if not isinstance(current, (str, int)):
                return Outcome(problem=f"template {inline_code(template['name'])} has no memory limit to raise",
                               file=rel)
            new, problem = raise_memory(str(current), options.memory_factor, options.memory_cap)
            if problem:
                return Outcome(problem=problem, file=rel)
            edits.append((limit_path, new, f"OOMKilled at {current}: x{options.memory_factor:g} "
                                            f"(cap {options.memory_cap})"))
        elif category == "eviction":
            resources = ("spec", "templates", index, body_key, "resources")
            limit = read_value(data, (*resources, "limits", "memory"))
            request = read_value(data, (*resources, "requests", "memory"))
            if not isinstance(limit, (str, int)):
                return Outcome(problem=f"template {inline_code(template['name'])} has no memory limit to size its "
                                       "request from; set requests.memory to what the step uses", file=rel)
            if isinstance(request, (str, int)) and parse_quantity(str(request)) >= parse_quantity(str(limit)):
                return Outcome(problem=f"template {inline_code(template['name'])} already requests its whole memory "
                                       f"limit ({inline_code(str(limit))}); the node itself is too small", file=rel)
            edits.append(((*resources, "requests", "memory"), str(limit),
                          f"evicted under node memory pressure while above its request "
                          f"({'none' if request is MISSING or request is None else request}): request the limit"))
        elif category == "image-pull":
            image_path = ("spec", "templates", index, body_key, "image")
            current = read_value(data, image_path)
            if not isinstance(current, str):
                return Outcome(problem=f"template {inline_code(template['name'])} has no image", file=rel)
            problem, target = _known_good(current, options)
            if problem:
                return Outcome(problem=problem, file=rel)
            edits.append((image_path, target, f"image {current} cannot be pulled: pinned to the known-good reference"))
    return _apply_edits(repo, path, rel, document, edits)


def apply_kfp_fix(repo: Path, context: dict[str, Any], options: TriageOptions, category: str) -> Outcome:
    """The clear-cut fix in the KFP pipeline spec: per failing task, its executor container or its retryPolicy."""
    if category not in KFP_FIXED:
        return Outcome(problem=f"a Kubeflow pipeline spec has no clear-cut fix for `{category}` failures "
                               "(the pod spec KFP builds is not in it)")
    pipeline = str((context.get("workflow") or {}).get("pipeline") or "")
    found = kfp.find_spec(repo, options.pipelines_dir, pipeline)
    if found is None:
        return Outcome(problem="no Kubeflow pipeline spec with `pipelineInfo.name` "
                               f"{inline_code(pipeline or '(none)')} "
                               f"under {inline_code(options.pipelines_dir + '/')} in the repository")
    path, document, data = found
    rel = path.relative_to(repo).as_posix()
    tasks = [t for t in (context.get("kubeflow") or {}).get("failing_tasks") or [] if isinstance(t, str)]
    edits: list[tuple[tuple[Any, ...], Any, str]] = []
    for task in tasks:
        paths = kfp.task_paths(data, task)
        if paths is None:
            return Outcome(problem=f"task {inline_code(task)} (or its container executor) is not in {inline_code(rel)}",
                           file=rel)
        task_path, container_path = paths
        if category in RETRIED:
            if read_value(data, (*task_path, "retryPolicy")) not in (MISSING, None):
                return Outcome(problem=f"task {inline_code(task)} already has a retryPolicy; the flake persisted "
                                       "through its retries", file=rel)
            base = (*task_path, "retryPolicy")
            why = "infrastructure flake: retry with backoff"
            edits += [
                ((*base, "maxRetryCount"), options.retry_limit, why),
                ((*base, "backoffDuration"), f"{options.retry_backoff_seconds}s", why),
                ((*base, "backoffFactor"), float(options.retry_factor), why),
                ((*base, "backoffMaxDuration"), f"{options.retry_max_backoff_seconds}s", why),
            ]
        elif category == "oom":
            resources = read_value(data, (*container_path, "resources"))
            resources = resources if isinstance(resources, dict) else {}
            current = resources.get("resourceMemoryLimit")
            legacy = resources.get("memoryLimit")
            if not isinstance(current, str) and isinstance(legacy, (int, float)) and not isinstance(legacy, bool):
                current = f"{legacy:g}G"  # what KFP's driver does with the float field (k8s.go getPodResource)
            if not isinstance(current, str) or not kfp.MEMORY.match(current):
                return Outcome(problem=f"task {inline_code(task)} has no memory limit to raise "
                                       "(`set_memory_limit` in the pipeline code)", file=rel)
            new, problem = raise_memory(current, options.memory_factor, options.memory_cap,
                                        decimal=is_decimal_quantity(current))
            if problem:
                return Outcome(problem=problem, file=rel)
            why = f"OOMKilled at {current}: x{options.memory_factor:g} (cap {options.memory_cap})"
            edits.append(((*container_path, "resources", "resourceMemoryLimit"), new, why))
            if legacy is not None:
                gigabytes = float(parse_quantity(new) / Decimal(10**9))
                edits.append(((*container_path, "resources", "memoryLimit"), round(gigabytes, 3), why))
        elif category == "image-pull":
            current = read_value(data, (*container_path, "image"))
            if not isinstance(current, str):
                return Outcome(problem=f"task {inline_code(task)} has no image", file=rel)
            problem, target = _known_good(current, options)
            if problem:
                return Outcome(problem=problem, file=rel)
            edits.append(((*container_path, "image"), target,
                          f"image {current} cannot be pulled: pinned to the known-good reference"))
    if not tasks:
        return Outcome(problem="the failing task of the run is not known (no failed executor node)", file=rel)
    return _apply_edits(repo, path, rel, document, edits)


def _known_good(current: str, options: TriageOptions) -> tuple[str, str]:
    """("", known-good reference) for ``current``'s repository, or (why not, "")."""
    repository = image_repository(current)
    target = options.images.get(repository)
    if not target:
        return (f"no known-good reference is configured for {inline_code(repository)} "
                "(failure_triage.fixes.images)"), ""
    if image_repository(target) != repository:
        return f"the configured reference {inline_code(target)} is not an image of {inline_code(repository)}", ""
    if target == current:
        return f"the template already uses the known-good {inline_code(target)}", ""
    return "", target


def _apply_edits(repo: Path, path: Path, rel: str, document: int,
                 edits: list[tuple[tuple[Any, ...], Any, str]]) -> Outcome:
    text = path.read_text(encoding="utf-8")
    try:
        new_text, changes = set_values(text, [(p, v) for p, v, _ in edits], document=document)
    except YamlPatchError as exc:
        return Outcome(problem=f"{inline_code(rel)} cannot be edited safely ({exc})", file=rel)
    if not changes:
        return Outcome(problem="the fix is already in the repository", file=rel)
    path.write_text(new_text, encoding="utf-8")
    reasons = {p: why for p, _, why in edits}
    lines = [f"`{format_path(c.path)}`: {inline_code('(none)' if c.old is MISSING else c.old)} -> "
             f"{inline_code(c.new)} ({reasons[c.path]})" for c in changes]
    return Outcome(changed=lines, file=rel)


def _mount_shared_memory(path: Path, rel: str, text: str, document: int, indexes: list[tuple[int, Any]],
                         options: TriageOptions) -> Outcome:
    """A memory-backed emptyDir at /dev/shm for each failing container template (PyTorch DataLoader workers pass
    batches through shared memory; a pod gets 64Mi of it unless a volume is mounted there)."""
    lines = []
    for index, template in indexes:
        name = inline_code(template["name"])
        if "container" not in template:
            return Outcome(problem=f"template {name} is not a container template", file=rel)
        mounts = template["container"].get("volumeMounts") or []
        if any(isinstance(m, dict) and str(m.get("mountPath", "")).rstrip("/") == "/dev/shm" for m in mounts):
            return Outcome(problem=f"template {name} already mounts a volume at `/dev/shm`; its size (or the "
                                   "DataLoader's num_workers) needs a person", file=rel)
        if any(isinstance(v, dict) and v.get("name") == SHM_VOLUME for v in template.get("volumes") or []):
            return Outcome(problem=f"template {name} already has a volume named {inline_code(SHM_VOLUME)}", file=rel)
        base: tuple[Any, ...] = ("spec", "templates", index)
        volume = {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": options.shm_size_limit}}
        try:
            text = append_item(text, (*base, "volumes"), volume, document=document)
            text = append_item(text, (*base, "container", "volumeMounts"),
                               {"name": SHM_VOLUME, "mountPath": "/dev/shm"}, document=document)
        except YamlPatchError as exc:
            return Outcome(problem=f"{inline_code(rel)} cannot be edited safely ({exc})", file=rel)
        lines.append(f"`{format_path((*base, 'volumes'))}`: + {inline_code(SHM_VOLUME)} (emptyDir, medium Memory, "
                     f"sizeLimit {inline_code(options.shm_size_limit)}) mounted at `/dev/shm` in {name}: the job ran "
                     "out of shared memory (64Mi in a pod by default)")
    path.write_text(text, encoding="utf-8")
    return Outcome(changed=lines, file=rel)


# ---------------------------------------------------------------------------------------------------------
# The rules


def parse_quantity(text: str) -> Decimal:
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P|)\s*", text)
    if not match:
        raise ValueError(f"{text!r} is not a memory quantity")
    try:
        number = Decimal(match.group(1))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a memory quantity") from None
    unit = match.group(2)
    return number * (_BINARY.get(unit) or _DECIMAL[unit])


def format_mebibytes(mib: int) -> str:
    return f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"


def raise_memory(current: str, factor: float, cap: str, *, decimal: bool = False) -> tuple[str, str]:
    """(new limit, "") or ("", why not). The new limit is a whole number of Mi (or Gi), at most ``cap``; with
    ``decimal`` (a limit written in decimal units, as KFP users write ``8G``) a whole number of M (or G)."""
    try:
        now, ceiling = parse_quantity(current), parse_quantity(cap)
    except ValueError as exc:
        return "", str(exc)
    if now >= ceiling:
        return "", f"the memory limit {inline_code(current)} is already at the configured cap {inline_code(cap)}"
    unit = _DECIMAL["M"] if decimal else _BINARY["Mi"]
    wanted = math.ceil(now * Decimal(str(factor)) / unit)
    capped = min(wanted, int(ceiling // unit))
    if decimal:
        return (f"{capped // 1000}G" if capped % 1000 == 0 else f"{capped}M"), ""
    return format_mebibytes(capped), ""


def is_decimal_quantity(text: str) -> bool:
    """``8G``, ``512M``, ``1000`` (decimal units) rather than ``8Gi``."""
    return not text.strip().endswith("i")


def image_repository(image: str) -> str:
    """``registry/ns/name:tag@sha256:...`` -> ``registry/ns/name``."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


# ---------------------------------------------------------------------------------------------------------
# Summary, PR and issue text


def _owner(context: dict[str, Any]) -> str:
    owner = str((context.get("workflow") or {}).get("owner") or "").strip()
    if not owner:
        return ""
    return ("@" + owner.lstrip("@")) if _OWNER.match(owner) else inline_code(owner)


def _facts(context: dict[str, Any]) -> list[str]:
    wf = context.get("workflow") or {}
    cls = context.get("classification") or {}
    source = context.get("source") or "argo"
    if source == "flyte":
        flyte = context.get("flyte") or {}
        lines = [
            f"- Flyte execution: {inline_code(wf.get('name', ''))} in project {inline_code(flyte.get('project', ''))}"
            f", domain {inline_code(flyte.get('domain', ''))}, phase {inline_code(wf.get('phase', ''))}",
            f"- Launch plan: {inline_code(flyte.get('launch_plan') or '(not in the event)')}",
            f"- Error: {inline_code(flyte.get('error_code') or '-')} "
            f"(kind {inline_code(flyte.get('error_kind') or '-')})",
        ]
        if flyte.get("url"):
            lines.append(f"- FlyteConsole: {flyte['url']}")
    elif source == "kubeflow":
        kubeflow = context.get("kubeflow") or {}
        lines = [
            f"- Kubeflow Pipelines run: {inline_code(kubeflow.get('run_name') or wf.get('name', ''))} "
            f"(run id {inline_code(kubeflow.get('run_id', ''))}), Workflow "
            f"{inline_code(wf.get('namespace', '') + '/' + wf.get('name', ''))}, "
            f"phase {inline_code(wf.get('phase', ''))}",
            f"- Pipeline: {inline_code(wf.get('pipeline') or '(unknown)')}"
            + (f" (recurring run {inline_code(kubeflow['recurring_run'])})" if kubeflow.get("recurring_run") else ""),
            f"- Failing task(s): {', '.join(map(inline_code, kubeflow.get('failing_tasks') or [])) or '-'}",
        ]
        if kubeflow.get("url"):
            lines.append(f"- Run in the KFP UI: {kubeflow['url']}")
    else:
        lines = [
            f"- Workflow: {inline_code(wf.get('namespace', '') + '/' + wf.get('name', ''))} "
            f"(uid {inline_code(wf.get('uid', ''))}), phase {inline_code(wf.get('phase', ''))}",
            f"- WorkflowTemplate: {inline_code(wf.get('template') or '(none)')}",
            f"- Failing step template(s): "
            f"{', '.join(map(inline_code, context.get('failing_templates') or [])) or '-'}",
        ]
    lines.append(f"- Class: **{cls.get('category', 'unknown')}** — {cls.get('means', '')}")
    return lines


def _evidence(context: dict[str, Any]) -> list[str]:
    lines = ["### Evidence", ""]
    lines += [f"- {inline_code(e)}" for e in (context.get("classification") or {}).get("evidence") or []] or ["- none"]
    return lines


def fix_summary(context: dict[str, Any], outcome: Outcome) -> str:
    lines = ["## Failure triage: clear-cut fix", "", *_facts(context), "", f"Changed `{outcome.file}`:", ""]
    lines += [f"- {line}" for line in outcome.changed]
    lines += ["", *_evidence(context)]
    owner = _owner(context)
    if owner:
        lines += ["", f"cc {owner}"]
    return "\n".join(lines) + "\n"


# What an access-denied error says was missing, by cloud and system (the first group is the permission).
_PERMISSION_SHAPES = (
    (re.compile(r"is not authorized to perform:? ([\w:*.-]+)(?: on resource:? \"?([^\s\"]+))?"), "AWS IAM action"),
    (re.compile(r"when calling the (\w+) operation"), "AWS API operation"),
    (re.compile(r"does not have ([\w.]+) access to (?:the )?([^.\n]+)"), "Google Cloud IAM permission"),
    (re.compile(r"Permission '([\w.]+)' denied(?: on resource (\S+))?"), "Google Cloud IAM permission"),
    (re.compile(r"cannot (\w+ resource \"[\w.-]+\")(?: in API group \"([^\"]*)\")?"), "Kubernetes RBAC"),
    (re.compile(r"(AuthorizationPermissionMismatch|AuthorizationFailure)"), "Azure Storage RBAC role"),
    (re.compile(r"Permission denied: '([^']+)'"), "file-system access to"),
)


def missing_permission(lines: list[str]) -> str:
    """The permission an access-denied error names, in words ('' when the evidence names none)."""
    for line in lines:
        for shape, kind in _PERMISSION_SHAPES:
            match = shape.search(line)
            if match:
                on = f" on {inline_code(match.group(2))}" if shape.groups > 1 and match.group(2) else ""
                return f"{kind} {inline_code(match.group(1))}{on}"
    return ""


def issue_for(context: dict[str, Any], problem: str) -> dict[str, Any]:
    wf = context.get("workflow") or {}
    cls = context.get("classification") or {}
    category = cls.get("category", "unknown")
    subject = wf.get("pipeline") or wf.get("template") or wf.get("name") or "pipeline"
    owner = _owner(context)
    lines = [f"## Training pipeline failure: {category}", ""]
    if owner:
        lines += [f"{owner}: a run of your pipeline failed and needs a look.", ""]
    lines += [*_facts(context), "", f"Why no automatic fix: {problem}", "", *_evidence(context), ""]
    if category == "permissions":
        evidence = [str(e) for e in cls.get("evidence") or []]
        named = missing_permission(evidence)
        lines += ["### Missing permission", "",
                  f"The error names the {named}: grant it to the workload's identity." if named else
                  "The error does not name the permission; the evidence above shows what was refused.", ""]
    lines += ["### Suggested remediation", "", str(cls.get("remediation", "")), ""]
    for pod in context.get("pods") or []:
        for container, entry in sorted((pod.get("logs") or {}).items()):
            tail = str((entry or {}).get("tail") or "")
            if not tail.strip():
                continue
            tail = tail[-MAX_LOG_IN_ISSUE:]
            fence = data_fence(tail)
            lines += [f"### Log tail of {inline_code(str(pod.get('step')) + '/' + container)}", "",
                      f"{fence}text", tail.rstrip("\n"), fence, ""]
    notes = context.get("notes") or []
    if notes:
        lines += ["### Notes", ""] + [f"- {inline_code(n)}" for n in notes] + [""]
    lines += ["_Opened by hera-flows failure triage. A repeated failure of this pipeline with the same class updates "
              "this issue._"]
    return {
        "title": f"[failure-triage] {subject}: {category} in {wf.get('name', '')}",
        "body": "\n".join(lines) + "\n",
        "labels": ["failure-triage", f"triage:{category}"],
    }
