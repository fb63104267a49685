"""Read-only Kubernetes access for the triage guard and context steps, with the official ``kubernetes`` client.

Objects are read as plain JSON (``_preload_content=False``): the client's models would drop fields they do not
know and Argo's custom resources have none anyway. Errors become one clear line: 404 is "absent" (``None``),
401/403 name the Role to check, 429/5xx and connection failures are retried with backoff and end as a
TransientError (exit 75, retried by Argo).

Pod logs are the one unbounded thing: :meth:`KubeReader.log_tail` asks the API for ``tailLines`` and
``limitBytes`` *and* stops reading the stream at ``limit_bytes`` itself (an API server or kubelet that ignores
the limit cannot make the step read a multi-GB log), keeping only the last ``keep_bytes``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hera_flows.steps import kubeapi
from hera_flows.steps.common import StepError, retry

ARGO_GROUP = "argoproj.io"
ARGO_VERSION = "v1alpha1"
_CHUNK = 64 * 1024


@dataclass
class LogTail:
    text: str  # the kept end of the log (at most keep_bytes, starting at a line boundary when cut)
    bytes_read: int  # what was transferred
    truncated: bool  # the transfer stopped at limit_bytes: older lines of the tail are missing
    error: str = ""  # why there is no log (pod gone, container never started...)


def load_api_client() -> Any:
    return kubeapi.load_api_client("in a pod the step's ServiceAccount token must be mounted; locally set KUBECONFIG")


class KubeReader:
    """Get and list what the triage steps read; one instance per step."""

    def __init__(
        self,
        api_client: Any = None,
        *,
        attempts: int = 4,
        base_delay: float = 1.0,
        request_timeout: tuple[float, float] = (5.0, 30.0),
    ) -> None:
        from kubernetes import client

        api = api_client if api_client is not None else load_api_client()
        self._custom = client.CustomObjectsApi(api)
        self._core = client.CoreV1Api(api)
        self._attempts = attempts
        self._base_delay = base_delay
        self._timeout = request_timeout

    # --- objects -----------------------------------------------------------------------------------------

    def workflow(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._optional(f"read workflow {namespace}/{name}", lambda: self._custom.get_namespaced_custom_object(
            ARGO_GROUP, ARGO_VERSION, namespace, "workflows", name,
            _preload_content=False, _request_timeout=self._timeout))

    def workflow_template(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._optional(
            f"read workflowtemplate {namespace}/{name}", lambda: self._custom.get_namespaced_custom_object(
                ARGO_GROUP, ARGO_VERSION, namespace, "workflowtemplates", name,
                _preload_content=False, _request_timeout=self._timeout))

    def pods(self, namespace: str, label_selector: str, limit: int = 200) -> list[dict[str, Any]]:
        found = self._call(f"list pods in {namespace} ({label_selector})", lambda: self._core.list_namespaced_pod(
            namespace, label_selector=label_selector, limit=limit,
            _preload_content=False, _request_timeout=self._timeout))
        return [p for p in found.get("items") or [] if isinstance(p, dict)]

    def events(self, namespace: str, involved_name: str, limit: int = 100) -> list[dict[str, Any]]:
        found = self._call(f"list events of {namespace}/{involved_name}", lambda: self._core.list_namespaced_event(
            namespace, field_selector=f"involvedObject.name={involved_name}", limit=limit,
            _preload_content=False, _request_timeout=self._timeout))
        return [e for e in found.get("items") or [] if isinstance(e, dict)]

    # --- logs --------------------------------------------------------------------------------------------

    def log_tail(
        self, namespace: str, pod: str, container: str, *, tail_lines: int, limit_bytes: int, keep_bytes: int
    ) -> LogTail:
        from kubernetes.client.exceptions import ApiException

        def request() -> Any:
            return self._core.read_namespaced_pod_log(
                pod, namespace, container=container, tail_lines=tail_lines, limit_bytes=limit_bytes,
                _preload_content=False, _request_timeout=self._timeout)

        try:
            response = self._attempt(f"read the log of {namespace}/{pod}[{container}]", request, raw=True)
        except kubeapi.NotFound:
            return LogTail("", 0, False, "the pod or its log is gone (pod garbage-collected?)")
        except ApiException as exc:  # 400: container not started / unknown container
            return LogTail("", 0, False, f"no log (HTTP {exc.status}: {kubeapi.status_message(exc.body)})")
        return read_bounded(response, limit_bytes=limit_bytes, keep_bytes=keep_bytes)

    # --- plumbing ----------------------------------------------------------------------------------------

    def _optional(self, what: str, request: Callable[[], Any]) -> dict[str, Any] | None:
        try:
            return self._call(what, request)
        except kubeapi.NotFound:
            return None

    def _call(self, what: str, request: Callable[[], Any]) -> dict[str, Any]:
        response: dict[str, Any] = self._attempt(what, request, raw=False)  # raw=False: checked to be an object
        return response

    def _attempt(self, what: str, request: Callable[[], Any], *, raw: bool) -> Any:
        import urllib3
        from kubernetes.client.exceptions import ApiException

        def attempt() -> Any:
            try:
                response = request()
            except ApiException as exc:
                error = kubeapi.api_error(exc, what, denied_hint=(
                    "check the step's ServiceAccount and its Role in that namespace (failure_triage.namespaces)"))
                if raw and type(error) is StepError and exc.status not in (401, 403):
                    raise  # the caller reads the status itself (e.g. 400: the container has not started)
                raise error from None
            except urllib3.exceptions.HTTPError as exc:
                raise kubeapi.Retryable(str(exc)) from None
            if raw:
                return response
            try:
                data = json.loads(response.data)
            except ValueError:
                raise kubeapi.Retryable("the API answered with something that is not JSON") from None
            if not isinstance(data, dict):
                raise StepError(f"the Kubernetes API answered {what} with something that is not an object")
            return data

        return retry(attempt, what=f"Kubernetes API: {what}", attempts=self._attempts,
                     base_delay=self._base_delay, retry_on=(kubeapi.Retryable,))


def read_bounded(response: Any, *, limit_bytes: int, keep_bytes: int) -> LogTail:
    """Read at most ``limit_bytes`` from a streamed urllib3 response, keep the last ``keep_bytes``, and close it
    (a connection with unread data is closed, not returned to the pool)."""
    kept = bytearray()
    total = 0
    truncated = False
    try:
        while True:
            chunk = response.read(min(_CHUNK, limit_bytes - total + 1))
            if not chunk:
                break
            total += len(chunk)
            if total > limit_bytes:
                chunk = chunk[: len(chunk) - (total - limit_bytes)]
                total = limit_bytes
                truncated = True
            kept += chunk
            if len(kept) > 2 * keep_bytes:
                del kept[: len(kept) - keep_bytes]
            if truncated:
                break
        if total >= limit_bytes:
            truncated = True
    finally:
        try:
            response.close()
        finally:
            release = getattr(response, "release_conn", None)
            if release is not None:
                release()
    cut = len(kept) > keep_bytes
    tail = bytes(kept[-keep_bytes:]) if cut else bytes(kept)
    text = tail.decode("utf-8", errors="replace")
    if cut and "\n" in text:
        text = text.split("\n", 1)[1]  # drop the partial first line
    return LogTail(text, total, truncated)
