"""Pattern 3 — training-pipeline failure triage: a failed (or image-pull-stuck) Argo Workflow is classified and
becomes a PR with a clear-cut fix to its WorkflowTemplate, or an issue for the pipeline's owner.

Two cases, two watches per namespace (see docs/patterns/failure-triage.md):
- ``failed``: workflows whose phase label is Failed or Error (ADD and UPDATE events; the same workflow arrives
  more than once, the guard deduplicates by uid);
- ``image-pull``: Running workflows (UPDATE events) with no running pod; the guard reads the workflow and
  proceeds only when a pod node has been in ImagePullBackOff/ErrImagePull longer than the grace period (a pull
  failure never fails a workflow before its deadline, and sensor filters cannot compute durations).

Our own workflows are excluded twice: by the EventSource's label selector (``managed-by!=hera-flows``, no
pattern label) and by the guard, which ends a run for one of them as a quiet skip (never as a failure).

Kubeflow Pipelines v2 runs (``kubeflow.enabled``) get the same two watches selected by KFP's own label
``pipeline/runid`` instead of the opt-in labels (KFP lets users set no label on the Workflow), and the opt-in
watches then exclude that label, so a run arrives once. Flyte (``flyte.enabled``) is not on Argo: its failures
arrive at a webhook (flyte_failures.py) and run ``flyte-failure-triage`` into the same classifier.
"""

from __future__ import annotations

from typing import Any, TypedDict

from hera.workflows import DAG

from hera_flows import catalog
from hera_flows.blocks import artifacts, claims, events, security
from hera_flows.blocks.guard import GUARD_TASK, guard_arguments, guard_output, guard_template, proceeds
from hera_flows.blocks.step import step_template
from hera_flows.blocks.workflow import PATTERN_LABEL, Param, pattern_workflow_template
from hera_flows.config import Config
from hera_flows.patterns import PatternManifests
from hera_flows.patterns import failure_triage_flyte as flyte
from hera_flows.patterns import triage_chain as chain
from hera_flows.patterns.triage_chain import CONTEXT_TASK

PATTERN = catalog.pattern("triage")
TEMPLATE_NAME = "failure-triage"
EVENT_SOURCE_NAME = "workflow-failures"
SENSOR_NAME = "failure-triage"

PHASE_LABEL = "workflows.argoproj.io/phase"
FAILED_PHASES = ("Failed", "Error")
CASES = ("failed", "image-pull")
KFP_RUN_LABEL = "pipeline/runid"  # hera_flows/steps/triage/kfp.py RUN_ID_LABEL (the step image has no Hera)
KINDS = ("argo", "kfp")  # opt-in Argo workflows; Kubeflow Pipelines runs

# Identities (least privilege, see docs/patterns/failure-triage.md).
EVENTSOURCE_SA = "hera-flows-triage-eventsource"  # list/watch workflows in the watched namespaces
GUARD_SA = "hera-flows-triage-guard"  # Leases here; get workflows in the watched namespaces
CONTEXT_SA = "hera-flows-triage-context"  # get/list workflows, templates, pods, pods/log, events there


class _GroupVersionResource(TypedDict):
    group: str
    version: str
    resource: str


WORKFLOW_GVR: _GroupVersionResource = {"group": "argoproj.io", "version": "v1alpha1", "resource": "workflows"}

PARAMS = [
    Param("target-name", "Name of the workflow to triage (set by the Sensor from the event)."),
    Param("target-namespace", "Namespace of the workflow to triage (one of the watched namespaces)."),
    Param("target-uid", "metadata.uid of the workflow: the dedupe key (a workflow is triaged once)."),
    Param("trigger", "Which watch fired: a failed workflow or a Running one stuck pulling an image.",
          "failed", CASES),
]
PARAM_NAMES = [p.name for p in PARAMS]


def build(cfg: Config) -> PatternManifests:
    manifests = PatternManifests(
        workflow_templates=[workflow_template(cfg)],
        event_sources=[event_source(cfg)],
        sensors=[sensor(cfg)],
        rbac=rbac(cfg),
    )
    if cfg.patterns.failure_triage.flyte.enabled:
        manifests.workflow_templates.append(
            flyte.workflow_template(cfg, PATTERN, editor_settings=editor_settings(cfg)))
        manifests.event_sources.append(flyte.event_source(cfg))
        manifests.sensors.append(flyte.sensor(cfg, PATTERN.label))
    return manifests


# ---------------------------------------------------------------------------------------------------------
# Which workflows are ours (never triaged)


def self_exclusion() -> tuple[events.LabelRequirement, ...]:
    """Label requirements no hera-flows workflow satisfies (every one carries MANAGED_BY and the pattern label)."""
    [(managed_key, managed_value)] = [
        (k, v) for k, v in security.MANAGED_BY.items() if k == "app.kubernetes.io/managed-by"
    ]
    return (
        events.LabelRequirement(managed_key, "!=", managed_value),
        events.LabelRequirement(PATTERN_LABEL, "!"),
    )


def _opt_in(cfg: Config) -> tuple[events.LabelRequirement, ...]:
    labels = cfg.patterns.failure_triage.opt_in_labels
    return tuple(events.LabelRequirement(k, "==", v) for k, v in sorted(labels.items()))


def event_name(case: str, namespace: str, kind: str = "argo") -> str:
    return f"{case}-{namespace}" if kind == "argo" else f"{kind}-{case}-{namespace}"


def kinds(cfg: Config) -> tuple[str, ...]:
    return KINDS if cfg.patterns.failure_triage.kubeflow.enabled else ("argo",)


def _selection(cfg: Config, kind: str) -> tuple[events.LabelRequirement, ...]:
    """Which workflows a watch of ``kind`` sees: opted-in ones (minus KFP runs when those have their own watch), or
    KFP runs by KFP's label; never ours."""
    if kind == "kfp":
        return (events.LabelRequirement(KFP_RUN_LABEL, "exists"), *self_exclusion())
    kfp_apart = (events.LabelRequirement(KFP_RUN_LABEL, "!"),) if "kfp" in kinds(cfg) else ()
    return (*_opt_in(cfg), *kfp_apart, *self_exclusion())


def watches(cfg: Config) -> list[events.ResourceWatch]:
    out: list[events.ResourceWatch] = []
    for namespace in cfg.patterns.failure_triage.namespaces:
        for kind in kinds(cfg):
            common = _selection(cfg, kind)
            out.append(events.ResourceWatch(
                event_name=event_name("failed", namespace, kind), namespace=namespace, **WORKFLOW_GVR,
                # A workflow entering the selection (Running -> Failed) is an ADD for a label-selected watch.
                event_types=("ADD", "UPDATE"),
                labels=(events.LabelRequirement(PHASE_LABEL, "in", ",".join(FAILED_PHASES)), *common),
            ))
            out.append(events.ResourceWatch(
                event_name=event_name("image-pull", namespace, kind), namespace=namespace, **WORKFLOW_GVR,
                event_types=("UPDATE",),
                labels=(events.LabelRequirement(PHASE_LABEL, "==", "Running"), *common),
                # Only while no pod runs: a pod stuck pulling its image is Pending. Durations are the guard's job.
                fields=(events.FieldRequirement('status.conditions.#(type=="PodRunning").status', "^False$", "=="),),
            ))
    return out


def event_source(cfg: Config) -> dict[str, Any]:
    return events.resource_event_source(
        EVENT_SOURCE_NAME, cfg.namespace, watches(cfg), event_bus=cfg.event_bus, service_account=EVENTSOURCE_SA
    )


def sensor(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.failure_triage
    labels = {PATTERN_LABEL: PATTERN.label}
    dependencies: list[events.Dependency] = []
    triggers: list[events.WorkflowSubmitTrigger] = []
    for namespace, kind, case in [(n, k, c) for n in p.namespaces for k in kinds(cfg) for c in CASES]:
        phases = FAILED_PHASES if case == "failed" else ("Running",)
        types = ("ADD", "UPDATE") if case == "failed" else ("UPDATE",)
        dependency = events.Dependency(
            name=event_name(case, namespace, kind),
            event_source=EVENT_SOURCE_NAME,
            event_name=event_name(case, namespace, kind),
            filters=(
                events.DataFilter("type", types),
                events.DataFilter("body.metadata.namespace", (namespace,)),
                events.DataFilter("body.status.phase", phases),
            ),
        )
        dependencies.append(dependency)
        # Only the identity of the workflow travels: the context step reads the rest from the API (node
        # status may be offloaded and absent from the event, and the object can be large).
        triggers.append(events.WorkflowSubmitTrigger(
            name=f"triage-{event_name(case, namespace, kind)}",
            dependency=dependency.name,
            template=TEMPLATE_NAME,
            parameters={
                "target-name": events.FromEvent("body.metadata.name"),
                "target-namespace": events.FromEvent("body.metadata.namespace"),
                "target-uid": events.FromEvent("body.metadata.uid"),
                "trigger": events.Constant(case),
            },
            rate_limit=p.rate_limit,
            labels=labels,
        ))
    return events.sensor(SENSOR_NAME, cfg.namespace, dependencies, triggers, event_bus=cfg.event_bus, labels=labels)


# ---------------------------------------------------------------------------------------------------------
# RBAC


CONTEXT_READ_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["argoproj.io"], "resources": ["workflows", "workflowtemplates"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list"]},
    {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
]
GUARD_READ_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["get"]},
]
WATCH_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["argoproj.io"], "resources": ["workflows"], "verbs": ["list", "watch"]},
]


def rbac(cfg: Config) -> list[dict[str, Any]]:
    """Three identities; a Role + RoleBinding per watched namespace for each, nothing cluster-wide."""
    home = cfg.namespace
    docs: list[dict[str, Any]] = [
        # The EventSource pod template cannot set automountServiceAccountToken: its account allows it.
        security.service_account_document(EVENTSOURCE_SA, home, automount=True),
        security.service_account_document(GUARD_SA, home, automount=True),
        security.service_account_document(CONTEXT_SA, home, automount=True),
    ]
    guard_rules = [*security.EXECUTOR_RULES, *security.LEASE_RULES, *security.LABEL_RUN_RULES]
    docs += security.role_documents(GUARD_SA, home, guard_rules,
                                    service_account=GUARD_SA, service_account_namespace=home)
    docs += security.role_documents(CONTEXT_SA, home, list(security.EXECUTOR_RULES),
                                    service_account=CONTEXT_SA, service_account_namespace=home)
    for namespace in cfg.patterns.failure_triage.namespaces:
        for account, suffix, rules in (
            (EVENTSOURCE_SA, "watch", WATCH_RULES),
            (GUARD_SA, "read", GUARD_READ_RULES),
            (CONTEXT_SA, "read", CONTEXT_READ_RULES),
        ):
            docs += security.role_documents(f"{account}-{suffix}", namespace, rules,
                                            service_account=account, service_account_namespace=home)
    return docs


# ---------------------------------------------------------------------------------------------------------
# The WorkflowTemplate


def workflow_template(cfg: Config) -> dict[str, Any]:
    p = cfg.patterns.failure_triage
    large = artifacts.enabled(cfg)
    tail_lines, keep_bytes, context_bytes = p.logs.bounds(large)
    with pattern_workflow_template(
        cfg,
        name=TEMPLATE_NAME,
        pattern=PATTERN.label,
        title=PATTERN.title,
        description="Failed workflow -> context from the API -> classification -> fix PR or owner issue",
        params=PARAMS,
        active_deadline_seconds=p.active_deadline_seconds,
    ) as wt:
        guard = guard_template(
            cfg,
            PATTERN,
            service_account=GUARD_SA,
            flags={
                "namespaces": p.namespaces,
                "opt_in_labels": [f"{k}={v}" for k, v in sorted(p.opt_in_labels.items())],
                "grace_seconds": p.image_pull_grace_seconds,
                "max_age_seconds": p.max_event_age_seconds,
                "kubeflow": p.kubeflow.enabled,
            },
            claim_seconds=p.active_deadline_seconds,
        )
        context = step_template(
            cfg,
            name=CONTEXT_TASK,
            step=PATTERN.step_name("context"),
            flags={
                "tail_lines": tail_lines,
                "limit_bytes": p.logs.limit_bytes,
                "keep_bytes": keep_bytes,
                "max_pods": p.logs.max_pods,
                # the step's own bound (96 KiB) is the parameter path's; an artifact carries more
                "max_context_bytes": context_bytes if large else None,
                "owner_key": p.owner_annotation,
                "owners": dict(sorted(p.owners.items())) or None,
                "kfp_ui_url": p.kubeflow.ui_url,
            },
            network=True,
            service_account=CONTEXT_SA,
            artifact_outputs=chain.context_outputs(cfg),
        )
        rest = chain.templates(cfg, PATTERN, editor_settings=editor_settings(cfg))
        confirm = claims.confirm_template(cfg, GUARD_SA)
        on_exit = claims.exit_handler(cfg, GUARD_SA)

        with DAG(name="main", outputs=chain.outputs()):
            guard(arguments=guard_arguments(PARAM_NAMES))
            context(
                depends=f"{GUARD_TASK}.Succeeded",
                when=proceeds(),
                arguments={
                    "target-name": "{{workflow.parameters.target-name}}",
                    "target-namespace": "{{workflow.parameters.target-namespace}}",
                    "target-uid": "{{workflow.parameters.target-uid}}",
                    "case": guard_output("case"),
                },
            )
            chain.tasks(rest, confirm=confirm)
        wt.on_exit = on_exit
    wt.artifact_repository_ref = artifacts.repository_ref(cfg)
    manifest: dict[str, Any] = wt.to_dict()  # hera types to_dict() as Any
    return manifest


def editor_settings(cfg: Config) -> dict[str, Any]:
    """The triage editor's settings (hera_flows/steps/triage/editor.py ``SETTINGS``) as configured."""
    p = cfg.patterns.failure_triage
    fixes = p.fixes
    return {
        "pipelines_dir": p.pipelines_dir,
        "memory_factor": fixes.memory_factor,
        "memory_cap": fixes.memory_cap,
        "images": dict(sorted(fixes.images.items())),
        "retry_limit": fixes.retry.limit,
        "retry_backoff_seconds": fixes.retry.backoff_seconds,
        "retry_factor": fixes.retry.factor,
        "retry_max_backoff_seconds": fixes.retry.max_backoff_seconds,
        "shm_size_limit": fixes.shm_size_limit,
    }


