"""`hera-flows step fairness-audit`: one model's fairness audit (one pod per model, fanned out with ``withParam``).

It reads the model's evaluation dataset (a path, a ``file:`` URI, any MLflow artifact URI, or a path inside the
version's run artifacts; parquet or CSV), takes the predictions from a column or from the model itself (mlflow
pyfunc, imported only then), and runs the numpy engine (``fairness.metrics``) per sensitive attribute and
requested intersection.

Bad input for this model — no dataset, no label column, an attribute the data lacks, an empty group — never
fails the pod: the problem becomes a line of the result (``error`` when nothing could be measured, ``problems``
otherwise), so the fan-out succeeds and the digest names the model and the problem. Only an unreachable MLflow
fails the pod (exit 75, retried by Argo).

The result is compact (numbers rounded to 6 decimals, groups as arrays in ``METRICS`` order): without an artifact
repository every model's result travels to the fan-in inside one Argo parameter. With one, a pod audits a whole
shard of the registry (the ``batch`` input, a file) and writes one result list, stored as an artifact.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hera_flows.steps.common import StepError, TransientError, log, parse_json
from hera_flows.steps.contract import Flag, Step

DIGITS = 6
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
FORMATS = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".gz": "csv", ".tsv": "csv"}


@dataclass
class Settings:
    dataset: str
    label_column: str
    prediction_column: str
    positive_label: str
    threshold: float
    sensitive_attributes: list[str]
    intersections: list[tuple[str, str]] = field(default_factory=list)
    min_group_count: int = 30
    feature_columns: list[str] = field(default_factory=list)  # only from the fairness.feature_columns tag

    def overridden(self, tags: dict[str, str]) -> Settings:
        """Per-model settings from ``fairness.*`` tags (version tags over registered-model tags)."""
        def tag(name: str, current: str) -> str:
            value = tags.get(f"fairness.{name}")
            return value.strip() if isinstance(value, str) and value.strip() else current

        attributes = tag("sensitive_attributes", ",".join(self.sensitive_attributes))
        return Settings(
            dataset=tag("dataset", self.dataset),
            label_column=tag("label_column", self.label_column),
            prediction_column=tag("prediction_column", self.prediction_column),
            positive_label=tag("positive_label", self.positive_label),
            threshold=self.threshold,
            sensitive_attributes=[a.strip() for a in attributes.split(",") if a.strip()],
            intersections=list(self.intersections),
            min_group_count=self.min_group_count,
            feature_columns=[c.strip() for c in tag("feature_columns", "").split(",") if c.strip()],
        )


class AuditProblem(StepError):
    """This model cannot be audited; the message becomes the model's line in the digest."""


CONTRACT = Step(
    name="fairness-audit",
    entry="hera_flows.steps.fairness.audit:main",
    summary="disaggregated fairness metrics of one production model on its evaluation set",
    flags=(
        Flag("tracking-uri", "MLflow tracking server URL"),
        Flag("dataset", "evaluation set: an artifact path of the version's run, or a path/URI"),
        Flag("label-column", "the true label"),
        Flag("prediction-column", "the prediction (empty: predict with the model)"),
        Flag("positive-label", "the favourable outcome"),
        Flag("threshold", "scores above it are positive predictions", kind=float),
        Flag("sensitive-attributes", "columns metrics are disaggregated by", form="csv"),
        Flag("intersections", "pairs of attributes also audited together", form="json"),
        Flag("min-group-count", "groups smaller than this are reported, not scored", kind=int),
        Flag("deadline-seconds", "give up (exit 75) when MLflow is still failing after this long", kind=int),
    ),
    inputs=("model", "shard", "batch"),
    outputs=("result",),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    settings = Settings(
        dataset=args.dataset, label_column=args.label_column, prediction_column=args.prediction_column,
        positive_label=args.positive_label, threshold=args.threshold,
        sensitive_attributes=list(args.sensitive_attributes),
        intersections=[tuple(pair) for pair in args.intersections if isinstance(pair, list) and len(pair) == 2],
        min_group_count=args.min_group_count,
    )
    deadline = time.monotonic() + args.deadline_seconds
    batch = CONTRACT.param("batch")
    if batch.strip():
        # A shard of the registry (artifact repository configured): its models one after the other, one result
        # list for the fan-in; a dataset several models share is downloaded once.
        items = parse_json(batch, f"shard {CONTRACT.param('shard') or '?'}", list)
        with tempfile.TemporaryDirectory(prefix="hf-fairness-") as scratch:
            cache: dict[str, Path] = {}
            results = [audit_model(item if isinstance(item, dict) else {}, settings, args.tracking_uri,
                                   deadline=deadline, cache=cache, scratch=Path(scratch)) for item in items]
        text = json.dumps(results, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        failed = sum(1 for r in results if r["error"])
        log(f"fairness-audit: shard {CONTRACT.param('shard')!r}: {len(results) - failed} model(s) audited, "
            f"{failed} not audited; result {len(text)} bytes")
        CONTRACT.write(args.outputs, result=text)
        return 0
    item = parse_json(CONTRACT.param("model", required=True), "the model parameter")
    result = audit_model(item, settings, args.tracking_uri, deadline=deadline)
    text = json.dumps(result, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    log(f"fairness-audit: {item.get('name')!r} v{item.get('version')}: "
        + (f"not audited: {result['error']}" if result["error"] else f"{result['rows']} rows audited")
        + f"; result {len(text)} bytes")
    CONTRACT.write(args.outputs, result=text)
    return 0


def audit_model(item: dict[str, Any], settings: Settings, tracking_uri: str, *, deadline: float,
                cache: dict[str, Path] | None = None, scratch: Path | None = None) -> dict[str, Any]:
    """The compact result for one listed model; data problems end up in it, transient MLflow failures raise.
    ``cache`` (location -> downloaded file, under ``scratch``) lets a shard download a shared dataset once."""
    name, version = str(item.get("name", "")), str(item.get("version", ""))
    result: dict[str, Any] = {"model": name, "version": version, "selector": str(item.get("selector", "")),
                              "dataset": "", "rows": 0, "overall": None, "attributes": {}, "problems": [], "error": ""}
    try:
        if not name or not version:
            raise AuditProblem("the listed entry has no model name or version")
        with tempfile.TemporaryDirectory(prefix="hf-fairness-", dir=scratch) as own:
            mv, effective = _model_version(tracking_uri, name, version, settings, item, deadline)
            location = dataset_location(effective.dataset, getattr(mv, "run_id", None))
            result["dataset"] = location
            if cache is not None and location in cache:
                path = cache[location]
            else:
                target = Path(tempfile.mkdtemp(prefix="dataset-", dir=scratch)) if cache is not None else Path(own)
                path = fetch(location, target, tracking_uri)
                if cache is not None:
                    cache[location] = path
            table = load_table(path)
            result.update(measure(table, effective, lambda frame: predict(name, version, frame, tracking_uri)))
    except TransientError:
        raise
    except StepError as exc:
        result["error"] = str(exc)
    return result


def _model_version(tracking_uri: str, name: str, version: str, settings: Settings, item: dict[str, Any],
                   deadline: float) -> tuple[Any, Settings]:
    from hera_flows.steps.mlflow_registry import Registry, mlflow_http_settings

    with mlflow_http_settings():
        registry = Registry(tracking_uri, deadline)
        mv = registry.find_version(name, version)
    if mv is None:
        raise AuditProblem(f"version {version} of {name!r} is not in the registry any more")
    tags = {**(item.get("tags") or {}), **(getattr(mv, "tags", None) or {})}
    return mv, settings.overridden(tags)


def dataset_location(dataset: str, run_id: str | None) -> str:
    """An absolute path or URI as is; a relative path is an artifact of the version's run."""
    if not dataset:
        raise AuditProblem("no evaluation dataset is configured (set the model's fairness.dataset tag)")
    if _SCHEME.match(dataset) or dataset.startswith("/"):
        return dataset
    if not run_id:
        raise AuditProblem(f"the version has no run to hold {dataset!r}; set the fairness.dataset tag to a path or URI")
    return f"runs:/{run_id}/{dataset}"


def fetch(location: str, scratch: Path, tracking_uri: str) -> Path:
    """A local file for ``location`` (downloaded through MLflow unless it is a local path or file: URI)."""
    if location.startswith("file:"):
        from urllib.parse import unquote, urlsplit

        location = unquote(urlsplit(location).path)
    if not _SCHEME.match(location):
        path = Path(location)
        if not path.is_file():
            raise AuditProblem(f"evaluation dataset {location} does not exist")
        return path
    import mlflow.artifacts
    from mlflow.exceptions import MlflowException

    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=location, dst_path=str(scratch),
                                                        tracking_uri=tracking_uri))
    except MlflowException as exc:
        message = str(getattr(exc, "message", exc))
        if "failed with" in message and "API request" in message:
            raise TransientError(f"MLflow did not answer while downloading {location}: {message[:200]}") from None
        raise AuditProblem(f"evaluation dataset {location} cannot be downloaded: {message[:200]}") from None
    except OSError as exc:
        raise AuditProblem(f"evaluation dataset {location} cannot be downloaded: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - a storage client's own error (no credentials, access denied, ...)
        # boto3, google-cloud-storage and azure raise their own types: one model's unreadable dataset is that
        # model's problem, never the pod's (the other models of the shard are still audited)
        raise AuditProblem(f"evaluation dataset {location} cannot be downloaded: {type(exc).__name__}: "
                           f"{str(exc)[:200]}") from None


def load_table(path: Path) -> Any:
    """A pyarrow Table from a parquet or CSV file (a folder holding exactly one such file is accepted)."""
    import pyarrow as pa

    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in FORMATS)
        if len(files) != 1:
            raise AuditProblem(f"the evaluation dataset folder {path.name} holds {len(files)} parquet/CSV files, not 1")
        path = files[0]
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise AuditProblem(f"evaluation dataset {path.name}: only parquet and CSV are supported")
    try:
        if kind == "parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        import pyarrow.csv as pcsv

        delimiter = "\t" if path.suffix == ".tsv" else ","
        return pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter=delimiter))
    except (pa.ArrowException, OSError) as exc:
        raise AuditProblem(f"evaluation dataset {path.name} is not readable {kind}: {str(exc)[:200]}") from None


def predict(name: str, version: str, features: Any, tracking_uri: str) -> Any:
    """Predictions of the registered model version (mlflow pyfunc), imported only when no column has them."""
    try:
        import mlflow
        import mlflow.pyfunc
    except ImportError:  # pragma: no cover - depends on the image
        raise AuditProblem("mlflow pyfunc is not installed in the step image; set a prediction column") from None
    mlflow.set_tracking_uri(tracking_uri)
    try:
        model = mlflow.pyfunc.load_model(f"models:/{name}/{version}")
        predictions = model.predict(features.to_pandas())
    except ModuleNotFoundError as exc:
        # The step image carries no ML framework (docs/step-image.md): name what this model's flavour needs.
        raise AuditProblem(f"the model needs the Python package of its flavour ({exc.name!r}), which the step image "
                           f"does not install{model_requirements(name, version)}: run the audit in an image built "
                           "FROM the step image with those packages (docs/step-image.md), or tag the model with "
                           "fairness.prediction_column") from None
    except Exception as exc:  # noqa: BLE001 - any model error is this model's problem, reported in the digest
        raise AuditProblem(f"the model could not predict on its evaluation set: {type(exc).__name__}: "
                           f"{str(exc)[:200]}") from None
    import numpy as np

    values = predictions.iloc[:, 0] if hasattr(predictions, "iloc") and getattr(predictions, "ndim", 1) == 2 \
        else predictions
    return np.asarray(values).reshape(-1)


def model_requirements(name: str, version: str, limit: int = 5) -> str:
    """``" (its requirements: a, b)"``: the first packages the model logged in its requirements.txt, or ""."""
    try:
        import mlflow.pyfunc

        path = mlflow.pyfunc.get_model_dependencies(f"models:/{name}/{version}")
        lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines()
                 if line.strip() and not line.startswith(("#", "-"))]
    except Exception:  # noqa: BLE001 - best effort: the message stands without it
        return ""
    return f" (its requirements: {', '.join(lines[:limit])})" if lines else ""


def measure(table: Any, settings: Settings, predictor: Any) -> dict[str, Any]:
    """Labels, predictions and attributes from ``table``; the engine's result in compact form."""
    import pyarrow as pa

    from hera_flows.steps.fairness import metrics as fm

    columns = set(table.column_names)
    problems: list[str] = []
    if table.num_rows == 0:
        raise AuditProblem("the evaluation dataset has no rows")
    if settings.label_column not in columns:
        raise AuditProblem(f"the evaluation dataset has no label column {settings.label_column!r} "
                           f"(columns: {', '.join(sorted(columns))[:200]})")
    present = [a for a in settings.sensitive_attributes if a in columns]
    for absent in (a for a in settings.sensitive_attributes if a not in columns):
        problems.append(f"sensitive attribute {absent!r} is not in the evaluation dataset")
    if not present:
        raise AuditProblem("none of the sensitive attributes "
                           f"({', '.join(settings.sensitive_attributes)}) is in the evaluation dataset")
    if settings.prediction_column:
        if settings.prediction_column not in columns:
            raise AuditProblem(f"the evaluation dataset has no prediction column {settings.prediction_column!r}")
        raw_pred: Any = table.column(settings.prediction_column)
    else:
        # The model sees its features: the tagged feature columns, or every column but the label and the
        # sensitive attributes.
        if settings.feature_columns:
            missing = [c for c in settings.feature_columns if c not in columns]
            if missing:
                raise AuditProblem(f"feature columns {missing} are not in the evaluation dataset")
            features = table.select(settings.feature_columns)
        else:
            features = table.drop_columns([settings.label_column, *present])
        raw_pred = pa.array(predictor(features))
        if len(raw_pred) != table.num_rows:
            raise AuditProblem(f"the model returned {len(raw_pred)} predictions for {table.num_rows} rows")
    y_true, true_valid = positives(table.column(settings.label_column), settings.positive_label, None)
    y_pred, pred_valid = positives(raw_pred, settings.positive_label, settings.threshold)
    valid = true_valid & pred_valid
    if not valid.all():
        problems.append(f"{int((~valid).sum())} rows without a label or prediction were left out")
        if not valid.any():
            raise AuditProblem("no row has both a label and a prediction")
    attributes = []
    for name in present:
        codes, labels = fm.factorize(table.column(name))
        attributes.append(fm.Attribute(name, codes, labels))
    if not valid.all():
        y_true, y_pred = y_true[valid], y_pred[valid]
        attributes = [fm.Attribute(a.name, a.codes[valid], a.categories) for a in attributes]
    pairs = [(first, second) for first, second in settings.intersections if first in present and second in present]
    for pair in settings.intersections:
        if tuple(pair) not in pairs:
            problems.append(f"intersection {' & '.join(pair)} skipped: an attribute is missing")
    audited = fm.audit(y_true, y_pred, attributes, intersections=pairs, min_group_count=settings.min_group_count)
    compact: dict[str, Any] = {}
    for name, attr in audited["attributes"].items():
        compact[name] = {
            "groups": {label: [g["count"], *(_round(g[m]) for m in fm.METRICS[1:])]
                       for label, g in attr.groups.items()},
            "small": attr.small,
            "dp_difference": _round(attr.dp_difference),
            "dp_ratio": _round(attr.dp_ratio),
            "eo_difference": _round(attr.eo_difference),
        }
        for label in attr.empty:
            problems.append(f"group {label!r} of {name!r} is empty (0 rows): no metrics for it")
        if attr.missing:
            problems.append(f"{attr.missing} rows have no {name!r} value and are not in its groups")
        if attr.dp_difference is None and attr.groups:
            problems.append(f"{name!r}: fewer than two groups with at least {settings.min_group_count} rows, "
                            "no disparity reported")
    overall = audited["overall"]
    return {"rows": int(y_true.shape[0]), "overall": [overall["count"], *(_round(overall[m]) for m in fm.METRICS[1:])],
            "attributes": compact, "problems": problems}


def positives(column: Any, positive_label: str, threshold: float | None) -> tuple[Any, Any]:
    """(is positive, has a value) as bool arrays. Scores (floats outside {0, 1}) use ``threshold``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_dictionary(array.type):
        array = array.cast(array.type.value_type)
    valid = array.is_valid().to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(array.type):
        truth = positive_label.strip().lower() in ("1", "true", "yes")
        values = array.fill_null(False).to_numpy(zero_copy_only=False)
        return (values if truth else ~values), valid
    if pa.types.is_integer(array.type) or pa.types.is_floating(array.type):
        values = array.fill_null(0).to_numpy(zero_copy_only=False)
        if threshold is not None and pa.types.is_floating(array.type) and not np.isin(values[valid], (0.0, 1.0)).all():
            return values >= threshold, valid
        try:
            target = float(positive_label)
        except ValueError:
            raise AuditProblem(f"the positive label {positive_label!r} is not a number, but the column is") from None
        return values == target, valid
    strings = pc.cast(array, pa.string()).fill_null("")
    return pc.equal(strings, positive_label).to_numpy(zero_copy_only=False), valid


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), DIGITS)


