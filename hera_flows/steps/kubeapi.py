"""The one way a step reaches the Kubernetes API: the pod's ServiceAccount, or KUBECONFIG on a laptop, and one
reading of what the API's errors mean.

Shared by the lease store (guards and the lease clean-up), the guards' self-labelling and the triage readers, so
credentials are found the same way everywhere, a missing token is one clear line, not a traceback, and every
caller retries the same failures.
"""

from __future__ import annotations

import json
import os
from typing import Any

from hera_flows.steps.common import StepError


def load_api_client(hint: str) -> Any:
    """An ``ApiClient`` from in-cluster credentials, falling back to the kubeconfig named by KUBECONFIG.

    ``hint`` finishes the error sentence: what to do when there are no credentials at all.
    """
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        config.load_incluster_config(  # type: ignore[no-untyped-call]  # kubernetes.config is unannotated
            client_configuration=configuration)
    except config.ConfigException:
        try:
            # KUBECONFIG is read now, not when the kubernetes package was imported
            config.load_kube_config(  # type: ignore[no-untyped-call]  # kubernetes.config is unannotated
                config_file=os.environ.get("KUBECONFIG") or None, client_configuration=configuration)
        except (config.ConfigException, OSError) as exc:
            raise StepError(f"no Kubernetes credentials ({exc}): {hint}") from None
    return client.ApiClient(configuration)


class Retryable(OSError):
    """A failure worth retrying (connection error, 429, 5xx); ``common.retry`` retries OSErrors."""


class NotFound(Exception):
    """404: callers decide what absence means (no record yet, a pod already garbage-collected...)."""


def status_object(body: Any) -> dict[str, Any]:
    """The API server's ``Status`` object in an error body, or {} when the body is not one."""
    try:
        value = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def status_reason(body: Any) -> str:
    return str(status_object(body).get("reason", ""))


def status_message(body: Any) -> str:
    """The Status message; a body that is not a Status (a proxy's HTML page...) is quoted, shortened."""
    value = status_object(body)
    if not value and body:
        try:
            json.loads(body)
        except (TypeError, ValueError):
            return str(body)[:200]
    return str(value.get("message", "no details"))[:300]


def api_error(exc: Any, what: str, *, denied_hint: str, where: str = "") -> Exception:
    """The exception to raise for an ``ApiException``: NotFound (404), Retryable (429, 5xx, no status), or a
    one-line StepError — for 401/403 one that says which identity and Role to check (``denied_hint``)."""
    status = exc.status or 0
    if status == 404:
        return NotFound(what)
    if status == 429 or status >= 500 or status == 0:
        return Retryable(f"HTTP {status} {exc.reason}")
    if status in (401, 403):
        return StepError(f"the Kubernetes API refused to {what}{where} (HTTP {status}): {denied_hint}")
    return StepError(f"the Kubernetes API refused to {what} (HTTP {status}: {status_message(exc.body)})")
