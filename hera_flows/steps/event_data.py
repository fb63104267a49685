"""Untrusted event data reaches a guard through its own Workflow's annotations, never through a parameter.

Argo substitutes ``{{...}}`` again inside parameter values that were substituted in (several passes per task),
and ``{{`` cannot be escaped: an alert annotation holding an unrendered Alertmanager template (``{{ $value }}``),
or an attacker's ``{{workflow.uid}}`` / ``{{=expr}}``, would be replaced, evaluated, or fail the submission. Values in
a Workflow's ``metadata.annotations`` are never substituted (docs/upstream-facts.md#workflows-substitution). So the
Sensor writes the webhook body and headers into annotations (``dest: metadata.annotations.hera-flows\\.io/...``)
and the guard reads them from its own Workflow: ``get workflows`` on its own name, or, in local runs
(``$HERA_FLOWS_STATE_DIR``), the copy the local runner keeps in ``<state>/workflows/<name>.json``.

A step called by hand (tests, local debugging) may still pass a field as ``HF_PARAM_<NAME>``; the generated
templates never do.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from hera_flows.steps.common import StepError, param

PREFIX = "hera-flows.io/"
# parameter-style name -> annotation key
FIELDS = {name: PREFIX + name for name in ("event-body", "signature", "delivery-id", "timestamp",
                                            "databricks-signature", "event-headers", "event-topic", "event-key",
                                            "event-id")}


_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def canonical_header(name: str) -> str:
    """Go's http.CanonicalHeaderKey (textproto.CanonicalMIMEHeaderKey), as Argo Events' webhook source names
    headers: ``X-MLflow-Signature`` -> ``X-Mlflow-Signature``; a name with a byte that is no token character (a
    space) is left as it is, as Go leaves it."""
    if any(byte not in _TOKEN_CHARS for byte in name.encode("latin-1", errors="replace")):
        return name
    parts = []
    upper = True
    for ch in name:
        parts.append(ch.upper() if upper else ch.lower())
        upper = ch == "-"
    return "".join(parts)


def annotation_key(name: str) -> str:
    if name not in FIELDS:
        raise KeyError(f"{name} is not an event field carried in an annotation")
    return FIELDS[name]


def field(name: str, *, namespace: str) -> str:
    """The event field ``name`` of this run: a hand-passed parameter if any, else its Workflow's annotation."""
    direct = param(name)
    if direct:
        return direct
    workflow = param("workflow-name").strip()
    if not workflow:
        return ""
    return own_annotations(namespace, workflow).get(annotation_key(name), "")


def own_annotations(namespace: str, workflow: str) -> dict[str, str]:
    """``metadata.annotations`` of the Workflow this step runs in (a guard reads a few fields: a few GETs)."""
    return _read(namespace, workflow)


def _read(namespace: str, workflow: str) -> dict[str, str]:
    from hera_flows.steps.state import STATE_DIR_ENV

    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", workflow):
        raise StepError(f"workflow name {workflow[:80]!r} is not a Kubernetes name")
    root = os.environ.get(STATE_DIR_ENV)
    if root:
        path = Path(root) / "workflows" / f"{workflow}.json"
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return dict((data.get("metadata") or {}).get("annotations") or {})
    from hera_flows.steps import kubeapi
    from hera_flows.steps.common import retry

    def get() -> dict[str, Any]:
        import urllib3
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        api = client.CustomObjectsApi(kubeapi.load_api_client("in a pod mount the guard's ServiceAccount token"))
        try:
            answer = api.get_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "workflows", workflow,
                                                      _request_timeout=(5, 20))
        except ApiException as exc:
            raise kubeapi.api_error(exc, f"read workflow {workflow}", where=f" in namespace {namespace}",
                                    denied_hint="the guard's Role needs get on argoproj.io workflows") from None
        except urllib3.exceptions.HTTPError as exc:
            raise kubeapi.Retryable(str(exc)) from None
        if not isinstance(answer, dict):
            raise StepError(f"the Kubernetes API answered read workflow {workflow} with something other than an object")
        return answer

    try:
        found = retry(get, what=f"Kubernetes API: read workflow {workflow}", attempts=4,
                      retry_on=(kubeapi.Retryable,))
    except kubeapi.NotFound:
        raise StepError(f"workflow {workflow} does not exist in namespace {namespace}: the guard reads the event "
                        "from its own Workflow's annotations") from None
    return dict((found.get("metadata") or {}).get("annotations") or {})
