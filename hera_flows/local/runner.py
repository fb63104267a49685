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

This module is the public entry: ``LocalRun`` (one run of one WorkflowTemplate), loading templates, the
Sensor's submission and ``hera-flows run``. The work is split along its seams: ``substitution`` (``{{...}}``),
``expressions`` (``when``/``depends``/retry expressions), ``scheduling`` (DAG order, fan-out, retries, locks),
``templates`` (template kinds, inputs, ``templateRef``), ``pods`` (containers as local processes) and ``outputs``
(results, aggregation, the report); the names tests and tools import from here are re-exported.
"""

from __future__ import annotations

import json
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from secrets import token_hex
from typing import Any

import yaml

from hera_flows.local import scheduling
from hera_flows.local.artifacts import ArtifactStore, Repositories, load_config_maps
from hera_flows.local.errors import RunError
from hera_flows.local.expressions import ExpressionError
from hera_flows.local.outputs import RunResult, TaskResult, report
from hera_flows.local.pods import PATH_FLAGS
from hera_flows.local.scheduling import LOCAL_PARALLELISM
from hera_flows.local.sensor import SensorError, route_event
from hera_flows.local.substitution import check_parameters
from hera_flows.local.templates import RUNNABLE_KINDS, TEMPLATE_KINDS, LibraryTemplate, check_references

__all__ = [
    "LOCAL_PARALLELISM",
    "PATH_FLAGS",
    "RUNNABLE_KINDS",
    "TEMPLATE_KINDS",
    "TRANSIENT_EXIT",
    "LibraryTemplate",
    "LocalRun",
    "RunError",
    "RunResult",
    "TaskResult",
    "load_library",
    "load_sensors",
    "load_template",
    "run_command",
    "run_workflow",
    "run_workflow_object",
    "submission",
    "workflow_parameters",
]

TRANSIENT_EXIT = 75


class LocalRun:
    """One run of a WorkflowTemplate on this machine: ``execute()`` runs it whole; ``run_tasks()`` runs some of
    its entrypoint's tasks after seeding the results of the tasks they depend on."""

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
        repositories: Repositories | None = None,
    ) -> None:
        """``library``: the WorkflowTemplates ``templateRef`` tasks may name (see ``load_library``). With a
        library every reference is checked before the first task runs, as Argo checks them on submission; without
        one (``None``) a ``templateRef`` task that is reached is a RunError."""
        self.template = template
        self.spec: dict[str, Any] = template["spec"]
        self.templates: dict[str, dict[str, Any]] = {t["name"]: t for t in self.spec["templates"]}
        self.parameters = parameters
        self.secrets = secrets
        # Absolute: pods run in their own working folder, where a relative path would point elsewhere.
        self.workdir = workdir.resolve()
        self.echo = echo
        self.backoff_scale = backoff_scale
        self.library = library
        self.namespace: str = template["metadata"].get("namespace", "default")
        self.name = f"{template['metadata']['name']}-{token_hex(3)}"
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
        # The artifact-repository ConfigMaps this run may resolve (generated next to the templates); the store is
        # resolved on the first artifact, as Argo resolves the repository when the workflow starts.
        self.repositories = repositories
        self._store: ArtifactStore | None = None
        self._store_lock = threading.Lock()

    def artifact_store(self) -> ArtifactStore:
        """The run's artifact repository (``spec.artifactRepositoryRef``, else the namespace's default)."""
        with self._store_lock:
            if self._store is None:
                if self.repositories is None:
                    raise RunError("this run uses artifacts but was given no artifact repository ConfigMaps")
                repository = self.repositories.resolve(self.spec.get("artifactRepositoryRef"), self.namespace)
                self._store = ArtifactStore(repository, self.secrets)
            return self._store

    # -- scopes ---------------------------------------------------------------------------------------------
    def scope(self) -> dict[str, str]:
        """The workflow's global scope: ``{{workflow.parameters.*}}``, ``{{workflow.name}}``, ``.uid``,
        ``.namespace`` and, in an exit handler, ``{{workflow.status}}``. A fresh dict the caller may extend."""
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

    # -- running ----------------------------------------------------------------------------------------------
    def execute(self) -> RunResult:
        entry = self.templates[self.spec["entrypoint"]]
        if "dag" not in entry:
            raise RunError("the local runner runs DAG entrypoints only")
        check_parameters(self.parameters, self.scope())
        self._record_workflow()
        if self.library is not None:
            check_references(entry, self.templates, library=self.library, namespace=self.namespace,
                             where=self.template["metadata"]["name"], seen=set())
        scope = self.scope()
        scheduling.synchronize(self, self.spec.get("synchronization"), scope, where="workflow")
        results, outputs = scheduling.run_dag(self, entry, self.templates, scope)
        phase = "Failed" if any(r.phase == "Failed" for r in results.values()) else "Succeeded"
        exit_result = None
        if self.spec.get("onExit"):
            # Argo runs the exit handler whatever the entrypoint's outcome, with {{workflow.status}} set; a failing
            # exit handler turns a Succeeded workflow Failed (docs/upstream-facts.md#workflows-lifecycle).
            self.status = phase
            handler = self.templates[self.spec["onExit"]]
            self.say(f"[onExit] {self.spec['onExit']} (workflow.status={phase})")
            exit_result = scheduling.run_any(self, "onExit", handler, self.templates, {})
            if exit_result.phase == "Failed":
                phase = "Failed"
        return RunResult(self.name, phase, results, outputs, dict(self.parameters), self.workdir, list(self.locks),
                         exit_result, self._artifact_gc())

    def _artifact_gc(self) -> Callable[[], int] | None:
        """What deleting this Workflow does to its stored outputs: with ``spec.artifactGC`` (a strategy other than
        Never), Argo's GC pod deletes each (docs/upstream-facts.md#workflows-artifacts)."""
        strategy = (self.spec.get("artifactGC") or {}).get("strategy", "")
        store = self._store
        if store is None or strategy in ("", "Never"):
            return None
        return lambda: sum(store.delete(key) for key in list(dict.fromkeys(store.saved)))

    def run_task(
        self,
        task: dict[str, Any],
        results: Mapping[str, TaskResult],
        scope: dict[str, str],
        templates: dict[str, dict[str, Any]] | None = None,
        *,
        prefix: str = "",
    ) -> TaskResult:
        """Run one DAG task as ``execute()`` would: ``results`` must hold the tasks it depends on, ``scope`` what
        it may substitute (``scope()`` plus ``{{tasks.X.outputs.parameters.Y}}``), ``templates`` where its
        ``template:`` resolves (default: this WorkflowTemplate's)."""
        templates = self.templates if templates is None else templates
        return scheduling.run_task(self, task, results, scope, templates, prefix=prefix)

    def run_tasks(
        self, names: Collection[str], *, upstream: Mapping[str, Mapping[str, str]] | None = None,
        dag: str | None = None, inputs: Mapping[str, str] | None = None,
    ) -> dict[str, TaskResult]:
        """Run the tasks named in ``names`` of the DAG template ``dag`` (default: the entrypoint), in the DAG's
        order, after seeding each task in ``upstream`` as Succeeded with those output parameters and giving the
        DAG the input parameters ``inputs`` (e.g. one item of a fan-out); return the seeded and the run results by
        task name. No submission check, workflow record or templateRef check is made, and no exit handler runs:
        the tasks run with the same substitution, containers, secrets and output wiring as in ``execute()``."""
        from hera_flows.local.substitution import input_scope

        scope = {**self.scope(), **input_scope(dict(inputs or {}))}
        results: dict[str, TaskResult] = {}
        for name, outputs in (upstream or {}).items():
            results[name] = TaskResult(name, "Succeeded", outputs=dict(outputs))
            scope.update(scheduling.task_scope(name, results[name]))
        for task in self.templates[dag or self.spec["entrypoint"]]["dag"]["tasks"]:
            if task["name"] not in names:
                continue
            result = scheduling.run_task(self, task, results, scope, self.templates)
            results[task["name"]] = result
            scope.update(scheduling.task_scope(task["name"], result))
        return results

    def _record_workflow(self) -> None:
        folder = self.state_dir / "workflows"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{self.name}.json").write_text(json.dumps({"metadata": {
            "name": self.name, "namespace": self.namespace, "uid": self.uid, "annotations": self.annotations}}),
            encoding="utf-8")


# ---------------------------------------------------------------------------------------------------------
# Entry points


def load_template(template: str, generated: Path) -> dict[str, Any]:
    """A generated WorkflowTemplate by name (or path); a CronWorkflow's name gives its ``workflowSpec`` as the
    template, which is what each scheduled run of it executes."""
    path = Path(template)
    if not path.suffix:
        path = generated / "generated" / "workflowtemplates" / f"{template}.yaml"
        cron = generated / "generated" / "cronworkflows" / f"{template}.yaml"
        if not path.is_file() and cron.is_file():
            path = cron
    if not path.is_file():
        raise RunError(f"no WorkflowTemplate at {path} (run `make generate` first?)")
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(doc, dict) and doc.get("kind") == "CronWorkflow" and isinstance(doc.get("spec"), dict):
        return {"apiVersion": doc.get("apiVersion"), "kind": "WorkflowTemplate", "metadata": doc["metadata"],
                "spec": doc["spec"].get("workflowSpec") or {}}
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


def load_event_sources(generated: Path) -> list[dict[str, Any]]:
    folder = generated / "eventsources"
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
    event_name: str | None = None,
    context: dict[str, str] | None = None,
    event_sources: list[dict[str, Any]] | None = None,
) -> tuple[dict[str, str], dict[str, str]]:
    """The parameters and annotations of the Workflow Argo would run: template defaults, then what the Sensor
    maps from the event (parameters and annotations), then --set. ``event_name``: the EventSource event that
    delivered it (see ``route_event``); ``context``: its event context."""
    params = {p["name"]: str(p.get("value", "")) for p in template["spec"].get("arguments", {}).get("parameters", [])}
    annotations: dict[str, str] = {}
    if event is not None:
        workflow, _trigger = route_event(sensors, template["metadata"]["name"], event, event_name=event_name,
                                         context=context, event_sources=event_sources)
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
    event_name: str | None = None,
    event_context: dict[str, str] | None = None,
    config_maps: Sequence[Path | str] = (),
) -> RunResult:
    """``extra_templates``: files or folders holding WorkflowTemplates that ``templateRef`` tasks name besides the
    generated ones (e.g. the team's training template behind ``drift-retrain``). ``event_name``: the EventSource
    event (endpoint or Kafka topic name) that delivered ``event``; ``event_context``: its context (id, time).
    ``config_maps``: files or folders with the artifact-repository ConfigMaps besides the generated ones."""
    template = load_template(template_name, generated)
    library = load_library(generated, extra_templates)
    params, annotations = submission(
        template, sensors=load_sensors(generated), event=event, overrides=dict(overrides or {}),
        event_name=event_name, context=event_context, event_sources=load_event_sources(generated),
    )
    workdir = workdir or Path(tempfile.mkdtemp(prefix="hera-flows-run-"))
    state_dir = state_dir or generated / ".hera-flows-local" / "state"
    repositories = Repositories(load_config_maps([generated / "generated", *map(Path, config_maps)]))
    return LocalRun(template, params, secrets or {}, workdir, echo=echo, state_dir=state_dir,
                    library=library, annotations=annotations, repositories=repositories).execute()


def run_workflow_object(
    workflow: dict[str, Any],
    *,
    generated: Path,
    secrets: dict[str, dict[str, str]] | None = None,
    workdir: Path | None = None,
    state_dir: Path | None = None,
    echo: bool = True,
) -> RunResult:
    """Run a Workflow object as Argo would once it is created (e.g. by the promotion reconciler): the template its
    ``spec.workflowTemplateRef`` names, its ``spec.arguments`` over the template's defaults, its annotations."""
    spec = workflow.get("spec") or {}
    name = str((spec.get("workflowTemplateRef") or {}).get("name", ""))
    if not name:
        raise RunError("the Workflow has no spec.workflowTemplateRef.name")
    template = load_template(name, generated)
    params = {p["name"]: str(p.get("value", "")) for p in template["spec"].get("arguments", {}).get("parameters", [])}
    for p in (spec.get("arguments") or {}).get("parameters") or []:
        if p["name"] not in params:
            raise RunError(f"the Workflow sets parameter {p['name']!r} that {name} does not declare")
        params[p["name"]] = str(p.get("value", ""))
    annotations = dict((workflow.get("metadata") or {}).get("annotations") or {})
    workdir = workdir or Path(tempfile.mkdtemp(prefix="hera-flows-run-"))
    state_dir = state_dir or generated / ".hera-flows-local" / "state"
    return LocalRun(template, params, secrets or {}, workdir, echo=echo, state_dir=state_dir,
                    library=load_library(generated), annotations=annotations).execute()


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
            event_name=getattr(args, "event_name", None),
        )
    except (RunError, SensorError, ExpressionError, OSError, yaml.YAMLError) as exc:
        print(f"hera-flows run: {exc}", file=sys.stderr)
        return 2
    print()
    for line in report(result):
        print(line)
    return 0 if result.phase == "Succeeded" else 1


def _split_override(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise RunError(f"--set expects KEY=VALUE, got {item!r}")
    return key, value
