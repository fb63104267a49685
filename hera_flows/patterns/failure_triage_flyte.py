"""Pattern 3, Flyte: a failed Flyte execution reaches the same classifier, agent and review as an Argo or Kubeflow
Pipelines run, through a webhook (Flyte does not run on Argo, so there is no Workflow to watch).

- EventSource ``flyte-failures``: one bearer-authenticated webhook endpoint (``flyte.webhook``, ``authSecret``)
  for FlyteAdmin's workflow-execution cloud events in CloudEvents HTTP binary mode (body = the event's data);
- Sensor ``flyte-failure-triage``: a dependency per cloud-event version (the phase is at ``body.event.phase`` in
  v1 and ``body.rawEvent.phase`` in v2) passing only FAILED and TIMED_OUT, a trigger with ``rateLimit`` that
  writes the body into the Workflow's annotation (never a parameter);
- WorkflowTemplate ``flyte-failure-triage``: flyte guard (normalise, phase, project, age, claim the execution
  once) -> flyte context -> the shared triage chain (triage_chain.py: classify -> agent -> review (an issue;
  Flyte code is Python) -> smoke -> report).
"""

from __future__ import annotations

from typing import Any

from hera.workflows import DAG

from hera_flows.blocks import artifacts, claims, events, security
from hera_flows.blocks.guard import GUARD_TASK, guard_arguments, guard_output, guard_template, proceeds
from hera_flows.blocks.step import step_template
from hera_flows.blocks.workflow import PATTERN_LABEL, pattern_workflow_template
from hera_flows.config import Config
from hera_flows.patterns import triage_chain as chain
from hera_flows.patterns.triage_chain import CONTEXT_TASK
from hera_flows.steps import event_data

TEMPLATE_NAME = "flyte-failure-triage"
EVENT_SOURCE_NAME = "flyte-failures"
SENSOR_NAME = "flyte-failure-triage"
EVENT_NAME = "flyte"
FAILED_PHASES = ("FAILED", "TIMED_OUT")  # hera_flows/steps/triage/flyte.py (the step image has no Hera)
PHASE_PATHS = {"v1": "body.event.phase", "v2": "body.rawEvent.phase"}


def event_source(cfg: Config) -> dict[str, Any]:
    flyte = cfg.patterns.failure_triage.flyte
    return events.webhook_event_source(
        EVENT_SOURCE_NAME, cfg.namespace,
        [events.WebhookEndpoint(EVENT_NAME, flyte.webhook.port, flyte.webhook.endpoint, auth_secret=flyte.auth_secret,
                                max_payload_size=events.REGISTRY_PAYLOAD_LIMIT)],
        event_bus=cfg.event_bus,
    )


def sensor(cfg: Config, pattern_label: str) -> dict[str, Any]:
    p = cfg.patterns.failure_triage
    labels = {PATTERN_LABEL: pattern_label}
    dependencies, triggers = [], []
    for version, path in PHASE_PATHS.items():
        dependency = events.Dependency(name=f"flyte-{version}-failed", event_source=EVENT_SOURCE_NAME,
                                       event_name=EVENT_NAME, filters=(events.DataFilter(path, FAILED_PHASES),))
        dependencies.append(dependency)
        triggers.append(events.WorkflowSubmitTrigger(
            name=f"triage-flyte-{version}",
            dependency=dependency.name,
            template=TEMPLATE_NAME,
            parameters={},
            annotations={event_data.annotation_key("event-body"): events.FromEvent("body")},
            rate_limit=p.rate_limit,
            labels=labels,
        ))
    return events.sensor(SENSOR_NAME, cfg.namespace, dependencies, triggers, event_bus=cfg.event_bus, labels=labels)


def workflow_template(cfg: Config, pattern: Any, *, editor_settings: dict[str, Any]) -> dict[str, Any]:
    """The Flyte guard needs only what every guard has (Leases, its own Workflow): the shared guard identity, not
    the triage guard's, which also reads workflows in the watched namespaces."""
    guard_sa = security.GUARD_SA
    p = cfg.patterns.failure_triage
    with pattern_workflow_template(
        cfg,
        name=TEMPLATE_NAME,
        pattern=pattern.label,
        title=f"{pattern.title} (Flyte)",
        description="Failed Flyte execution (cloud event) -> classification -> owner issue (or fix PR)",
        params=[],
        active_deadline_seconds=p.active_deadline_seconds,
    ) as wt:
        guard = guard_template(
            cfg, pattern, step=pattern.step_name("flyte_guard"), service_account=guard_sa,
            flags={"projects": list(p.flyte.projects), "max_age_seconds": p.max_event_age_seconds},
            claim_seconds=p.active_deadline_seconds,
        )
        context = step_template(
            cfg, name=CONTEXT_TASK, step=pattern.step_name("flyte_context"),
            network=True,  # no network, but the shared retry policy (exit 75 only) keeps context tasks alike
            flags={"owner_key": p.owner_annotation, "owners": dict(sorted(p.owners.items())) or None,
                   "console_url": p.flyte.console_url},
            artifact_outputs=chain.context_outputs(cfg),
        )
        rest = chain.templates(cfg, pattern, editor_settings=editor_settings)
        confirm = claims.confirm_template(cfg, guard_sa)
        on_exit = claims.exit_handler(cfg, guard_sa)

        with DAG(name="main", outputs=chain.outputs()):
            guard(arguments=guard_arguments([]))
            context(depends=f"{GUARD_TASK}.Succeeded", when=proceeds(), arguments={"event": guard_output("event")})
            chain.tasks(rest, confirm=confirm)
        wt.on_exit = on_exit
    wt.artifact_repository_ref = artifacts.repository_ref(cfg)
    manifest: dict[str, Any] = wt.to_dict()
    return manifest
