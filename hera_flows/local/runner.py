"""Run a generated WorkflowTemplate on this machine, the way Argo would run it in a cluster.

It reads the generated YAML (so it tests the wiring that ships): DAG tasks in dependency order with
`depends` and `when`, parameters and output parameters passed as Argo passes them (one substitution pass,
no re-evaluation of values), containerSets with their container dependencies, emptyDir volumes as local
folders, Secret references from a local secrets file, retryStrategy with the template's expression.
Fan-out: ``withParam`` (a JSON list) and ``withItems`` run the task once per item with ``{{item}}`` (and
``{{item.KEY}}`` for objects) substituted as Argo does — an object item as compact JSON with sorted keys — and
``tasks.X.outputs.parameters.Y`` becomes Argo's aggregated JSON list of the items' values (parsed values when
every value is JSON, else the strings). The workflow's ``parallelism`` bounds how many items run at once
(capped locally by HERA_FLOWS_LOCAL_PARALLELISM, default 2).
Each container's command runs as a local process (``hera-flows`` is this Python's package, and ``python`` /
``python3`` run with this Python: an image's interpreter is not pulled either; any other command must be on
PATH). Lease records go to files under the run's folder (HERA_FLOWS_STATE_DIR), not a cluster.

``templateRef`` tasks run the named template of another WorkflowTemplate — a generated one or one given with
``--template-file`` — inside this run, as Argo does: the task's arguments fill the referenced template's inputs
(their defaults apply), its outputs become the task's outputs, and ``{{workflow.*}}`` inside it is the *calling*
workflow's (the referenced WorkflowTemplate's own ``spec.arguments`` do not apply). Its local template names
resolve in its own WorkflowTemplate. Container, containerSet and DAG templates run; Argo resolves templateRef in
the workflow's namespace, so a template in another namespace, a ``clusterScope`` reference
(ClusterWorkflowTemplate) or another kind (steps, script, resource, ...) is a RunError before any task runs.
"""

from __future__ import annotations

import os
import re
import secrets as _random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import json

import yaml

from hera_flows.local.expressions import ExpressionError, evaluate
from hera_flows.local.sensor import SensorError, route_event

_REF = re.compile(r"{{\s*([^{}]+?)\s*}}")
# Tag prefixes Argo's submission validation resolves (and fails on when it cannot).
_VALIDATED_PREFIXES = ("item.", "steps.", "inputs.", "outputs.", "pod.", "workflow.", "tasks.")
TRANSIENT_EXIT = 75


class RunError(Exception):
    """The run cannot start (bad template, unknown parameter, missing secret file...)."""


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


@dataclass(frozen=True)
class LibraryTemplate:
    """A WorkflowTemplate a ``templateRef`` may name, and the file it came from (for messages)."""

    doc: dict[str, Any]
    source: Path


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

    @property
    def message(self) -> str:
        failed = [t for t in self.tasks.values() if t.phase == "Failed"]
        return failed[0].message if failed else ""


def _substitute(text: str, scope: dict[str, str], *, where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        key = match.group(1)
        if key not in scope:
            raise RunError(f"{where}: unable to resolve {{{{{key}}}}}")
        return scope[key]

    return _REF.sub(replace, text)


# Template kinds, in the order Argo checks them; the local runner runs the first three.
TEMPLATE_KINDS = ("container", "containerSet", "dag", "steps", "script", "resource", "suspend", "http", "plugin",
                  "data")
RUNNABLE_KINDS = ("container", "containerSet", "dag")


def _kind(template: dict[str, Any]) -> str:
    return next((k for k in TEMPLATE_KINDS if k in template), "unknown")


class LocalRun:
    def __init__(
        self,
        template: dict[str, Any],
        parameters: dict[str, str],
        secrets: dict[str, dict[str, str]],
        workdir: Path,
        *,
        echo: bool = True,
        backoff_scale: float = 0.01,
        state_dir: Path | None = None,
        library: dict[str, LibraryTemplate] | None = None,
        annotations: dict[str, str] | None = None,
    ):
        """``library``: the WorkflowTemplates ``templateRef`` tasks may name (see ``load_library``). With a
        library every reference is checked before the first task runs, as Argo checks them on submission; without
        one (``None``) a ``templateRef`` task that is reached is a RunError."""
        self.template = template
        self.spec = template["spec"]
        self.templates = {t["name"]: t for t in self.spec["templates"]}
        self.parameters = parameters
        self.secrets = secrets
        # Absolute: pods run in their own working folder, where a relative path would point elsewhere.
        self.workdir = workdir.resolve()
        self.echo = echo
        self.backoff_scale = backoff_scale
        self.library = library
        self.namespace = template["metadata"].get("namespace", "default")
        self.name = f"{template['metadata']['name']}-{_random.token_hex(3)}"
        self.uid = str(uuid.uuid4())
        self.deadline = time.monotonic() + int(self.spec.get("activeDeadlineSeconds", 3600))
        # Replay and cooldown records outlive a run, as Leases outlive workflows in a cluster.
        # Absolute for the same reason: a relative HERA_FLOWS_STATE_DIR (the default under `--generated .`)
        # would land in each pod's folder, and no cooldown would outlive its run.
        self.state_dir = (state_dir or self.workdir / "state").resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.children: dict[str, list[TaskResult]] = {}  # fanned-out task -> one result per item
        self.locks: list[str] = []
        self.status: str | None = None  # {{workflow.status}}, known once the entrypoint finished
        # metadata.annotations of the submitted Workflow (the Sensor writes event data there); a step reads its own
        # Workflow from <state>/workflows/<name>.json, as a guard reads it from the API in a cluster.
        self.annotations = dict(annotations or {})

    # -- scopes ---------------------------------------------------------------------------------------------
    def _global_scope(self) -> dict[str, str]:
        scope = {f"workflow.parameters.{k}": v for k, v in self.parameters.items()}
        scope.update(
            {
                "workflow.name": self.name,
                "workflow.uid": self.uid,
                "workflow.namespace": self.namespace,
            }
        )
        if self.status is not None:  # exit handlers only, as in Argo
            scope["workflow.status"] = self.status
        return scope

    def say(self, line: str) -> None:
        if self.echo:
            print(line, flush=True)

    # -- DAG ------------------------------------------------------------------------------------------------
    def execute(self) -> RunResult:
        entry = self.templates[self.spec["entrypoint"]]
        if "dag" not in entry:
            raise RunError("the local runner runs DAG entrypoints only")
        self._check_submission()
        self._record_workflow()
        if self.library is not None:
            self._check_references(entry, self.templates, where=self.template["metadata"]["name"], seen=set())
        scope = self._global_scope()
        self._synchronize(self.spec.get("synchronization"), scope, where="workflow")
        results, outputs = self._run_dag(entry, self.templates, scope)
        phase = "Failed" if any(r.phase == "Failed" for r in results.values()) else "Succeeded"
        exit_result = None
        if self.spec.get("onExit"):
            # Argo runs the exit handler whatever the entrypoint's outcome, with {{workflow.status}} set; a failing
            # exit handler turns a Succeeded workflow Failed (docs/upstream-facts.md#workflows-lifecycle).
            self.status = phase
            handler = self.templates[self.spec["onExit"]]
            self.say(f"[onExit] {self.spec['onExit']} (workflow.status={phase})")
            exit_result = self._run_any("onExit", handler, self.templates, {})
            if exit_result.phase == "Failed":
                phase = "Failed"
        return RunResult(self.name, phase, results, outputs, dict(self.parameters), self.workdir, list(self.locks),
                         exit_result)

    def _check_submission(self) -> None:
        """What `argo submit` refuses: a parameter value holding an unresolvable ``{{workflow.*}}``, ``{{inputs.*}}``
        ... reference (validation substitutes the real values, then resolves every tag with those prefixes), and an
        expression Argo would evaluate (docs/upstream-facts.md#workflows-substitution)."""
        known = self._global_scope()
        for name, value in self.parameters.items():
            for match in _REF.finditer(value):
                tag = match.group(1)
                if tag.startswith("="):
                    raise RunError(f"parameter {name}: Argo would evaluate the expression {{{{{tag[:60]}}}}} in its "
                                   "value; event data must not travel in parameters")
                if tag.startswith(_VALIDATED_PREFIXES) and tag not in known:
                    raise RunError(f"argo submit would refuse this Workflow: failed to resolve {{{{{tag[:80]}}}}} "
                                   f"(in the value of parameter {name})")

    def _record_workflow(self) -> None:
        folder = self.state_dir / "workflows"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.name}.json").write_text(json.dumps({"metadata": {
            "name": self.name, "namespace": self.namespace, "uid": self.uid, "annotations": self.annotations}}),
            encoding="utf-8")

    def _run_dag(
        self, dag: dict[str, Any], templates: dict[str, dict[str, Any]], scope: dict[str, str], *, prefix: str = ""
    ) -> tuple[dict[str, TaskResult], dict[str, str]]:
        """Run a DAG template's tasks in dependency order; return them (by task name) and the DAG's outputs.
        ``templates`` are the templates its ``template:`` names resolve in (those of its WorkflowTemplate)."""
        results: dict[str, TaskResult] = {}
        scope = dict(scope)
        pending = list(dag["dag"]["tasks"])
        while pending:
            progressed = False
            for task in list(pending):
                references = self._task_references(task)
                if any(ref not in results for ref in references):
                    continue
                pending.remove(task)
                progressed = True
                result = self._run_task(task, results, scope, templates, prefix=prefix)
                results[task["name"]] = result
                for key, value in result.outputs.items():
                    scope[f"tasks.{task['name']}.outputs.parameters.{key}"] = value
            if not progressed:
                raise RunError(f"tasks with unresolvable dependencies: {[t['name'] for t in pending]}")
        outputs: dict[str, str] = {}
        for param in dag.get("outputs", {}).get("parameters", []):
            value_from = param.get("valueFrom", {})
            try:
                outputs[param["name"]] = _substitute(value_from.get("parameter", ""), scope, where="outputs")
            except RunError:
                outputs[param["name"]] = value_from.get("default", "")
        return results, outputs

    @staticmethod
    def _task_references(task: dict[str, Any]) -> set[str]:
        if "depends" in task:
            return {m.group(1) for m in re.finditer(r"([A-Za-z0-9-]+)\.[A-Z][a-z]+", task["depends"])}
        return set(task.get("dependencies", []))

    def _run_task(
        self,
        task: dict[str, Any],
        results: dict[str, TaskResult],
        scope: dict[str, str],
        templates: dict[str, dict[str, Any]],
        *,
        prefix: str = "",
    ) -> TaskResult:
        name = prefix + task["name"]
        if "depends" in task:

            def phase_of(identifier: str) -> bool:
                task_name, _, phase = identifier.rpartition(".")
                return results[task_name].phase == phase

            if not evaluate(task["depends"], phase_of):
                self.say(f"[{name}] Omitted (depends: {task['depends']})")
                return TaskResult(name, "Omitted")
        elif any(results[d].phase not in ("Succeeded", "Skipped") for d in task.get("dependencies", [])):
            return TaskResult(name, "Omitted")
        if "when" in task:
            condition = _substitute(task["when"], scope, where=f"task {name} when")
            try:
                proceed = evaluate(condition, lambda ident: ident)
            except ExpressionError as exc:
                return TaskResult(name, "Failed", message=f"invalid when expression: {exc}")
            if not proceed:
                self.say(f"[{name}] Skipped (when: {condition})")
                return TaskResult(name, "Skipped")
        if "templateRef" in task:
            template, templates = self._resolve_reference(task["templateRef"], where=f"task {name}")
            ref = task["templateRef"]
            self.say(f"[{name}] templateRef {ref['name']}/{ref['template']} ({_kind(template)})")
        else:
            template = templates[task["template"]]
        if "withParam" in task or "withItems" in task:
            return self._run_fan_out(task, template, templates, scope, name)
        arguments = {
            p["name"]: self._rescanned(_substitute(str(p.get("value", "")), scope, where=f"task {name} arguments"))
            for p in task.get("arguments", {}).get("parameters", [])
        }
        return self._run_any(name, template, templates, arguments)

    def _rescanned(self, value: str) -> str:
        """Argo substitutes the globals again inside a value that was substituted in (the template, inputs
        included, is marshalled and passed through its engine once more): ``{{workflow.name}}`` inside event data
        becomes the workflow's name; anything else is left as it is."""
        known = self._global_scope()
        return _REF.sub(lambda m: known.get(m.group(1), m.group(0)), value)

    def _run_fan_out(self, task: dict[str, Any], template: dict[str, Any], templates: dict[str, dict[str, Any]],
                     scope: dict[str, str], name: str) -> TaskResult:
        """One run of ``template`` per item, ``parallelism`` at a time; outputs aggregated as Argo does."""
        if "withParam" in task:
            raw = _substitute(str(task["withParam"]), scope, where=f"task {name} withParam")
            try:
                items = json.loads(raw)
            except json.JSONDecodeError as exc:
                return TaskResult(name, "Failed", message=f"withParam value is not JSON: {exc.msg}")
            if not isinstance(items, list):
                return TaskResult(name, "Failed", message="withParam value must be a JSON list")
        else:
            items = list(task["withItems"])
        if not items:
            self.say(f"[{name}] Skipped (withParam/withItems expanded to no items)")
            return TaskResult(name, "Skipped", message="no items")

        def run_item(index: int, item: Any) -> TaskResult:
            item_scope = {**scope, **_item_scope(item)}
            child = f"{name}({index}:{_item_label(item)})"
            arguments = {
                p["name"]: _substitute(str(p.get("value", "")), item_scope, where=f"task {child} arguments")
                for p in task.get("arguments", {}).get("parameters", [])
            }
            return self._run_any(child, template, templates, arguments)

        workers = max(1, min(int(self.spec.get("parallelism") or 1), LOCAL_PARALLELISM, len(items)))
        if template.get("synchronization"):
            workers = 1  # a template-level lock admits one item at a time
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=workers) as pool:
            children = list(pool.map(run_item, range(len(items)), items))
        failed = [c for c in children if c.phase == "Failed"]
        outputs = _aggregate([c.outputs for c in children if c.phase == "Succeeded"])
        result = TaskResult(
            name, "Failed" if failed else "Succeeded", outputs=outputs,
            message=failed[0].message if failed else "", attempts=max(c.attempts for c in children),
            log="".join(c.log for c in children), seconds=time.monotonic() - started,
        )
        self.children[name] = children
        return result

    # -- templateRef ------------------------------------------------------------------------------------------
    def _resolve_reference(
        self, ref: dict[str, Any], *, where: str
    ) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
        """The referenced template and the templates of its WorkflowTemplate (where its own names resolve)."""
        target = f"{ref.get('name')}/{ref.get('template')}"
        if ref.get("clusterScope"):
            raise RunError(f"{where}: templateRef {target} has clusterScope: true; ClusterWorkflowTemplates are not "
                           "supported by the local runner (give a WorkflowTemplate copy with --template-file)")
        if self.library is None:
            raise RunError(f"{where}: templateRef {target}: no WorkflowTemplates were given to this run")
        entry = self.library.get(str(ref.get("name")))
        if entry is None:
            raise RunError(f"{where}: templateRef names WorkflowTemplate {ref.get('name')!r}, which is neither "
                           "generated nor in a --template-file (known: "
                           f"{', '.join(sorted(self.library)) or 'none'})")
        namespace = entry.doc["metadata"].get("namespace")
        if namespace and namespace != self.namespace:
            raise RunError(f"{where}: templateRef {target}: WorkflowTemplate {ref['name']!r} ({entry.source}) is in "
                           f"namespace {namespace!r}; Argo looks it up in the workflow's namespace {self.namespace!r} "
                           f"only, so apply it there")
        templates = {t["name"]: t for t in entry.doc["spec"].get("templates", [])}
        template = templates.get(str(ref.get("template")))
        if template is None:
            raise RunError(f"{where}: WorkflowTemplate {ref['name']!r} ({entry.source}) has no template "
                           f"{ref.get('template')!r} (it has: {', '.join(templates)})")
        if _kind(template) not in RUNNABLE_KINDS:
            raise RunError(f"{where}: templateRef {target} is a {_kind(template)} template; the local runner runs "
                           f"{', '.join(RUNNABLE_KINDS)} templates")
        return template, templates

    def _check_references(self, template: dict[str, Any], templates: dict[str, dict[str, Any]], *, where: str,
                          seen: set[int]) -> None:
        """Resolve every templateRef reachable from ``template`` before anything runs (as Argo does on submit):
        a missing or unsupported reference must not surface after the guard has already taken a cooldown."""
        if id(template) in seen or "dag" not in template:
            return
        seen.add(id(template))
        for task in template["dag"]["tasks"]:
            here = f"{where} task {task['name']}"
            if "templateRef" in task:
                child, child_templates = self._resolve_reference(task["templateRef"], where=here)
            elif task.get("template") in templates:
                child, child_templates = templates[task["template"]], templates
            else:
                raise RunError(f"{here}: no template named {task.get('template')!r}")
            self._check_references(child, child_templates, where=here, seen=seen)

    # -- templates ------------------------------------------------------------------------------------------
    def _run_any(self, name: str, template: dict[str, Any], templates: dict[str, dict[str, Any]],
                 arguments: dict[str, str]) -> TaskResult:
        if "dag" in template:
            return self._run_dag_template(name, template, templates, arguments)
        return self._run_template(name, template, arguments)

    def _run_dag_template(self, name: str, template: dict[str, Any], templates: dict[str, dict[str, Any]],
                          arguments: dict[str, str]) -> TaskResult:
        """A DAG run as one task (a templateRef to a team's pipeline): its tasks run under ``NAME.``, with
        ``{{inputs.parameters.*}}`` from the task's arguments and the calling workflow's ``{{workflow.*}}``."""
        inputs = _inputs(template, arguments)
        if isinstance(inputs, str):
            return TaskResult(name, "Failed", message=inputs)
        scope = {**self._global_scope(), **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        started = time.monotonic()
        self._synchronize(template.get("synchronization"), scope, where=f"task {name}")
        self.say(f"[{name}] running DAG {template['name']}")
        results, outputs = self._run_dag(template, templates, scope, prefix=f"{name}.")
        children = list(results.values())
        failed = [c for c in children if c.phase == "Failed"]
        result = TaskResult(
            name, "Failed" if failed else "Succeeded", outputs={} if failed else outputs,
            message=f"{failed[0].name}: {failed[0].message}" if failed else "",
            attempts=1, log="".join(c.log for c in children), seconds=time.monotonic() - started, children=children,
        )
        self.say(f"[{name}] {result.phase} ({result.seconds:.1f}s)" + (f": {result.message}" if result.message else ""))
        return result

    def _synchronize(self, sync: dict[str, Any] | None, scope: dict[str, str], *, where: str) -> None:
        """Report the locks Argo would take. Locally they are always free: one run executes one workflow and no
        other workflow of this process competes, so a mutex or semaphore never has to wait (two concurrent
        ``hera-flows run`` processes are not coordinated). A fanned-out template with a lock runs its items
        one at a time. An unresolvable lock name is a RunError, as it fails the workflow in Argo."""
        if not sync:
            return
        locks = [("mutex", m) for m in [*sync.get("mutexes", []), *([sync["mutex"]] if "mutex" in sync else [])]]
        locks += [("semaphore", s) for s in [*sync.get("semaphores", []),
                                            *([sync["semaphore"]] if "semaphore" in sync else [])]]
        for kind, lock in locks:
            if kind == "mutex":
                label = lock.get("name", "")
            else:
                ref = lock.get("configMapKeyRef") or lock.get("database") or {}
                label = "/".join(str(v) for v in (ref.get("name"), ref.get("key")) if v)
            label = _substitute(str(label), scope, where=f"{where} synchronization")
            self.locks.append(f"{kind} {label}")
            self.say(f"[{where}] {kind} {label}: acquired (free locally: nothing else runs in this process)")

    def _run_template(self, name: str, template: dict[str, Any], arguments: dict[str, str]) -> TaskResult:
        inputs = _inputs(template, arguments)
        if isinstance(inputs, str):
            return TaskResult(name, "Failed", message=inputs)
        self._synchronize(template.get("synchronization"),
                          {**self._global_scope(), **{f"inputs.parameters.{k}": v for k, v in inputs.items()}},
                          where=f"task {name}")
        strategy = template.get("retryStrategy") or {}
        limit = int(strategy.get("limit", 0)) if strategy else 0
        delay = _seconds(strategy.get("backoff", {}).get("duration", "0s"))
        factor = float(strategy.get("backoff", {}).get("factor", 1))
        attempt = 0
        started = time.monotonic()
        while True:
            attempt += 1
            self.say(f"[{name}] running" + (f" (attempt {attempt})" if attempt > 1 else ""))
            result = self._run_pod(name, template, inputs, attempt)
            result.attempts = attempt
            if result.phase == "Succeeded" or attempt > limit:
                break
            exit_code = result.outputs.pop("__exit_code__", "")
            if not self._should_retry(strategy, exit_code):
                break
            self.say(f"[{name}] failed with exit code {exit_code}; retrying (backoff {delay:.0f}s, scaled locally)")
            time.sleep(min(delay * self.backoff_scale, 2.0))
            delay *= factor
        result.outputs.pop("__exit_code__", None)
        result.seconds = time.monotonic() - started
        self.say(f"[{name}] {result.phase} ({result.seconds:.1f}s)" + (f": {result.message}" if result.message else ""))
        return result

    @staticmethod
    def _should_retry(strategy: dict[str, Any], exit_code: str) -> bool:
        expression = strategy.get("expression")
        if not expression:
            return strategy.get("retryPolicy", "OnFailure") in ("Always", "OnFailure")
        variables = {"lastRetry.exitCode": exit_code, "lastRetry.status": "Failed", "lastRetry.duration": "0"}
        return evaluate(expression, lambda ident: variables[ident])

    def _run_pod(self, name: str, template: dict[str, Any], inputs: dict[str, str], attempt: int) -> TaskResult:
        pod_dir = self.workdir / "pods" / f"{name}-{attempt}"
        volumes = {v["name"]: pod_dir / "volumes" / v["name"] for v in template.get("volumes", [])}
        for path in volumes.values():
            path.mkdir(parents=True, exist_ok=True)
        scope = {**self._global_scope(), **{f"inputs.parameters.{k}": v for k, v in inputs.items()}}
        log_parts: list[str] = []
        if "container" in template:
            containers = [dict(template["container"], name="main")]
            shared_mounts: list[dict[str, Any]] = []
        elif "containerSet" in template:
            containers = _ordered(template["containerSet"]["containers"])
            shared_mounts = template["containerSet"].get("volumeMounts", [])
        else:
            return TaskResult(name, "Failed", message="only container and containerSet templates run locally")
        mounts_of_main: dict[str, Path] = {}
        for container in containers:
            mounts = {m["mountPath"]: volumes[m["name"]] for m in [*shared_mounts, *container.get("volumeMounts", [])]}
            if container["name"] == "main":
                mounts_of_main = mounts
            code, log = self._run_container(name, container, scope, mounts)
            log_parts.append(log)
            if code != 0:
                message = _last_line(log) or f"container {container['name']} exited with {code}"
                # Argo takes a pod's exit code from its container named main; one that never ran reads as -1
                # (docs/upstream-facts.md#workflows-containerset).
                exit_code = str(code) if container["name"] == "main" else "-1"
                return TaskResult(
                    name, "Failed", outputs={"__exit_code__": exit_code}, message=message, log="".join(log_parts)
                )
        outputs: dict[str, str] = {}
        for param in template.get("outputs", {}).get("parameters", []):
            path = param.get("valueFrom", {}).get("path")
            if path is None:
                continue
            local = _map_path(path, mounts_of_main)
            if local is not None and local.is_file():
                outputs[param["name"]] = local.read_text(encoding="utf-8")
            elif "default" in param.get("valueFrom", {}):
                outputs[param["name"]] = param["valueFrom"]["default"]
            else:
                return TaskResult(name, "Failed", message=f"output {param['name']} was not written to {path}")
        return TaskResult(name, "Succeeded", outputs=outputs, log="".join(log_parts))

    def _run_container(
        self, task: str, container: dict[str, Any], scope: dict[str, str], mounts: dict[str, Path]
    ) -> tuple[int, str]:
        where = f"task {task} container {container['name']}"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(_map_path("/tmp", mounts) or self.workdir),
            "TMPDIR": str(_map_path("/tmp", mounts) or self.workdir),
            "HERA_FLOWS_STATE_DIR": str(self.state_dir),
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        if os.environ.get("KUBECONFIG"):  # steps that read the Kubernetes API (triage) use this cluster locally
            env["KUBECONFIG"] = os.environ["KUBECONFIG"]
        for item in container.get("envFrom", []):
            ref = item.get("secretRef")
            if ref:
                env.update(self._secret(ref["name"], None, optional=ref.get("optional", False), where=where))
        for item in container.get("env", []):
            if "value" in item:
                env[item["name"]] = _substitute(_rewrite(item["value"], mounts, bare_paths=True), scope, where=where)
            elif "secretKeyRef" in item.get("valueFrom", {}):
                ref = item["valueFrom"]["secretKeyRef"]
                value = self._secret(ref["name"], ref["key"], optional=ref.get("optional", False), where=where)
                if value:
                    env[item["name"]] = value[ref["key"]]
        command = [_substitute(c, scope, where=where) for c in container.get("command", [])]
        args = [_substitute(_rewrite(a, mounts), scope, where=where) for a in container.get("args", [])]
        if command[:1] == ["hera-flows"]:
            command = [sys.executable, "-m", "hera_flows", *command[1:]]
        elif command[:1] in (["python"], ["python3"]):
            command = [sys.executable, *command[1:]]
        elif command and shutil.which(command[0], path=env["PATH"]) is None:
            return 127, f"{where}: command {command[0]!r} is not available on this machine\n"
        cwd = _map_path(container["workingDir"], mounts) if container.get("workingDir") else self.workdir
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return 1, f"{where}: activeDeadlineSeconds exceeded\n"
        try:
            proc = subprocess.run(
                [*command, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=remaining, check=False
            )
        except subprocess.TimeoutExpired:
            return 1, f"{where}: activeDeadlineSeconds exceeded\n"
        log = proc.stdout + proc.stderr
        log_file = self.workdir / "logs" / f"{task}.{container['name']}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with log_file.open("a", encoding="utf-8") as handle:
            handle.write(log)
        if self.echo and log.strip():
            for line in log.rstrip().splitlines()[-15:]:
                print(f"    {container['name']}: {line}", flush=True)
        return proc.returncode, log

    def _secret(self, name: str, key: str | None, *, optional: bool, where: str) -> dict[str, str]:
        data = self.secrets.get(name)
        if data is None or (key is not None and key not in data):
            if optional:
                return {}
            what = f"secret {name!r}" + (f" key {key!r}" if key else "")
            raise RunError(f"{where}: {what} is missing (in a cluster the pod would not start); add it to --secrets")
        return dict(data) if key is None else {key: data[key]}


def _inputs(template: dict[str, Any], arguments: dict[str, str]) -> dict[str, str] | str:
    """The template's input parameters: the task's argument, else the template's value/default; or the error.
    Arguments the template does not declare are ignored, as in Argo."""
    inputs: dict[str, str] = {}
    for param in template.get("inputs", {}).get("parameters", []):
        if param["name"] in arguments:
            inputs[param["name"]] = arguments[param["name"]]
        elif "value" in param or "default" in param:
            inputs[param["name"]] = str(param.get("value", param.get("default")))
        else:
            return f"input parameter {param['name']} was not supplied"
    return inputs


LOCAL_PARALLELISM = max(1, int(os.environ.get("HERA_FLOWS_LOCAL_PARALLELISM", "2") or 2))


def _go_json(value: Any) -> str:
    """JSON as Go's encoding/json writes it: compact, object keys sorted, '<', '>' and '&' escaped."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _item_scope(item: Any) -> dict[str, str]:
    """``{{item}}`` (an object or list as JSON, a string as itself) and ``{{item.KEY}}`` for object items."""
    scope = {"item": item if isinstance(item, str) else _go_json(item)}
    if isinstance(item, dict):
        for key, value in item.items():
            scope[f"item.{key}"] = value if isinstance(value, str) else _go_json(value)
    return scope


def _item_label(item: Any) -> str:
    text = item if isinstance(item, str) else str(item.get("name", "")) if isinstance(item, dict) else _go_json(item)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:40] or "item"


def _aggregate(outputs: list[dict[str, str]]) -> dict[str, str]:
    """Argo's aggregation of a fanned-out task's output parameters (``aggregatedJsonValueList``): per name, a JSON
    list of the values in item order — parsed values when every value is JSON, otherwise the strings."""
    names = sorted({name for out in outputs for name in out})
    aggregated: dict[str, str] = {}
    for name in names:
        values = [out[name] for out in outputs if name in out]
        try:
            aggregated[name] = _go_json([json.loads(v) for v in values])
        except json.JSONDecodeError:
            aggregated[name] = _go_json(values)
    return aggregated


def _ordered(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done: list[dict[str, Any]] = []
    names: set[str] = set()
    pending = list(containers)
    while pending:
        ready = [c for c in pending if set(c.get("dependencies", [])) <= names]
        if not ready:
            raise RunError("containerSet dependencies form a cycle")
        for c in ready:
            pending.remove(c)
            done.append(c)
            names.add(c["name"])
    return done


# Flags whose value is a container path; other flag values (URLs, repository paths) are never rewritten.
PATH_FLAGS = ("--outputs=", "--workspace=")


def _rewrite(text: str, mounts: dict[str, Path], *, bare_paths: bool = False) -> str:
    """Map a literal container path to the local folder: the value of a path flag (``--outputs=/tmp/outputs``),
    and with ``bare_paths`` (env values) a whole value such as ``/workspace/prompt.md``. Commands are never
    rewritten: a local program path under /tmp must stay what it is."""
    for flag in PATH_FLAGS:
        if text.startswith(flag):
            mapped = _map_path(text[len(flag) :], mounts)
            return flag + str(mapped) if mapped is not None else text
    mapped = _map_path(text, mounts) if bare_paths and text.startswith("/") else None
    return str(mapped) if mapped is not None else text


def _map_path(path: str, mounts: dict[str, Path]) -> Path | None:
    for mount_path in sorted(mounts, key=len, reverse=True):
        if path == mount_path or path.startswith(mount_path + "/"):
            return mounts[mount_path] / path[len(mount_path) :].lstrip("/")
    return None


def _seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m|h)?", str(duration))
    if not match:
        return 0.0
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]


def _last_line(log: str) -> str:
    lines = [line for line in log.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


# ---------------------------------------------------------------------------------------------------------
# Entry points


def load_template(template: str, generated: Path) -> dict[str, Any]:
    path = Path(template)
    if not path.suffix:
        path = generated / "generated" / "workflowtemplates" / f"{template}.yaml"
    if not path.is_file():
        raise RunError(f"no WorkflowTemplate at {path} (run `make generate` first?)")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or doc.get("kind") != "WorkflowTemplate":
        raise RunError(f"{path} is not a WorkflowTemplate")
    return doc


def load_library(generated: Path, extra: Sequence[Path | str] = ()) -> dict[str, LibraryTemplate]:
    """The WorkflowTemplates a ``templateRef`` may name: the generated ones, then every WorkflowTemplate in the
    ``extra`` files (multi-document YAML) and folders (``*.yaml``/``*.yml`` below them; other kinds are ignored).
    A name defined twice with different content is an error: Argo would only ever see one of them."""
    library: dict[str, LibraryTemplate] = {}

    def add(file: Path, *, explicit: bool) -> None:
        try:
            docs = [d for d in yaml.safe_load_all(file.read_text(encoding="utf-8")) if isinstance(d, dict)]
        except yaml.YAMLError as exc:
            raise RunError(f"{file}: not YAML: {' '.join(str(exc).split())}") from None
        found = [d for d in docs if d.get("kind") == "WorkflowTemplate"]
        if explicit and not found:
            raise RunError(f"--template-file {file}: no WorkflowTemplate in it")
        for doc in found:
            name = str((doc.get("metadata") or {}).get("name", ""))
            if not name or not isinstance(doc.get("spec"), dict):
                raise RunError(f"{file}: a WorkflowTemplate needs metadata.name and spec")
            known = library.get(name)
            if known is not None and known.doc != doc:
                raise RunError(f"WorkflowTemplate {name!r} is defined twice, differently: {known.source} and {file}")
            library.setdefault(name, LibraryTemplate(doc, file))

    for file in sorted((generated / "generated" / "workflowtemplates").glob("*.yaml")):
        add(file, explicit=False)
    for item in extra:
        path = Path(item)
        if path.is_dir():
            for file in sorted(f for f in path.rglob("*") if f.suffix in (".yaml", ".yml") and f.is_file()):
                add(file, explicit=False)
        elif path.is_file():
            add(path, explicit=True)
        else:
            raise RunError(f"--template-file {path}: no such file or folder")
    return library


def load_sensors(generated: Path) -> list[dict[str, Any]]:
    folder = generated / "sensors"
    return [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.yaml"))]


def workflow_parameters(
    template: dict[str, Any],
    *,
    sensors: list[dict[str, Any]],
    event: str | None,
    overrides: dict[str, str],
) -> dict[str, str]:
    """The parameters Argo would give the workflow: template defaults, then the Sensor's mapping, then --set."""
    return submission(template, sensors=sensors, event=event, overrides=overrides)[0]


def submission(
    template: dict[str, Any],
    *,
    sensors: list[dict[str, Any]],
    event: str | None,
    overrides: dict[str, str],
) -> tuple[dict[str, str], dict[str, str]]:
    """The parameters and annotations of the Workflow Argo would run: template defaults, then what the Sensor
    maps from the event (parameters and annotations), then --set."""
    params = {p["name"]: str(p.get("value", "")) for p in template["spec"].get("arguments", {}).get("parameters", [])}
    annotations: dict[str, str] = {}
    if event is not None:
        workflow, _trigger = route_event(sensors, template["metadata"]["name"], event)
        for p in workflow["spec"]["arguments"]["parameters"]:
            if p["name"] not in params:
                raise RunError(f"the sensor sets parameter {p['name']!r} that the template does not declare")
            params[p["name"]] = p["value"]
        annotations = dict((workflow.get("metadata") or {}).get("annotations") or {})
    for key, value in overrides.items():
        if key not in params:
            raise RunError(f"unknown parameter {key!r}; the template declares: {', '.join(params)}")
        params[key] = value
    return params, annotations


def run_workflow(
    template_name: str,
    *,
    generated: Path,
    event: str | None = None,
    overrides: dict[str, str] | None = None,
    secrets: dict[str, dict[str, str]] | None = None,
    workdir: Path | None = None,
    state_dir: Path | None = None,
    echo: bool = True,
    extra_templates: Sequence[Path | str] = (),
) -> RunResult:
    """``extra_templates``: files or folders holding WorkflowTemplates that ``templateRef`` tasks name besides the
    generated ones (e.g. the team's training template behind ``drift-retrain``)."""
    template = load_template(template_name, generated)
    library = load_library(generated, extra_templates)
    params, annotations = submission(
        template, sensors=load_sensors(generated), event=event, overrides=dict(overrides or {})
    )
    workdir = workdir or Path(tempfile.mkdtemp(prefix="hera-flows-run-"))
    state_dir = state_dir or generated / ".hera-flows-local" / "state"
    return LocalRun(template, params, secrets or {}, workdir, echo=echo, state_dir=state_dir,
                    library=library, annotations=annotations).execute()


def run_command(args: Any) -> int:
    try:
        overrides = dict(_split_override(item) for item in args.overrides)
        secrets: dict[str, dict[str, str]] = {}
        if args.secrets:
            loaded = yaml.safe_load(Path(args.secrets).read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict) or not all(isinstance(v, dict) for v in loaded.values()):
                raise RunError(f"{args.secrets}: expected a mapping of secret name -> {{key: value}}")
            secrets = {str(k): {str(kk): str(vv) for kk, vv in v.items()} for k, v in loaded.items()}
        event = Path(args.event).read_text(encoding="utf-8") if args.event else None
        result = run_workflow(
            args.template,
            generated=Path(args.generated),
            event=event,
            overrides=overrides,
            secrets=secrets,
            workdir=Path(args.workdir) if args.workdir else None,
            state_dir=Path(args.state_dir) if args.state_dir else None,
            extra_templates=[Path(p) for p in getattr(args, "template_files", None) or []],
        )
    except (RunError, SensorError, ExpressionError, OSError, yaml.YAMLError) as exc:
        print(f"hera-flows run: {exc}", file=sys.stderr)
        return 2
    print()
    print(f"workflow {result.workflow_name}: {result.phase}")
    for task in result.tasks.values():
        print(f"  {task.name:<10} {task.phase:<10} {task.message}")
        for child in task.children:  # a referenced DAG's tasks, and what it returned
            print(f"    {child.name:<12} {child.phase:<10} {child.message}")
        if task.children:
            for key, value in task.outputs.items():
                print(f"    output {key}: {value}")
    if result.exit_handler is not None:
        handler = result.exit_handler
        print(f"  {'onExit':<10} {handler.phase:<10} {handler.message}")
        for child in handler.children:
            print(f"    {child.name:<12} {child.phase:<10} {child.message}")
    for lock in result.synchronization:
        print(f"  {lock} (held for the run; free locally)")
    for key, value in result.outputs.items():
        if value:
            print(f"  output {key}: {value}")
    print(f"  files: {result.workdir}")
    return 0 if result.phase == "Succeeded" else 1


def _split_override(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise RunError(f"--set expects KEY=VALUE, got {item!r}")
    return key, value
