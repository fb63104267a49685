"""Housekeeping installed with any pattern: the ``hera-flows-gc`` CronWorkflow that deletes expired guard Leases.

Guards keep cooldowns and week claims in Leases that outlive their Workflow (hera_flows/steps/state.py); once a
day ``hera-flows step gc-leases`` (hera_flows/steps/gc.py) deletes those expired for longer than the grace period.
It runs as its own ServiceAccount ``hera-flows-gc``, whose Role can only list and delete Leases (plus what Argo's
executor needs); the token is mounted into that one step only.
"""

from __future__ import annotations

from typing import Any

from hera.workflows import DAG

from hera_flows.blocks import security, workflow
from hera_flows.blocks.step import step_template
from hera_flows.config import Config
from hera_flows.patterns import PatternManifests

NAME = "hera-flows-gc"
GC_SA = "hera-flows-gc"
PATTERN = "maintenance"
OUTPUTS = ["listed", "kept", "deleted", "raced"]  # the contract of gc-leases (hera_flows/steps/gc.py)
# list (to find expired records) and delete (conditional on resourceVersion); no get/create/update: gc never
# writes a record.
GC_LEASE_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["list", "delete"]},
]


def build(cfg: Config) -> PatternManifests:
    """The CronWorkflow and its identity, or nothing when ``maintenance.lease_gc.enabled`` is false."""
    if not cfg.maintenance.lease_gc.enabled:
        return PatternManifests()
    return PatternManifests(cron_workflows=[cron_workflow(cfg)], rbac=rbac_documents(cfg.namespace))


def rbac_documents(namespace: str) -> list[dict[str, Any]]:
    return [
        security.service_account_document(GC_SA, namespace, automount=True),
        *security.role_documents(GC_SA, namespace, list(security.EXECUTOR_RULES) + GC_LEASE_RULES,
                                 service_account=GC_SA, service_account_namespace=namespace),
    ]


def cron_workflow(cfg: Config) -> dict[str, Any]:
    gc = cfg.maintenance.lease_gc
    with workflow.pattern_workflow_template(
        cfg,
        name=NAME,
        pattern=PATTERN,
        title="Lease clean-up",
        description="Deletes expired hera-flows guard Leases (cooldowns, week claims)",
        params=[],
        active_deadline_seconds=gc.active_deadline_seconds,
    ) as wt:
        collect = step_template(
            cfg,
            name="gc-leases",
            step="gc-leases",
            flags={"state_namespace": cfg.namespace, "grace_seconds": gc.grace_seconds},
            network=True,
            service_account=GC_SA,
        )
        with DAG(name="main", outputs=[workflow.dag_output(o, "gc-leases") for o in OUTPUTS]):
            collect()
    return workflow.cron_workflow(wt, [gc.schedule])
