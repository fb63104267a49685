"""Strict validation of manifests against the official schemas in ../shared/schemas.

The Argo JSON schemas do not forbid unknown fields, but the API server does under kubectl's strict field
validation; so every object definition that lists properties gets ``additionalProperties: false`` here.
"""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from hera_flows.steps.triage.smoke import strict  # the triage smoke step validates the same way

SCHEMAS = Path(__file__).resolve().parents[2].parent / "shared" / "schemas"

WORKFLOW_SCHEMAS = {
    "v3.7.18": "argo-workflows-v3.7.18.schema.json",
    "v4.1.2": "argo-workflows-v4.1.2.schema.json",
}
EVENTS_SCHEMA = "argo-events-v1.9.11.schema.json"

WORKFLOW_KINDS = {
    "WorkflowTemplate": "io.argoproj.workflow.v1alpha1.WorkflowTemplate",
    "CronWorkflow": "io.argoproj.workflow.v1alpha1.CronWorkflow",
    "Workflow": "io.argoproj.workflow.v1alpha1.Workflow",
}
EVENTS_KINDS = {
    "EventSource": "io.argoproj.events.v1alpha1.EventSource",
    "Sensor": "io.argoproj.events.v1alpha1.Sensor",
    # Kubernetes core types are carried by the Argo Events schema.
    "ServiceAccount": "io.k8s.api.core.v1.ServiceAccount",
    "Role": "io.k8s.api.rbac.v1.Role",
    "RoleBinding": "io.k8s.api.rbac.v1.RoleBinding",
    "ClusterRole": "io.k8s.api.rbac.v1.ClusterRole",
    "ClusterRoleBinding": "io.k8s.api.rbac.v1.ClusterRoleBinding",
    "ConfigMap": "io.k8s.api.core.v1.ConfigMap",
    "Secret": "io.k8s.api.core.v1.Secret",
    "NetworkPolicy": "io.k8s.api.networking.v1.NetworkPolicy",
}
# Kinds with no official schema here; tests check their shape themselves (tests/test_metrics.py).
UNCHECKED_KINDS = {"Kustomization", "PrometheusRule"}


@functools.cache
def _definitions(filename: str) -> dict[str, Any]:
    schema = json.loads((SCHEMAS / filename).read_text(encoding="utf-8"))
    return strict(copy.deepcopy(schema["definitions"]))


@functools.cache
def validator(filename: str, definition: str) -> Draft202012Validator:
    defs = _definitions(filename)
    if definition not in defs:
        raise KeyError(f"{definition} is not in {filename}")
    return Draft202012Validator({"$ref": f"#/definitions/{definition}", "definitions": defs})


def schema_targets(doc: dict[str, Any]) -> list[tuple[str, str]]:
    """(schema file, definition) pairs a document of this kind must satisfy."""
    kind = doc.get("kind")
    if kind in WORKFLOW_KINDS:
        return [(f, WORKFLOW_KINDS[kind]) for f in WORKFLOW_SCHEMAS.values()]
    if kind in EVENTS_KINDS:
        return [(EVENTS_SCHEMA, EVENTS_KINDS[kind])]
    raise KeyError(f"no official schema known for kind {kind!r}")


def problems(doc: dict[str, Any]) -> list[str]:
    """Every schema violation of ``doc`` under every schema that applies, as readable lines."""
    found: list[str] = []
    for filename, definition in schema_targets(doc):
        for error in sorted(validator(filename, definition).iter_errors(doc), key=lambda e: list(e.path)):
            path = "/".join(str(p) for p in error.absolute_path) or "(root)"
            found.append(f"{filename}: {path}: {error.message[:300]}")
    return found
