"""When and how often each task of a DAG runs, with Argo's semantics.

DAG tasks in dependency order with ``depends`` / ``dependencies`` and ``when`` (``run_dag``, ``run_task``);
``withParam`` / ``withItems`` fan-out, ``parallelism`` items at a time, with the outputs aggregated
(``run_fan_out``); DAG templates run as one task (a templateRef to a team's pipeline); ``retryStrategy`` with its
limit, backoff and expression (``run_template``, ``should_retry``); and the locks ``synchronization`` takes
(``synchronize``). Kept apart from the pods (how one attempt runs) and the entry module (how a run starts).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Protocol

from hera_flows.local.errors import RunError
from hera_flows.local.expressions import ExpressionError, evaluate
from hera_flows.local.outputs import TaskResult, aggregate, dag_outputs
from hera_flows.local.pods import PodContext, run_pod
from hera_flows.local.substitution import go_json, input_scope, item_scope, rescan, substitute
from hera_flows.local.templates import LibraryTemplate, kind, resolve_reference, template_inputs

LOCAL_PARALLELISM = max(1, int(os.environ.get("HERA_FLOWS_LOCAL_PARALLELISM", "2") or 2))


class RunContext(PodContext, Protocol):
    """What scheduling needs from the run (``LocalRun`` provides it)."""

    spec: dict[str, Any]
    backoff_scale: float
    library: dict[str, LibraryTemplate] | None
    namespace: str
    children: dict[str, list[TaskResult]]
    locks: list[str]

    def say(self, line: str) -> None: ...


def run_dag(
    run: RunContext,
    dag: dict[str, Any],
    templates: dict[str, dict[str, Any]],
    scope: dict[str, str],
    *,
    prefix: str = "",
) -> tuple[dict[str, TaskResult], dict[str, str]]:
    """Run a DAG template's tasks in dependency order; return them (by task name) and the DAG's outputs.
    ``templates`` are the templates its ``template:`` names resolve in (those of its WorkflowTemplate)."""
    results: dict[str, TaskResult] = {}
    scope = dict(scope)
    pending = list(dag["dag"]["tasks"])
    while pending:
        progressed = False
        for task in list(pending):
            references = task_references(task)
            if any(ref not in results for ref in references):
                continue
            pending.remove(task)
            progressed = True
            result = run_task(run, task, results, scope, templates, prefix=prefix)
            results[task["name"]] = result
            scope.update(task_scope(task["name"], result))
        if not progressed:
            raise RunError(f"tasks with unresolvable dependencies: {[t['name'] for t in pending]}")
    return results, dag_outputs(dag, scope)


def task_scope(name: str, result: TaskResult) -> dict[str, str]:
    """``{{tasks.NAME.outputs.parameters.KEY}}`` for a finished task's outputs, and
    ``{{tasks.NAME.outputs.artifacts.KEY}}`` (the object's key) for its output artifacts."""
    scope = {f"tasks.{name}.outputs.parameters.{key}": value for key, value in result.outputs.items()}
    scope.update({f"tasks.{name}.outputs.artifacts.{key}": value for key, value in result.artifacts.items()})
    return scope


def artifact_arguments(task: dict[str, Any], scope: dict[str, str], *, where: str) -> dict[str, str]:
    """A task's artifact arguments as object keys: ``from: {{tasks.X.outputs.artifacts.Y}}`` (an artifact that was
    not produced does not resolve: Argo fails the task), or a key-only ``s3.key``."""
    resolved: dict[str, str] = {}
    for artifact in task.get("arguments", {}).get("artifacts", []):
        if "from" in artifact:
            resolved[artifact["name"]] = substitute(str(artifact["from"]), scope, where=f"{where} artifacts")
        elif (artifact.get("s3") or {}).get("key"):
            resolved[artifact["name"]] = substitute(str(artifact["s3"]["key"]), scope, where=f"{where} artifacts")
        else:
            raise RunError(f"{where}: artifact argument {artifact.get('name')!r} has neither from nor s3.key; the "
                           "local runner passes artifacts between tasks and from key-only locations only")
    return resolved


def task_references(task: dict[str, Any]) -> set[str]:
    """The tasks a DAG task waits for (named in ``depends``, or its ``dependencies``)."""
    if "depends" in task:
        return {m.group(1) for m in re.finditer(r"([A-Za-z0-9-]+)\.[A-Z][a-z]+", task["depends"])}
    return set(task.get("dependencies", []))


def run_task(
    run: RunContext,
    task: dict[str, Any],
    results: Mapping[str, TaskResult],
    scope: dict[str, str],
    templates: dict[str, dict[str, Any]],
    *,
    prefix: str = "",
) -> TaskResult:
    """Run one DAG task whose dependencies are in ``results``: Omitted or Skipped as ``depends`` / ``when`` say,
    else its template (fanned out over ``withParam`` / ``withItems``) with its arguments substituted in ``scope``."""
    name = prefix + task["name"]
    if "depends" in task:

        def phase_of(identifier: str) -> bool:
            task_name, _, phase = identifier.rpartition(".")
            return results[task_name].phase == phase

        if not evaluate(task["depends"], phase_of):
            run.say(f"[{name}] Omitted (depends: {task['depends']})")
            return TaskResult(name, "Omitted")
    elif any(results[d].phase not in ("Succeeded", "Skipped") for d in task.get("dependencies", [])):
        return TaskResult(name, "Omitted")
    if "when" in task:
        condition = substitute(task["when"], scope, where=f"task {name} when")
        try:
            proceed = evaluate(condition, lambda ident: ident)
        except ExpressionError as exc:
            return TaskResult(name, "Failed", message=f"invalid when expression: {exc}")
        if not proceed:
            run.say(f"[{name}] Skipped (when: {condition})")
            return TaskResult(name, "Skipped")
    if "templateRef" in task:
        template, templates = resolve_reference(task["templateRef"], library=run.library, namespace=run.namespace,
                                                where=f"task {name}")
        ref = task["templateRef"]
        run.say(f"[{name}] templateRef {ref['name']}/{ref['template']} ({kind(template)})")
    else:
        template = templates[task["template"]]
    if "withParam" in task or "withItems" in task:
        return run_fan_out(run, task, template, templates, scope, name)
    arguments = {
        p["name"]: rescan(substitute(str(p.get("value", "")), scope, where=f"task {name} arguments"), run.scope())
        for p in task.get("arguments", {}).get("parameters", [])
    }
    artifacts = artifact_arguments(task, scope, where=f"task {name}")
    return run_any(run, name, template, templates, arguments, artifacts)


def run_fan_out(
    run: RunContext,
    task: dict[str, Any],
    template: dict[str, Any],
    templates: dict[str, dict[str, Any]],
    scope: dict[str, str],
    name: str,
) -> TaskResult:
    """One run of ``template`` per item, ``parallelism`` at a time; outputs aggregated as Argo does."""
    if "withParam" in task:
        raw = substitute(str(task["withParam"]), scope, where=f"task {name} withParam")
        try:
            items = json.loads(raw)
        except json.JSONDecodeError as exc:
            return TaskResult(name, "Failed", message=f"withParam value is not JSON: {exc.msg}")
        if not isinstance(items, list):
            return TaskResult(name, "Failed", message="withParam value must be a JSON list")
    else:
        items = list(task["withItems"])
    if not items:
        run.say(f"[{name}] Skipped (withParam/withItems expanded to no items)")
        return TaskResult(name, "Skipped", message="no items")

    def run_item(index: int, item: Any) -> TaskResult:
        scope_of_item = {**scope, **item_scope(item)}
        child = f"{name}({index}:{item_label(item)})"
        arguments = {
            p["name"]: substitute(str(p.get("value", "")), scope_of_item, where=f"task {child} arguments")
            for p in task.get("arguments", {}).get("parameters", [])
        }
        artifacts = artifact_arguments(task, scope_of_item, where=f"task {child}")
        return run_any(run, child, template, templates, arguments, artifacts)

    workers = max(1, min(int(run.spec.get("parallelism") or 1), LOCAL_PARALLELISM, len(items)))
    if template.get("synchronization"):
        workers = 1  # a template-level lock admits one item at a time
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        children = list(pool.map(run_item, range(len(items)), items))
    failed = [c for c in children if c.phase == "Failed"]
    outputs = aggregate([c.outputs for c in children if c.phase == "Succeeded"])
    result = TaskResult(
        name, "Failed" if failed else "Succeeded", outputs=outputs,
        message=failed[0].message if failed else "", attempts=max(c.attempts for c in children),
        log="".join(c.log for c in children), seconds=time.monotonic() - started, children=children,
    )
    run.children[name] = children
    return result


def item_label(item: Any) -> str:
    """A fanned-out item's label in its task name: a string item, an object's ``name`` (or ``dedupe-key``), else
    its JSON."""
    if isinstance(item, dict):
        text = str(item.get("name") or item.get("dedupe-key") or "")
    else:
        text = item if isinstance(item, str) else go_json(item)
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:40] or "item"


def run_any(
    run: RunContext, name: str, template: dict[str, Any], templates: dict[str, dict[str, Any]],
    arguments: dict[str, str], artifacts: dict[str, str] | None = None,
) -> TaskResult:
    """Run ``template`` as task ``name`` with ``arguments`` (and input ``artifacts``, name -> object key): a DAG
    template as one task, else its pod."""
    if "dag" in template:
        if artifacts:
            raise RunError(f"task {name}: artifact arguments to a DAG template are not supported locally")
        return run_dag_template(run, name, template, templates, arguments)
    return run_template(run, name, template, arguments, artifacts)


def run_dag_template(
    run: RunContext, name: str, template: dict[str, Any], templates: dict[str, dict[str, Any]],
    arguments: dict[str, str],
) -> TaskResult:
    """A DAG run as one task (a templateRef to a team's pipeline): its tasks run under ``NAME.``, with
    ``{{inputs.parameters.*}}`` from the task's arguments and the calling workflow's ``{{workflow.*}}``."""
    inputs = template_inputs(template, arguments)
    if isinstance(inputs, str):
        return TaskResult(name, "Failed", message=inputs)
    scope = {**run.scope(), **input_scope(inputs)}
    started = time.monotonic()
    synchronize(run, template.get("synchronization"), scope, where=f"task {name}")
    run.say(f"[{name}] running DAG {template['name']}")
    results, outputs = run_dag(run, template, templates, scope, prefix=f"{name}.")
    children = list(results.values())
    failed = [c for c in children if c.phase == "Failed"]
    result = TaskResult(
        name, "Failed" if failed else "Succeeded", outputs={} if failed else outputs,
        message=f"{failed[0].name}: {failed[0].message}" if failed else "",
        attempts=1, log="".join(c.log for c in children), seconds=time.monotonic() - started, children=children,
    )
    run.say(f"[{name}] {result.phase} ({result.seconds:.1f}s)" + (f": {result.message}" if result.message else ""))
    return result


def synchronize(run: RunContext, sync: dict[str, Any] | None, scope: dict[str, str], *, where: str) -> None:
    """Report the locks Argo would take. Locally they are always free: one run executes one workflow and no
    other workflow of this process competes, so a mutex or semaphore never has to wait (two concurrent
    ``hera-flows run`` processes are not coordinated). A fanned-out template with a lock runs its items
    one at a time. An unresolvable lock name is a RunError, as it fails the workflow in Argo."""
    if not sync:
        return
    locks = [("mutex", m) for m in [*sync.get("mutexes", []), *([sync["mutex"]] if "mutex" in sync else [])]]
    locks += [("semaphore", s) for s in [*sync.get("semaphores", []),
                                        *([sync["semaphore"]] if "semaphore" in sync else [])]]
    for lock_kind, lock in locks:
        if lock_kind == "mutex":
            label = lock.get("name", "")
        else:
            ref = lock.get("configMapKeyRef") or lock.get("database") or {}
            label = "/".join(str(v) for v in (ref.get("name"), ref.get("key")) if v)
        label = substitute(str(label), scope, where=f"{where} synchronization")
        run.locks.append(f"{lock_kind} {label}")
        run.say(f"[{where}] {lock_kind} {label}: acquired (free locally: nothing else runs in this process)")


def run_template(run: RunContext, name: str, template: dict[str, Any], arguments: dict[str, str],
                 artifacts: dict[str, str] | None = None) -> TaskResult:
    """A container or containerSet template as task ``name``: its pod, again while the retryStrategy allows."""
    inputs = template_inputs(template, arguments)
    if isinstance(inputs, str):
        return TaskResult(name, "Failed", message=inputs)
    synchronize(run, template.get("synchronization"), {**run.scope(), **input_scope(inputs)}, where=f"task {name}")
    strategy = template.get("retryStrategy") or {}
    limit = int(strategy.get("limit", 0)) if strategy else 0
    delay = seconds(strategy.get("backoff", {}).get("duration", "0s"))
    factor = float(strategy.get("backoff", {}).get("factor", 1))
    attempt = 0
    started = time.monotonic()
    while True:
        attempt += 1
        run.say(f"[{name}] running" + (f" (attempt {attempt})" if attempt > 1 else ""))
        result = run_pod(run, name, template, inputs, attempt, artifacts)
        result.attempts = attempt
        if result.phase == "Succeeded" or attempt > limit:
            break
        exit_code = result.outputs.pop("__exit_code__", "")
        if not should_retry(strategy, exit_code):
            break
        run.say(f"[{name}] failed with exit code {exit_code}; retrying (backoff {delay:.0f}s, scaled locally)")
        time.sleep(min(delay * run.backoff_scale, 2.0))
        delay *= factor
    result.outputs.pop("__exit_code__", None)
    result.seconds = time.monotonic() - started
    run.say(f"[{name}] {result.phase} ({result.seconds:.1f}s)" + (f": {result.message}" if result.message else ""))
    return result


def should_retry(strategy: dict[str, Any], exit_code: str) -> bool:
    """Whether a failed attempt runs again: the strategy's ``expression`` over ``lastRetry.*``, else its
    ``retryPolicy`` (OnFailure by default)."""
    expression = strategy.get("expression")
    if not expression:
        return strategy.get("retryPolicy", "OnFailure") in ("Always", "OnFailure")
    variables = {"lastRetry.exitCode": exit_code, "lastRetry.status": "Failed", "lastRetry.duration": "0"}
    return evaluate(expression, lambda ident: variables[ident])


def seconds(duration: str) -> float:
    """A retry backoff duration (``30s``, ``2m``, ``1h``, a bare number of seconds) in seconds; 0 when unparsable."""
    match = re.fullmatch(r"(\d+)(s|m|h)?", str(duration))
    if not match:
        return 0.0
    return int(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
