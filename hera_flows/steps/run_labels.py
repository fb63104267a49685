"""Every guard labels its own Workflow with what it decided, so runs can be listed and filtered in the Argo UI
and with ``kubectl get workflows -l hera-flows.io/decision=skipped-cooldown``.

Label values must be short and plain (63 characters of ``[A-Za-z0-9._-]``) while event data is neither, so a
dedupe key is stored as a hash and a model name only when it already is a valid label value. Labelling uses the
guard's own ServiceAccount (``patch workflows``); in local runs (``$HERA_FLOWS_STATE_DIR`` set) the labels go to
``<state>/workflow-labels/<workflow>.json``. A failure to label is logged, never fatal: the decision is already
in the outputs.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

from hera_flows.steps.common import log

DECISION_LABEL = "hera-flows.io/decision"
KEY_LABEL = "hera-flows.io/dedupe-key"
MODEL_LABEL = "hera-flows.io/model"
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$")


def key_label(dedupe_key: str) -> str:
    """A dedupe key as a label value: the first 32 hex digits of its SHA-256 (same key, same label)."""
    return hashlib.sha256(dedupe_key.encode("utf-8")).hexdigest()[:32]


def run_labels(decision: str, *, dedupe_key: str = "", model: str = "") -> dict[str, str]:
    """The labels for one run; values that cannot be label values are left out rather than mangled."""
    labels = {DECISION_LABEL: decision} if _LABEL_VALUE.match(decision) else {}
    if dedupe_key:
        labels[KEY_LABEL] = key_label(dedupe_key)
    if model and _LABEL_VALUE.match(model):
        labels[MODEL_LABEL] = model
    return labels


def label_workflow(namespace: str, workflow: str, labels: dict[str, str], *, who: str = "guard") -> None:
    """Merge ``labels`` into the Workflow ``namespace/workflow`` (see the module docstring)."""
    from hera_flows.steps.state import STATE_DIR_ENV

    if not workflow or not labels:
        return
    root = os.environ.get(STATE_DIR_ENV)
    if root:
        folder = Path(root) / "workflow-labels"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{workflow}.json").write_text(json.dumps(labels, sort_keys=True), encoding="utf-8")
        return
    try:
        from kubernetes import client

        from hera_flows.steps.kubeapi import load_api_client

        api_client = load_api_client("in a pod mount the guard's ServiceAccount token")
        client.CustomObjectsApi(api_client).patch_namespaced_custom_object(
            "argoproj.io", "v1alpha1", namespace, "workflows", workflow, {"metadata": {"labels": labels}},
            _request_timeout=(5, 15))
    except Exception as exc:  # noqa: BLE001 - labels are informational
        log(f"{who}: could not label workflow {workflow} ({type(exc).__name__}: {str(exc)[:200]})")
