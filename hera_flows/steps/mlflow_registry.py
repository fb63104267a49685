"""The one MLflow client of the steps: the few registry calls they make, each retried on transient failures within a
deadline, with MLflow's own long HTTP retries turned down so a dead server fails in seconds, not minutes.

Used by the promotion context, the drift context (the serving version's metrics) and the fairness audit (listing
production models, loading them). Failures: an unknown model or version is a StepError (exit 1); MLflow unreachable
after a few quick retries is a TransientError (exit 75), which Argo retries with backoff.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from hera_flows.steps import gitrepo
from hera_flows.steps.common import StepError, TransientError, log, retry, secret

if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")

# MLflow's defaults retry a refused connection for minutes (7 retries, backoff factor 2); the step retries
# itself within its deadline and then lets Argo retry the pod. Values already in the environment win.
MLFLOW_HTTP_DEFAULTS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
ATTEMPTS = 3
BASE_DELAY_SECONDS = 0.5
MAX_VERSIONS_SCANNED = 200  # when looking for the serving version by its storageUri

_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED", "INTERNAL_ERROR", "DEADLINE_EXCEEDED",
                    "ABORTED", "IO_ERROR"}
_AUTH_CODES = {"UNAUTHENTICATED", "PERMISSION_DENIED", "CUSTOMER_UNAUTHORIZED"}
_LOGGED_MODEL_SOURCE = re.compile(r"^models:/(m-[A-Za-z0-9]+)/?$")


def logged_model_id(mv: Any) -> str | None:
    """The LoggedModel behind a version: ``model_id`` when the server sends it, else from ``models:/m-...``."""
    if getattr(mv, "model_id", None):
        return str(mv.model_id)
    match = _LOGGED_MODEL_SOURCE.match(mv.source or "")
    return match.group(1) if match else None


def clone_repository(url: str, branch: str, scratch: Path, deadline: float, *, forge: str = "github") -> Path:
    """Clone ``branch`` of the GitOps repository into ``scratch``; ``forge`` picks the git username for the token."""
    token = secret("HF_FORGE_TOKEN", required=False) or None
    log(f"context: cloning {redact(url)} ({branch})")
    dest = scratch / "repo"
    gitrepo.clone(url, dest, branch, token=token, forge=forge, attempts=ATTEMPTS, deadline=deadline)
    return dest


def redact(url: str) -> str:
    """A URL without its user-info (tokens sometimes ride in it), for messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))


@contextlib.contextmanager
def mlflow_http_settings() -> Iterator[set[str]]:
    """Low MLflow HTTP retries for the duration of the step; yields the variables it set (and later removes)."""
    added = {name for name in MLFLOW_HTTP_DEFAULTS if name not in os.environ}
    for name in added:
        os.environ[name] = MLFLOW_HTTP_DEFAULTS[name]
    try:
        yield added
    finally:
        for name in added:
            os.environ.pop(name, None)


# --------------------------------------------------------------------------------------------- MLflow


class _Unavailable(Exception):
    """MLflow did not answer usefully (connection refused, timeout, 5xx, 429): worth another attempt."""


class _NotFound(StepError):
    pass


class Registry:
    """The few MLflow calls the step makes, each retried on transient failures within the deadline."""

    def __init__(self, tracking_uri: str, deadline: float, *, bound_timeout: bool = False) -> None:
        from mlflow import MlflowClient

        self.uri = tracking_uri
        self.deadline = deadline
        self.bound_timeout = bound_timeout  # shrink MLflow's request timeout to the time left
        self.client: MlflowClient = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        self._runs: dict[str, Any] = {}

    # -- versions --

    def model_version(self, name: str, version: str) -> Any:
        mv = self.find_version(name, version)
        if mv is None:
            raise StepError(f"registered model {name!r} has no version {version} in MLflow at {redact(self.uri)}")
        return mv

    def find_version(self, name: str, version: str) -> Any | None:
        """The version, or None when the model exists but the version does not (an unknown model fails)."""
        try:
            return self.call(f"reading {name!r} version {version}",
                              lambda: self.client.get_model_version(name, version))
        except _NotFound:
            self._require_model(name)
            return None

    def version_by_alias(self, name: str, alias: str) -> Any:
        try:
            return self.call(f"resolving alias {alias!r} of {name!r}",
                              lambda: self.client.get_model_version_by_alias(name, alias))
        except _NotFound:
            self._require_model(name)
            raise StepError(f"registered model {name!r} has no alias {alias!r}") from None

    def model_exists(self, name: str) -> bool:
        try:
            self.call(f"reading registered model {name!r}", lambda: self.client.get_registered_model(name))
        except _NotFound:
            return False
        return True

    def _require_model(self, name: str) -> None:
        try:
            self.call(f"reading registered model {name!r}", lambda: self.client.get_registered_model(name))
        except _NotFound:
            raise StepError(f"registered model {name!r} does not exist in MLflow at {redact(self.uri)}") from None

    def version_with_storage_uri(self, name: str, storage_uri: str) -> Any | None:
        """The newest version whose source or artifact location is ``storage_uri`` (trailing '/' ignored)."""
        wanted = storage_uri.rstrip("/")
        versions = sorted(self._all_versions(name), key=lambda mv: int(mv.version), reverse=True)
        for mv in versions:
            if (mv.source or "").rstrip("/") == wanted:
                return mv
        for mv in versions[:MAX_VERSIONS_SCANNED]:
            if self.storage_uri(mv).rstrip("/") == wanted:
                return mv
        return None

    def _all_versions(self, name: str) -> list[Any]:
        quoted = quote_filter_value(name)
        filter_string = f"name = {quoted}" if quoted else None  # no safe quoting: filter on our side
        found: list[Any] = []
        token: str | None = None
        while True:
            page = self.call(
                f"listing versions of {name!r}",
                functools.partial(self.client.search_model_versions, filter_string, max_results=1000, page_token=token),
            )
            found.extend(mv for mv in page if mv.name == name)
            token = page.token
            if not token or len(found) >= 10 * MAX_VERSIONS_SCANNED:
                return found

    # -- what a version is made of --

    def storage_uri(self, mv: Any) -> str:
        """Where the version's files are, as KServe would load them (not a ``runs:/`` or ``models:/`` URI)."""
        uri = self.call(f"resolving the artifact URI of {mv.name!r} version {mv.version}",
                         lambda: self.client.get_model_version_download_uri(mv.name, str(mv.version)))
        if uri.startswith("runs:/"):
            run_id, _, path = uri[len("runs:/"):].partition("/")
            run = self.call(f"reading run {run_id}", lambda: self.client.get_run(run_id))
            base = run.info.artifact_uri.rstrip("/")
            return f"{base}/{path.strip('/')}" if path.strip("/") else base
        match = _LOGGED_MODEL_SOURCE.match(uri)
        if match:
            location: str = self._logged_model(match.group(1)).artifact_location
            return location
        return uri

    def run(self, run_id: str) -> Any:
        """The run (read once per step: the metrics, params and tags all come from it)."""
        if run_id not in self._runs:
            self._runs[run_id] = self.call(f"reading run {run_id}", lambda: self.client.get_run(run_id))
        return self._runs[run_id]

    def run_tags(self, mv: Any) -> dict[str, str]:
        """The tags of the version's run, without MLflow's own ``mlflow.*`` ones ({} for a version without a run)."""
        if not mv.run_id:
            return {}
        tags = self.run(mv.run_id).data.tags or {}
        return {str(k): str(v) for k, v in tags.items() if not str(k).startswith("mlflow.")}

    def metrics_and_params(self, mv: Any) -> tuple[dict[str, float], dict[str, str]]:
        metrics: dict[str, float] = {}
        params: dict[str, str] = {}
        if mv.run_id:
            run = self.run(mv.run_id)
            metrics.update(run.data.metrics)
            params.update(run.data.params)
        model_id = logged_model_id(mv)
        if model_id:
            logged = self._logged_model(model_id)
            metrics.update(_latest_metrics(logged.metrics or []))
            params.update(logged.params or {})
        finite = {}
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                finite[name] = float(value)
            else:
                log(f"context: leaving out metric {name}={value!r} (not a finite number)")
        return dict(sorted(finite.items())), {k: str(v) for k, v in sorted(params.items())}

    def set_tags(self, name: str, version: str, tags: dict[str, str]) -> None:
        """Set model-version tags (each a retried call; setting the same value again is harmless)."""
        for key, value in sorted(tags.items()):
            self.call(f"tagging {name!r} version {version} with {key}",
                      functools.partial(self.client.set_model_version_tag, name, version, key, value))

    def aliased_versions(self, aliases: list[str]) -> list[tuple[Any, str]]:
        """(model version, alias) for every registered model holding one of ``aliases`` (pages through all models)."""
        found: list[tuple[Any, str]] = []
        token: str | None = None
        while True:
            page = self.call("listing registered models",
                             functools.partial(self.client.search_registered_models, max_results=1000,
                                               page_token=token))
            for model in page:
                held = getattr(model, "aliases", None) or {}
                for alias in aliases:
                    if alias in held:
                        found.append((self.model_version(model.name, str(held[alias])), alias))
            token = page.token
            if not token:
                return found

    def _logged_model(self, model_id: str) -> Any:
        try:
            return self.call(f"reading logged model {model_id}", lambda: self.client.get_logged_model(model_id))
        except _NotFound:
            raise StepError(f"logged model {model_id} (the version's source) does not exist in MLflow") from None

    # -- calling MLflow --

    def call(self, what: str, fn: Callable[[], T]) -> T:
        from mlflow.exceptions import MlflowException

        def attempt() -> T:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TransientError(f"gave up {what} against MLflow at {redact(self.uri)}: the deadline passed")
            if self.bound_timeout:  # MLflow may try (retries + 1) times, each up to the timeout
                retries = os.environ.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "")
                tries = 1 + (int(retries) if retries.isdigit() else 0)
                ceiling = int(MLFLOW_HTTP_DEFAULTS["MLFLOW_HTTP_REQUEST_TIMEOUT"])
                os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(max(1, min(ceiling, math.ceil(left / tries))))
            try:
                return fn()
            except MlflowException as exc:
                raise _classify(exc, what, self.uri) from exc

        return retry(attempt, what=f"reaching MLflow at {redact(self.uri)} ({what})", attempts=ATTEMPTS,
                     base_delay=BASE_DELAY_SECONDS, max_delay=5.0, deadline=self.deadline,
                     retry_on=(_Unavailable,))


def _classify(exc: Any, what: str, uri: str) -> Exception:
    code = getattr(exc, "error_code", None) or ""
    message = str(getattr(exc, "message", None) or exc)
    if message.startswith("API request to") and "failed with" in message and "error code" not in message:
        return _Unavailable(_short_reason(message))
    if code == "RESOURCE_DOES_NOT_EXIST" or (code == "INVALID_PARAMETER_VALUE" and "not found" in message.lower()):
        return _NotFound(message)  # an unknown alias comes back as INVALID_PARAMETER_VALUE "... not found"
    if code in _AUTH_CODES:
        return StepError(
            f"MLflow at {redact(uri)} refused {what} ({code}): check MLFLOW_TRACKING_USERNAME/"
            "MLFLOW_TRACKING_PASSWORD or MLFLOW_TRACKING_TOKEN in the credentials Secret"
        )
    if code in _TRANSIENT_CODES:
        return _Unavailable(f"{code}: {_short_reason(message)}")
    if code == "ENDPOINT_NOT_FOUND":
        return StepError(f"{redact(uri)} does not answer like an MLflow tracking server ({what}): {message[:200]}")
    return StepError(f"MLflow refused {what}: {message[:300]}")


def _short_reason(message: str) -> str:
    errno = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", message)
    if errno:
        return errno.group(1).strip()
    if "timed out" in message.lower() or "timeout" in message.lower():
        return "timed out"
    return message[:200]


def _latest_metrics(metrics: list[Any]) -> dict[str, float]:
    """A LoggedModel can hold several values per metric (steps, datasets): keep the latest one logged."""
    latest: dict[str, Any] = {}
    for metric in metrics:
        current = latest.get(metric.key)
        if current is None or (metric.timestamp, metric.step) >= (current.timestamp, current.step):
            latest[metric.key] = metric
    return {key: metric.value for key, metric in latest.items()}


def quote_filter_value(value: str) -> str | None:
    """A string literal for an MLflow filter, or None: MLflow's parser strips quotes and has no escapes."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None
