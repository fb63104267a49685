"""`hera-flows step drift-monitor`: an Evidently DataDriftPreset report between a reference dataset and the
current window; the per-column drift scores are the ``scores`` output, and one drift event per *drifted*
column is POSTed to the drift EventSource (bearer token from ``HF_DRIFT_TOKEN``). Columns without drift post
nothing.

Datasets are paths or URLs pandas reads (``.csv``, ``.parquet``; local, ``s3://`` with the matching fsspec
package) or MLflow artifacts (``runs:/<run>/<path>``, ``models:/...``, ``mlflow-artifacts:/...``), downloaded
with ``--tracking-uri``. Windows larger than ``--max-rows`` are sampled down (seeded, so the same data gives
the same report). Evidently decides drift per column with the method it picks by row count and type: up to
1,000 rows p-values (drift when *below* the threshold), above that distances (drift when *at or above*); the
method and threshold are read from the report, never assumed.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import TYPE_CHECKING, Any

from hera_flows.steps.common import StepError, log, retry, secret
from hera_flows.steps.contract import Flag, Step

if TYPE_CHECKING:
    import pandas as pd

EVENT_KIND = "hera-flows/drift"
MLFLOW_SCHEMES = ("runs:/", "models:/", "mlflow-artifacts:")
# Object stores are read through MLflow's artifact clients too: the step image has boto3, google-cloud-storage and
# the Azure clients (what MLflow uses), not fsspec's s3fs/gcsfs/adlfs that pandas would need for these URLs.
OBJECT_STORE_SCHEMES = ("s3://", "gs://", "wasbs://", "abfss://")


def load_dataset(location: str, tracking_uri: str | None = None) -> pd.DataFrame:
    import pandas as pd

    path = location
    if location.startswith(MLFLOW_SCHEMES + OBJECT_STORE_SCHEMES):
        import mlflow

        try:
            path = mlflow.artifacts.download_artifacts(artifact_uri=location, tracking_uri=tracking_uri)
        except Exception as exc:  # noqa: BLE001 - MLflow raises many types; the message is what matters
            raise StepError(f"cannot download {location} from MLflow: {str(exc).splitlines()[0][:200]}") from None
    try:
        if path.endswith(".parquet"):
            return pd.read_parquet(path)
        if path.endswith((".csv", ".csv.gz")):
            return pd.read_csv(path)
    except FileNotFoundError:
        raise StepError(f"dataset {location} does not exist") from None
    except (OSError, ValueError) as exc:
        raise StepError(f"cannot read dataset {location}: {str(exc).splitlines()[0][:200]}") from None
    raise StepError(f"dataset {location}: only .csv and .parquet files are supported")


def sample(frame: pd.DataFrame, max_rows: int, seed: int) -> tuple[pd.DataFrame, bool]:
    if len(frame) <= max_rows:
        return frame, False
    return frame.sample(n=max_rows, random_state=seed).reset_index(drop=True), True


def drift_scores(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> dict[str, dict[str, Any]]:
    """Per column: method, threshold, score, drifted (from Evidently's DataDriftPreset)."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    report = Report([DataDriftPreset(columns=columns)])
    snapshot = report.run(current_data=current[columns], reference_data=reference[columns]).dict()
    scores: dict[str, dict[str, Any]] = {}
    for metric in snapshot.get("metrics", []):
        config = metric.get("config") or {}
        if not str(config.get("type", "")).endswith("ValueDrift") or config.get("column") not in columns:
            continue
        method, threshold, value = str(config.get("method", "")), config.get("threshold"), metric.get("value")
        if not isinstance(value, (int, float)) or not isinstance(threshold, (int, float)) or math.isnan(value):
            continue
        p_value = "p_value" in method
        drifted = value < threshold if p_value else value >= threshold
        scores[config["column"]] = {"method": method, "threshold": float(threshold), "score": float(value),
                                    "drifted": bool(drifted), "p_value": p_value}
    return scores


def run_monitor(reference: pd.DataFrame, current: pd.DataFrame, *, columns: list[str] | None = None,
                max_rows: int = 200_000, seed: int = 42) -> dict[str, Any]:
    """The whole computation without I/O (the benchmark calls this)."""
    shared = [c for c in reference.columns if c in set(current.columns)]
    wanted = [c for c in (columns or shared) if c in shared]
    missing = sorted(set(columns or []) - set(shared))
    if missing:
        raise StepError(f"columns not present in both datasets: {', '.join(missing[:10])}")
    if not wanted:
        raise StepError("the reference and current datasets share no column")
    reference_rows, current_rows = len(reference), len(current)
    reference, ref_sampled = sample(reference, max_rows, seed)
    current, cur_sampled = sample(current, max_rows, seed + 1)
    scores = drift_scores(reference, current, wanted)
    for column, entry in scores.items():
        entry["missing_share"] = round(float(current[column].isna().mean()), 6)
        entry["reference_missing_share"] = round(float(reference[column].isna().mean()), 6)
        entry["dtype"], entry["reference_dtype"] = str(current[column].dtype), str(reference[column].dtype)
    return {"scores": scores, "reference_rows": reference_rows, "current_rows": current_rows,
            "sampled": ref_sampled or cur_sampled, "columns": wanted}


def drift_events(result: dict[str, Any], *, model: str, severity: str, run_key: str) -> list[dict[str, Any]]:
    """The events to post: one per drifted column."""
    drifted = [c for c, s in result["scores"].items() if s["drifted"]]
    share = round(len(drifted) / max(1, len(result["scores"])), 6)
    events = []
    for column in sorted(drifted):
        s = result["scores"][column]
        events.append({
            "kind": EVENT_KIND, "model": model, "feature": column, "severity": severity,
            "metric": "p_value" if s["p_value"] else "drift_score", "method": s["method"],
            "value": s["score"], "threshold": s["threshold"],
            "id": f"evidently-{run_key}-{hashlib.sha256(column.encode()).hexdigest()[:8]}",
            "drift_share": share, "missing_share": s["missing_share"],
            "reference_missing_share": s["reference_missing_share"], "dtype": s["dtype"],
            "reference_dtype": s["reference_dtype"], "reference_rows": result["reference_rows"],
            "current_rows": result["current_rows"], "sampled": result["sampled"],
        })
    return events


def post_events(url: str, token: str, events: list[dict[str, Any]], *, attempts: int = 4) -> int:
    import httpx

    with httpx.Client(timeout=15.0, headers={"Authorization": f"Bearer {token}"}) as client:
        for event in events:
            def send(event: dict[str, Any] = event) -> None:
                try:
                    response = client.post(url, json=event)
                except httpx.TransportError as exc:
                    raise OSError(f"{type(exc).__name__}: {exc}") from None
                if response.status_code >= 500 or response.status_code == 429:
                    raise OSError(f"HTTP {response.status_code}")
                if response.status_code >= 400:
                    raise StepError(f"the drift EventSource refused the event for {event['feature']} with HTTP "
                                    f"{response.status_code} (check the bearer token Secret)")

            retry(send, what=f"posting the drift event for {event['feature']}", attempts=attempts, base_delay=1.0)
            log(f"drift-monitor: posted drift event for {event['model']}/{event['feature']} "
                f"({event['method']} {event['value']:.4g}, threshold {event['threshold']:g})")
    return len(events)


CONTRACT = Step(
    name="drift-monitor",
    entry="hera_flows.steps.drift.monitor:main",
    summary="an Evidently DataDriftPreset report of the current window against the reference; one event per "
            "drifted column, posted to the drift EventSource",
    flags=(
        Flag("model", "the monitored model"),
        Flag("reference", "reference dataset: a path/URL readable by pandas, or an MLflow artifact URI"),
        Flag("current", "current window, same forms as reference"),
        Flag("columns", "columns compared (all common columns when left out)", form="csv", optional=True),
        Flag("max-rows", "larger windows are sampled down to this many rows", kind=int),
        Flag("seed", "sampling seed: the same data gives the same report", kind=int),
        Flag("severity", "severity of the posted events"),
        Flag("event-url", "where events are posted"),
        Flag("tracking-uri", "MLflow, for mlflow-artifacts:/ and runs:/ datasets", optional=True),
    ),
    outputs=("scores", "drifted", "posted"),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    from hera_flows.steps.drift.normalise import NAME

    if not NAME.match(args.model):
        raise StepError(f"--model {args.model!r} is not a valid name")
    token = secret("HF_DRIFT_TOKEN")
    started = time.monotonic()
    reference = load_dataset(args.reference, args.tracking_uri)
    current = load_dataset(args.current, args.tracking_uri)
    columns = list(args.columns or []) or None
    result = run_monitor(reference, current, columns=columns, max_rows=max(100, args.max_rows), seed=args.seed)
    run_key = hashlib.sha256(json.dumps([args.reference, args.current, result["scores"]], sort_keys=True,
                                        default=str).encode()).hexdigest()[:12]
    events = drift_events(result, model=args.model, severity=args.severity, run_key=run_key)
    posted = post_events(args.event_url, token, events)
    CONTRACT.write(args.outputs, scores=json.dumps(result["scores"], sort_keys=True),
                   drifted=json.dumps([e["feature"] for e in events]), posted=str(posted))
    log(f"drift-monitor: {len(result['scores'])} column(s) compared in {time.monotonic() - started:.1f}s "
        f"({result['current_rows']} current rows{', sampled' if result['sampled'] else ''}); "
        f"{len(events)} drifted, {posted} event(s) posted")
    return 0
