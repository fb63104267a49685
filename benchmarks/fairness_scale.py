"""The fairness audit at registry scale (issue 13): 5,000 production models on a real MLflow server, through an
artifact repository (a real SeaweedFS S3 server), against the parameter path at its limit in the same run.

Measured, for the artifact path at ``--models`` (default 5,000) and ``--models-per-pod`` (default 50):

- **list**: `hera-flows step fairness-list-models` against the MLflow server through a counting HTTP proxy: MLflow
  requests (pages of 1,000) and wall time; it writes the models list and the shards the audit pods read;
- **pods**: audit pods the fan-out runs (one per shard) and workflow nodes that makes;
- **fan-in**: the shards' results (one real audit result per model, made by the metrics engine on a small
  evaluation set, then stored per shard in the bucket as the audit pods store them) loaded back as one folder, as
  Argo's S3 driver does for the fan-in, and `hera-flows step fairness-collect` run on it as its own process: wall
  time, the process's peak RSS, and the artifact bytes moved (shards, results, context);
- **parameter path at its limit**: the largest number of the same results whose aggregated JSON still fits one
  environment string (Linux: 128 KiB), and collect run the parameter way at that size, then one model more
  (which the kernel refuses: the pod could not start).

Run: ``python -m benchmarks.fairness_scale`` (registers ``--models`` models on a fresh MLflow server: a few minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ENV_STRING_LIMIT = 128 * 1024  # Linux MAX_ARG_STRLEN: one environment string, "NAME=value" and its NUL


def _register(client: Any, prefix: str, count: int) -> None:
    def one(i: int) -> None:
        name = f"{prefix}-{i:05d}"
        client.create_registered_model(name, tags={"fairness.dataset": "/data/eval.parquet"})
        client.create_model_version(name, source=f"s3://models/{name}/1", await_creation_for=0)
        client.set_registered_model_alias(name, "production", "1")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(one, range(count)))


def _result(model: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    return {**template, "model": model["name"], "version": model["version"], "selector": model["selector"]}


def _sample_result() -> dict[str, Any]:
    """One real audit result: the engine on 2,000 rows, 3 attributes and one intersection, as a pod writes it."""
    import numpy as np
    import pyarrow as pa

    from hera_flows.steps.fairness.audit import Settings, measure

    rng = np.random.default_rng(0)
    rows = 2000
    label = (rng.random(rows) < 0.4).astype(int)
    table = pa.table({"sex": rng.choice(["F", "M"], rows), "race": rng.choice(["a", "b", "c", "d"], rows),
                      "age_group": rng.choice(["<30", "30-50", ">50"], rows), "label": label,
                      "pred": np.where(rng.random(rows) < 0.2, 1 - label, label)})
    settings = Settings(dataset="x", label_column="label", prediction_column="pred", positive_label="1",
                        threshold=0.5, sensitive_attributes=["sex", "race", "age_group"],
                        intersections=[("sex", "race")], min_group_count=30)
    result = {"model": "", "version": "", "selector": "", "dataset": "s3://bench/eval.parquet", "rows": 0,
              "overall": None, "attributes": {}, "problems": [], "error": ""}
    result.update(measure(table, settings, lambda frame: None))
    return result


def _collect(env: dict[str, str], out: Path) -> tuple[float, float, int, str]:
    """Run fairness-collect as its own process: (seconds, peak RSS MB of that process, exit code, last log line)."""
    command = [sys.executable, "-m", "hera_flows", "step", "fairness-collect", f"--outputs={out}"]
    started = time.perf_counter()
    try:
        proc = subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    except OSError as exc:  # E2BIG: an environment string over the kernel's limit
        return time.perf_counter() - started, 0.0, -1, f"the kernel refused to start the process: {exc.strerror}"
    assert proc.stderr is not None
    log = proc.stderr.read().strip().splitlines()[-1:] or [""]
    _, status, usage = os.wait4(proc.pid, 0)  # this child's own peak RSS
    proc.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - started, usage.ru_maxrss / 1024, proc.returncode, log[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=5000)
    parser.add_argument("--models-per-pod", type=int, default=50)
    args = parser.parse_args(argv)

    from hera_flows.local.artifacts import ArtifactStore, Repository
    from hera_flows.local.mlflow_server import start_mlflow_server, stop_mlflow_server
    from hera_flows.local.s3_server import start_s3_server, stop_s3_server
    from hera_flows.steps.contract import env_name, file_env_name
    from tests.fairness.test_list_models import CountingProxy

    report: dict[str, Any] = {"models": args.models, "models_per_pod": args.models_per_pod}
    with tempfile.TemporaryDirectory(prefix="hf-bench-scale-") as tmp:
        root = Path(tmp)
        mlflow = start_mlflow_server(root / "mlflow")
        s3 = start_s3_server(root / "s3", buckets=("bench",))
        try:
            started = time.perf_counter()
            _register(mlflow.client(), "bench", args.models)
            report["register_seconds"] = round(time.perf_counter() - started, 1)

            # list: the step as a process, through a proxy that counts MLflow requests
            proxy = CountingProxy(mlflow.uri)
            out = root / "list"
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "hera_flows", "step", "fairness-list-models",
                            f"--tracking-uri={proxy.url}", "--aliases=production", "--stages=",
                            f"--max-models={args.models}", "--deadline-seconds=300",
                            f"--models-per-pod={args.models_per_pod}", f"--outputs={out}"], check=True,
                           capture_output=True)
            list_seconds = time.perf_counter() - started
            proxy.close()
            models = json.loads((out / "models").read_text())
            shard_ids = json.loads((out / "shard-ids").read_text())
            report["list"] = {"mlflow_requests": sum(proxy.counts.values()), "seconds": round(list_seconds, 2),
                              "models_listed": len(models)}
            report["pods"] = {"audit_pods": len(shard_ids), "one_pod_per_model_would_be": len(models)}

            # the shards and results as the pods store them, then the fan-in through the store
            repo = Repository(endpoint=s3.host, bucket="bench", insecure=True, access_key=("s", "a"),
                              secret_key=("s", "k"))
            store = ArtifactStore(repo, {"s": {"a": s3.access_key, "k": s3.secret_key}})
            prefix = "hera-flows/bench-run"
            store.save(out / "models", f"{prefix}/list-models/models.json", archive=False)
            store.save(out / "shards", f"{prefix}/list-models/shards", archive=False)
            template = _sample_result()
            by_shard = {sid: json.loads((out / "shards" / f"{sid}.json").read_text()) for sid in shard_ids}
            results_dir = root / "results-out"
            results_dir.mkdir()
            for sid, shard in by_shard.items():
                (results_dir / f"{sid}.json").write_text(json.dumps([_result(m, template) for m in shard],
                                                                    separators=(",", ":")))
                store.save(results_dir / f"{sid}.json", f"{prefix}/audit/{sid}.json", archive=False)
            written = store.stats.uploaded_bytes

            started = time.perf_counter()
            inputs = root / "inputs"
            store.load(f"{prefix}/audit", inputs / "results", archive_none=True)
            store.load(f"{prefix}/list-models/models.json", inputs / "models", archive_none=True)
            load_seconds = time.perf_counter() - started
            env = {file_env_name("models"): str(inputs / "models"), file_env_name("results"): str(inputs / "results"),
                   env_name("date"): "2026-11-23", env_name("week"): "2026-W48"}
            seconds, rss, code, log = _collect(env, root / "collect")
            assert code == 0, log
            context = (root / "collect" / "context").read_bytes()
            report["fan_in"] = {"load_seconds": round(load_seconds, 2), "collect_seconds": round(seconds, 2),
                                "list_plus_fan_in_seconds": round(list_seconds + load_seconds + seconds, 2),
                                "collect_peak_rss_mb": round(rss, 1), "results_in_context":
                                len(json.loads(context)["results"]), "log": log}
            report["artifact_bytes"] = {"written_by_list_and_audit_pods": written,
                                        "read_by_the_fan_in": store.stats.downloaded_bytes,
                                        "context_object": len(context), "per_model_result": len(json.dumps(
                                            _result(models[0], template), separators=(",", ":")))}

            # the parameter path at its limit, with the same results
            per_model = report["artifact_bytes"]["per_model_result"] + 1
            models_bytes = len(json.dumps(models[0], separators=(",", ":"))) + 1
            limit = (ENV_STRING_LIMIT - 64) // max(per_model, models_bytes)
            while True:  # the exact size: the larger of the two environment strings collect receives
                results = json.dumps([_result(m, template) for m in models[:limit + 1]], separators=(",", ":"))
                if len(results) + 32 >= ENV_STRING_LIMIT:
                    break
                limit += 1
            results = json.dumps([_result(m, template) for m in models[:limit]], separators=(",", ":"))
            env = {env_name("models"): json.dumps(models[:limit], separators=(",", ":")),
                   env_name("results"): results, env_name("date"): "2026-11-23", env_name("week"): "2026-W48"}
            seconds, rss, code, log = _collect(env, root / "collect-param")
            over = dict(env, **{env_name("results"): json.dumps([_result(m, template) for m in models[:limit + 1]],
                                                                separators=(",", ":"))})
            _, _, over_code, over_log = _collect(over, root / "collect-over")
            report["parameter_path"] = {
                "limit_models": limit, "results_parameter_bytes": len(results), "collect_seconds": round(seconds, 2),
                "collect_exit": code, "one_more_model_exit": over_code, "one_more_model": over_log,
                "artifact_path_models_per_parameter_path_limit": round(args.models / limit, 1)}
        finally:
            stop_s3_server(s3)
            stop_mlflow_server(mlflow)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
