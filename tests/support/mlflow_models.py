"""Tiny real models in a real MLflow registry, for the context step tests and the end-to-end test.

Two shapes of model version exist in MLflow 3 and the promotion pattern must handle both:

- run-based: the model is logged inside a training run; the version has ``run_id`` and its metrics and params
  live on the run. ``register_run_version`` registers it the classic way (``source: runs:/<run>/model``, as in
  ``fixtures/mlflow-oss/catalog/model_version.created.json``) or, with ``source_style="logged-model"``, the
  MLflow 3 way (``source: models:/m-...`` with the run id).
- LoggedModel-only: the model is logged outside any run; the version has ``run_id: null`` and
  ``source: models:/m-...`` (``catalog/model_version.created.logged-model.json``). Its params are the
  LoggedModel's, and its metrics are logged against the model id from a separate evaluation run.
  ``register_logged_model_version`` produces exactly that.

Training is a LogisticRegression on a few hundred synthetic rows, and pip requirements are given explicitly so
MLflow does not infer them in a subprocess: each registered version takes about a second.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mlflow import MlflowClient

PIP_REQUIREMENTS = ["scikit-learn", "numpy"]
# Realistic deployment tags (see hera_flows.steps.promotion.deployment_tags for the table).
DEFAULT_TAGS = {
    "gpu_type": "NVIDIA-A100-SXM4-80GB",
    "gpu_count": "1",
    "replica_min": "1",
    "replica_max": "4",
    "runtime_version": "1.6.1",
}


@dataclass(frozen=True)
class RegisteredVersion:
    """What a test needs to know about a version it registered (computed independently of the step)."""

    name: str
    version: str
    run_id: str | None
    model_id: str | None
    source: str
    storage_uri: str  # where the model's files are: what an InferenceService storageUri points at
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str] = field(default_factory=dict)
    alias: str | None = None


def unique_model_name(prefix: str = "model") -> str:
    """A registered-model name no other test uses (the server lives for the whole session)."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def train_tiny_model(seed: int = 0, rows: int = 400, c: float = 1.0) -> tuple[Any, dict[str, float], dict[str, str]]:
    """Fit a LogisticRegression on synthetic data; return (model, holdout metrics, params)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

    rng = np.random.RandomState(seed)
    features = rng.normal(size=(rows, 4))
    noise = rng.normal(scale=1.0, size=rows)
    labels = (features[:, 0] + 0.5 * features[:, 1] - 0.25 * features[:, 2] + noise > 0).astype(int)
    split = int(rows * 0.75)
    model = LogisticRegression(C=c, max_iter=200).fit(features[:split], labels[:split])
    predicted = model.predict(features[split:])
    scores = model.predict_proba(features[split:])[:, 1]
    metrics = {
        "accuracy": float(accuracy_score(labels[split:], predicted)),
        "f1": float(f1_score(labels[split:], predicted)),
        "roc_auc": float(roc_auc_score(labels[split:], scores)),
    }
    params = {"C": str(c), "max_iter": "200", "rows": str(rows), "seed": str(seed)}
    return model, metrics, params


def evaluation_table(seed: int = 0, rows: int = 400, *, skew: float = 0.0, sharpen: float = 1.0) -> Any:
    """An evaluation set as teams log it: the label, the model's score (a probability), and sensitive attributes
    (``sex``, ``race``). ``skew`` raises group ``F``'s scores (a fairness disparity), ``sharpen`` pushes scores
    towards 0/1 (worse calibration above 1)."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.RandomState(seed)
    sex = rng.choice(["F", "M"], size=rows)
    race = rng.choice(["a", "b", "c"], size=rows)
    truth_prob = rng.uniform(0.05, 0.95, size=rows)
    label = (rng.uniform(size=rows) < truth_prob).astype(int)
    logits = np.log(truth_prob / (1 - truth_prob)) * sharpen + np.where(sex == "F", skew, 0.0)
    score = 1 / (1 + np.exp(-logits))
    return pa.table({"f0": rng.normal(size=rows), "label": label, "score": score, "sex": sex, "race": race})


def ensure_registered_model(client: MlflowClient, name: str) -> None:
    from mlflow.exceptions import MlflowException

    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise


def register_run_version(
    tracking_uri: str,
    name: str,
    *,
    tags: dict[str, str] | None = None,
    alias: str | None = None,
    seed: int = 0,
    description: str | None = None,
    source_style: Literal["runs", "logged-model"] = "runs",
    metrics: dict[str, float] | None = None,
    run_tags: dict[str, str] | None = None,
    evaluation: Any = None,
) -> RegisteredVersion:
    """Train, log the model with metrics and params inside a run, register it as a new version of ``name``.

    ``metrics`` replaces the measured holdout metrics (to make deltas exact in a test); ``run_tags`` are set on the
    training run (where pipelines put deployment tags); ``evaluation`` (a pyarrow Table, e.g. from
    :func:`evaluation_table`) is logged as ``evaluation/eval.parquet``, where the promotion and the fairness audit
    look for the evaluation set.
    """
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    model, measured, params = train_tiny_model(seed)
    metrics = dict(metrics if metrics is not None else measured)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    experiment_id = _experiment(client, name)
    ensure_registered_model(client, name)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{name}-{seed}") as run:
        mlflow.log_params(params)
        mlflow.log_metrics(metrics)
        if run_tags:
            mlflow.set_tags(run_tags)
        if evaluation is not None:
            import pyarrow.parquet as pq

            with tempfile.TemporaryDirectory() as scratch:
                pq.write_table(evaluation, f"{scratch}/eval.parquet")
                mlflow.log_artifact(f"{scratch}/eval.parquet", artifact_path="evaluation")
        if source_style == "runs":
            # The classic layout: the model's files are run artifacts under "model" (MLflow 3's log_model
            # would put them under the LoggedModel's own location instead).
            with tempfile.TemporaryDirectory() as scratch:
                mlflow.sklearn.save_model(model, f"{scratch}/model", pip_requirements=PIP_REQUIREMENTS)
                mlflow.log_artifacts(f"{scratch}/model", artifact_path="model")
        else:
            info = mlflow.sklearn.log_model(model, name="model", pip_requirements=PIP_REQUIREMENTS)
    run_id = run.info.run_id
    if source_style == "runs":
        source, model_id = f"runs:/{run_id}/model", None
        storage_uri = client.get_run(run_id).info.artifact_uri.rstrip("/") + "/model"
    else:
        source, model_id = info.model_uri, info.model_id
        storage_uri = client.get_logged_model(info.model_id).artifact_location
    version = client.create_model_version(
        name, source=source, run_id=run_id, tags=tags or {}, description=description, model_id=model_id
    )
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return RegisteredVersion(
        name=name, version=str(version.version), run_id=run_id, model_id=model_id, source=source,
        storage_uri=storage_uri, metrics=metrics, params=params, tags=dict(tags or {}), alias=alias,
    )


def register_logged_model_version(
    tracking_uri: str,
    name: str,
    *,
    tags: dict[str, str] | None = None,
    alias: str | None = None,
    seed: int = 0,
    description: str | None = None,
    metrics: dict[str, float] | None = None,
) -> RegisteredVersion:
    """Log the model outside any run (a LoggedModel with params), attach metrics to the model id from an
    evaluation run, and register ``models:/m-...`` as a version: MLflow reports ``run_id`` null for it."""
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient

    model, measured, params = train_tiny_model(seed)
    metrics = dict(metrics if metrics is not None else measured)
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    mlflow.set_tracking_uri(tracking_uri)
    experiment_id = _experiment(client, name)
    ensure_registered_model(client, name)
    if mlflow.active_run() is not None:
        raise RuntimeError("register_logged_model_version must be called outside an active run")
    mlflow.set_experiment(experiment_id=experiment_id)
    info = mlflow.sklearn.log_model(model, name="model", params=params, pip_requirements=PIP_REQUIREMENTS)
    if info.run_id:
        raise RuntimeError(f"expected a LoggedModel without a run, got run {info.run_id}")

    evaluation = client.create_run(experiment_id, run_name=f"evaluate-{name}-{seed}")
    now = int(time.time() * 1000)
    for key, value in metrics.items():
        client.log_metric(evaluation.info.run_id, key, value, timestamp=now, step=0, model_id=info.model_id)
    client.set_terminated(evaluation.info.run_id)

    source = f"models:/{info.model_id}"
    version = client.create_model_version(
        name, source=source, tags=tags or {}, description=description, model_id=info.model_id
    )
    if alias:
        client.set_registered_model_alias(name, alias, version.version)
    return RegisteredVersion(
        name=name, version=str(version.version), run_id=None, model_id=info.model_id, source=source,
        storage_uri=client.get_logged_model(info.model_id).artifact_location, metrics=metrics, params=params,
        tags=dict(tags or {}), alias=alias,
    )


def _experiment(client: MlflowClient, model_name: str) -> str:
    """One training experiment per registered model, created on first use."""
    experiment_name = f"train-{model_name}"
    existing = client.get_experiment_by_name(experiment_name)
    return existing.experiment_id if existing else client.create_experiment(experiment_name)
