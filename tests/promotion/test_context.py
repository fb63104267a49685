"""The `promotion-context` step against a real MLflow server and a real GitOps repository on disk.

Also shows the fixtures hold up: a real MLflow webhook reaches the local receiver, correctly signed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import pytest

from hera_flows import cli
from hera_flows.steps import gitrepo
from hera_flows.steps.common import EXIT_REJECTED, EXIT_TRANSIENT
from hera_flows.steps.mlflow_registry import quote_filter_value as _quote
from hera_flows.steps.mlflow_registry import redact
from hera_flows.steps.promotion.serving_manifest import find_serving_manifest
from tests.support.fixtures_gitops import GitopsRemote
from tests.support.fixtures_mlflow import MlflowServer, WebhookReceiver, free_port
from tests.support.mlflow_models import (
    DEFAULT_TAGS,
    register_logged_model_version,
    register_run_version,
    unique_model_name,
)
from tests.support.settings import generated_flags

MakeRemote = Callable[..., GitopsRemote]


@pytest.fixture()
def run_step(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Run `hera-flows step promotion-context` in-process; return (exit code, outputs dict, stderr)."""

    def run(tracking_uri: str, repo_url: str, *, model: str, version: str = "", alias: str = "",
            extra: list[str] = ()) -> tuple[int, dict[str, str], str]:  # type: ignore[assignment]
        monkeypatch.setenv("HF_PARAM_MODEL_NAME", model)
        monkeypatch.setenv("HF_PARAM_VERSION", version)
        monkeypatch.setenv("HF_PARAM_ALIAS", alias)
        monkeypatch.delenv("HF_FORGE_TOKEN", raising=False)
        out = tmp_path / f"outputs-{time.monotonic_ns()}"
        capsys.readouterr()
        code = cli.main(["step", "promotion-context", *generated_flags("promotion-context"),
                         f"--tracking-uri={tracking_uri}", f"--repo-url={repo_url}", f"--outputs={out}", *extra])
        outputs = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()} if out.is_dir() else {}
        return code, outputs, capsys.readouterr().err

    return run


def _local_path(uri: str) -> Path:
    parts = urlsplit(uri)
    assert parts.scheme == "file", uri
    return Path(url2pathname(parts.path))


# ------------------------------------------------------------------------------------------ fast tests


def test_dead_server_is_transient_and_fails_fast(run_step) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    code, outputs, err = run_step(dead, "/nonexistent", model="fraud-detector", version="7")
    elapsed = time.monotonic() - started
    assert code == EXIT_TRANSIENT
    assert elapsed < 10, f"a dead MLflow must fail in seconds, took {elapsed:.1f}s"
    assert f"reaching MLflow at {dead}" in err and "Connection refused" in err
    assert "Traceback" not in err
    assert outputs == {}


def test_unresponsive_server_respects_the_deadline(run_step) -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        uri = f"http://127.0.0.1:{silent.getsockname()[1]}"
        started = time.monotonic()
        code, outputs, err = run_step(uri, "/nonexistent", model="fraud-detector", version="7",
                                      extra=["--deadline-seconds=2"])
        elapsed = time.monotonic() - started
    assert code == EXIT_TRANSIENT
    assert elapsed < 6, f"the step overran its 2 s deadline: {elapsed:.1f}s"
    assert f"reaching MLflow at {uri}" in err and "timed out" in err
    assert outputs == {}


@pytest.mark.parametrize(("version", "alias", "expected"), [
    ("seven", "", "version 'seven' is not a model version number"),
    ("0", "", "version '0' is not a model version number"),
    ("", "", "neither a version nor an alias"),
])
def test_bad_version_parameter_rejected_before_any_call(run_step, version: str, alias: str, expected: str) -> None:
    code, _, err = run_step("http://127.0.0.1:9", "/nonexistent", model="m", version=version, alias=alias)
    assert code == EXIT_REJECTED
    assert expected in err


def test_redact_hides_credentials_in_urls() -> None:
    assert redact("https://x-access-token:ghp_secret@github.com/acme/gitops.git") == (
        "https://***@github.com/acme/gitops.git"
    )
    assert redact("http://mlflow:5000") == "http://mlflow:5000"


def test_filter_quoting() -> None:
    assert _quote("fraud-detector") == "'fraud-detector'"
    assert _quote("o'brien") == '"o\'brien"'
    assert _quote("""both'"quotes""") is None  # MLflow's filter parser has no escapes: filter client-side


def test_gitops_fixture_layout(gitops_remote: GitopsRemote, tmp_path: Path) -> None:
    assert sorted(gitops_remote.files()) == [
        ".github/workflows/ci.yml", "README.md", "inference/churn-model.yaml", "inference/fraud-detector.yaml",
        "model-cards/fraud-detector.md",
    ]
    clone = tmp_path / "clone"
    gitrepo.clone(gitops_remote.url, clone, "main")
    fraud = find_serving_manifest(clone, "fraud-detector", "inference")
    churn = find_serving_manifest(clone, "churn-model", "inference")
    assert fraud is not None and fraud.relative == "inference/fraud-detector.yaml"
    assert fraud.document["metadata"]["annotations"]["hera-flows.io/mlflow-version"] == "6"
    assert fraud.document["spec"]["predictor"]["model"]["modelFormat"] == {"name": "mlflow"}
    assert churn is not None and "hera-flows.io/mlflow-model" not in churn.document["metadata"]["annotations"]
    assert "# Managed by the platform team" in gitops_remote.read("inference/fraud-detector.yaml")

    commit = gitops_remote.commit_files({"inference/extra.yaml": "kind: ConfigMap\n"}, "add", branch="feature")
    assert gitops_remote.head("feature") == commit and sorted(gitops_remote.branches()) == ["feature", "main"]


# ------------------------------------------------------------------------------------------ real MLflow

slow = pytest.mark.slow


@slow
def test_webhook_delivery_is_captured_and_signed(
    mlflow_server: MlflowServer, webhook_receiver: WebhookReceiver
) -> None:
    client = mlflow_server.client()
    secret = "fixture-webhook-secret"
    name = unique_model_name("hooked")
    webhook = client.create_webhook(
        name=f"promotion-{name}", url=webhook_receiver.url_for("/mlflow"),
        events=["model_version_alias.created"], secret=secret,
    )
    try:
        version = register_run_version(mlflow_server.uri, name, seed=1)
        client.set_registered_model_alias(name, "champion", version.version)
        [request] = webhook_receiver.wait_for(1)
    finally:
        client.delete_webhook(webhook.webhook_id)

    assert (request.method, request.path) == ("POST", "/mlflow")
    assert request.header("Content-Type") == "application/json"
    delivery_id, timestamp = request.header("X-MLflow-Delivery-Id"), request.header("X-MLflow-Timestamp")
    signature = request.header("X-MLflow-Signature")
    assert delivery_id and timestamp and signature and signature.startswith("v1,")
    assert abs(int(timestamp) - time.time()) < 120
    signed = f"{delivery_id}.{timestamp}.".encode() + request.body
    expected = base64.b64encode(hmac.new(secret.encode(), signed, hashlib.sha256).digest()).decode()
    assert hmac.compare_digest(signature, f"v1,{expected}")
    wrong = base64.b64encode(hmac.new(b"other-secret", signed, hashlib.sha256).digest()).decode()
    assert signature != f"v1,{wrong}"

    body = json.loads(request.body)
    assert (body["entity"], body["action"]) == ("model_version_alias", "created")
    assert body["data"] == {"name": name, "alias": "champion", "version": version.version}


@slow
def test_run_based_version_with_deltas_against_annotated_version(
    mlflow_server: MlflowServer, make_gitops_remote: MakeRemote, run_step
) -> None:
    name = unique_model_name("fraud")
    old = register_run_version(mlflow_server.uri, name, seed=1, metrics={"accuracy": 0.81, "f1": 0.62})
    new = register_run_version(
        mlflow_server.uri, name, seed=2, tags={**DEFAULT_TAGS, "cpu": "500m", "memory": "2Gi"}, alias="champion",
        description="Retrained on 2025-06 data", metrics={"accuracy": 0.86, "f1": 0.65, "roc_auc": 0.93},
    )
    # The manifest names the serving version; its storageUri points elsewhere (the annotation wins).
    remote = make_gitops_remote(fraud_model=name, fraud_version=old.version)

    code, outputs, err = run_step(mlflow_server.uri, remote.url, model=name, version=new.version, alias="champion")
    assert code == 0, err
    assert outputs["manifest-path"] == "inference/fraud-detector.yaml"
    assert outputs["current-version"] == old.version
    context = json.loads(outputs["context"])

    assert (context["pattern"], context["model"], context["version"], context["alias"]) == (
        "promotion", name, new.version, "champion")
    mv = context["model_version"]
    assert mv["run_id"] == new.run_id and mv["model_id"] is None
    assert mv["source"] == f"runs:/{new.run_id}/model"
    assert mv["storage_uri"] == new.storage_uri  # resolved from runs:/..., a location KServe can load
    assert (_local_path(mv["storage_uri"]) / "MLmodel").is_file()
    assert mv["tags"] == new.tags and mv["aliases"] == ["champion"]
    assert mv["description"] == "Retrained on 2025-06 data"
    assert isinstance(mv["creation_timestamp"], int)
    assert context["metrics"] == new.metrics
    assert context["params"] == new.params
    assert context["deployment"] == {
        "runtime_version": "1.6.1", "gpu_type": "NVIDIA-A100-SXM4-80GB", "gpu_count": 1,
        "replica_min": 1, "replica_max": 4, "cpu": "500m", "memory": "2Gi",
    }
    assert context["serving"] == {
        "target": "kserve", "manifest_path": "inference/fraud-detector.yaml", "current_version": old.version,
        "current_storage_uri": "s3://models/fraud-detector/6/artifacts/model", "metrics": old.metrics,
    }
    assert context["deltas"] == {
        "accuracy": {"new": 0.86, "old": 0.81, "delta": 0.05},
        "f1": {"new": 0.65, "old": 0.62, "delta": 0.03},
        "roc_auc": {"new": 0.93, "old": None, "delta": None},
    }


@slow
def test_logged_model_version_resolved_by_alias(
    mlflow_server: MlflowServer, make_gitops_remote: MakeRemote, run_step
) -> None:
    name = unique_model_name("churn")
    new = register_logged_model_version(mlflow_server.uri, name, seed=3, tags={"replica_max": "2"}, alias="champion")
    assert new.run_id is None and new.model_id and new.model_id.startswith("m-")
    # No version annotation and a storageUri no version has: the serving version is unknown.
    remote = make_gitops_remote(fraud_model=name, fraud_version=None)

    code, outputs, err = run_step(mlflow_server.uri, remote.url, model=name, alias="champion")
    assert code == 0, err
    context = json.loads(outputs["context"])
    mv = context["model_version"]
    assert context["version"] == new.version
    assert mv["run_id"] is None
    assert mv["model_id"] == new.model_id
    assert mv["source"] == f"models:/{new.model_id}"
    assert mv["storage_uri"] == new.storage_uri and (_local_path(mv["storage_uri"]) / "MLmodel").is_file()
    assert context["metrics"] == new.metrics  # logged against the model id by an evaluation run
    assert context["params"] == new.params  # the LoggedModel's own params
    assert context["deployment"]["replica_max"] == 2 and context["deployment"]["gpu_type"] is None
    assert context["serving"]["current_version"] is None and context["serving"]["metrics"] is None
    assert outputs["current-version"] == ""
    assert all(d["old"] is None and d["delta"] is None for d in context["deltas"].values())
    assert set(context["deltas"]) == {"accuracy", "f1", "roc_auc"}


@slow
def test_serving_version_found_by_storage_uri(
    mlflow_server: MlflowServer, make_gitops_remote: MakeRemote, run_step
) -> None:
    name = unique_model_name("o'brien")  # a quote in the name: the version search must quote it safely
    serving = register_run_version(mlflow_server.uri, name, seed=4, metrics={"accuracy": 0.9, "f1": 0.7})
    register_run_version(mlflow_server.uri, name, seed=5, source_style="logged-model")  # a distractor
    new = register_logged_model_version(mlflow_server.uri, name, seed=6, metrics={"accuracy": 0.95, "f1": 0.72})
    # No annotation: the manifest's storageUri (with a trailing slash) is where version 1's files are.
    remote = make_gitops_remote(fraud_model=name, fraud_version=None, fraud_storage_uri=serving.storage_uri + "/")

    code, outputs, err = run_step(mlflow_server.uri, remote.url, model=name, version=new.version)
    assert code == 0, err
    context = json.loads(outputs["context"])
    assert outputs["current-version"] == serving.version == "1"
    assert context["alias"] is None
    assert context["serving"]["current_storage_uri"] == serving.storage_uri + "/"
    assert context["serving"]["metrics"] == serving.metrics
    assert context["deltas"]["accuracy"] == {"new": 0.95, "old": 0.9, "delta": 0.05}
    assert context["deltas"]["f1"] == {"new": 0.72, "old": 0.7, "delta": 0.02}


@slow
def test_unknown_model(mlflow_server: MlflowServer, gitops_remote: GitopsRemote, run_step) -> None:
    code, outputs, err = run_step(mlflow_server.uri, gitops_remote.url, model="no-such-model", version="1")
    assert code == EXIT_REJECTED
    assert "registered model 'no-such-model' does not exist in MLflow" in err
    assert outputs == {}


@slow
def test_unknown_version(mlflow_server: MlflowServer, gitops_remote: GitopsRemote, run_step) -> None:
    name = unique_model_name("fraud")
    register_run_version(mlflow_server.uri, name, seed=7)
    code, _, err = run_step(mlflow_server.uri, gitops_remote.url, model=name, version="9")
    assert code == EXIT_REJECTED
    assert f"registered model '{name}' has no version 9" in err
    code, _, err = run_step(mlflow_server.uri, gitops_remote.url, model=name, alias="production")
    assert code == EXIT_REJECTED
    assert f"registered model '{name}' has no alias 'production'" in err


@slow
def test_missing_manifest_names_the_folder(
    mlflow_server: MlflowServer, make_gitops_remote: MakeRemote, run_step
) -> None:
    name = unique_model_name("fraud")
    new = register_run_version(mlflow_server.uri, name, seed=8)
    remote = make_gitops_remote(omit=("inference/fraud-detector.yaml",))
    code, outputs, err = run_step(mlflow_server.uri, remote.url, model=name, version=new.version)
    assert code == EXIT_REJECTED
    assert f"no InferenceService or Seldon Model for model '{name}' in folder 'inference/'" in err
    assert f"'hera-flows.io/mlflow-model: {name}'" in err
    assert outputs == {}


@slow
@pytest.mark.parametrize(("tags", "expected"), [
    ({"replica_min": "abc"}, "tag replica_min='abc' is invalid"),
    ({"replica_min": "5", "replica_max": "2"}, "replica_min='5' and replica_max='2' are inconsistent"),
])
def test_bad_tag_rejected(
    mlflow_server: MlflowServer, gitops_remote: GitopsRemote, run_step, tags: dict[str, Any], expected: str
) -> None:
    name = unique_model_name("fraud")
    new = register_run_version(mlflow_server.uri, name, seed=9, tags=tags)
    code, outputs, err = run_step(mlflow_server.uri, gitops_remote.url, model=name, version=new.version)
    assert code == EXIT_REJECTED
    assert expected in err and "Traceback" not in err
    assert outputs == {}


@slow
def test_a_look_alike_model_cannot_take_over_an_unannotated_manifest(
    mlflow_server: MlflowServer, make_gitops_remote: MakeRemote, run_step
) -> None:
    """Issue 16 item 4: ``Fraud_Detector`` maps to the DNS name of the manifest ``fraud-detector``, which carries
    no annotation; since the registry holds a model named exactly ``fraud-detector``, the promotion is refused."""
    from tests.support.fixtures_gitops import inference_service_manifest

    exact = unique_model_name("lookalike").lower()
    look_alike = exact.replace("-", "_").upper()
    register_run_version(mlflow_server.uri, exact, seed=11)
    attacker = register_run_version(mlflow_server.uri, look_alike, seed=12)
    remote = make_gitops_remote(files={
        "inference/served.yaml": inference_service_manifest(name=exact, model=None, storage_uri="s3://m/1"),
    })
    code, outputs, err = run_step(mlflow_server.uri, remote.url, model=look_alike, version=attacker.version)
    assert code == EXIT_REJECTED, err
    assert f"the registry has a model named exactly '{exact}'" in err and "Traceback" not in err
    assert outputs == {}
    code, outputs, err = run_step(mlflow_server.uri, remote.url, model=exact, version="1")
    assert code == 0, err
    assert outputs["manifest-path"] == "inference/served.yaml"


# --- model-card depth: deployment tag sources, calibration and fairness on the evaluation set ----------------------


def _ece(labels: Any, scores: Any, bins: int) -> float:
    """ECE written out independently of hera_flows/steps/promotion/calibration.py: a loop over the bins."""
    total = 0.0
    for b in range(bins):
        low, high = b / bins, (b + 1) / bins
        rows = [(y, s) for y, s in zip(labels, scores, strict=True) if low <= s < high or (b == bins - 1 and s == 1)]
        if rows:
            total += len(rows) / len(labels) * abs(sum(y for y, _ in rows) / len(rows)
                                                   - sum(s for _, s in rows) / len(rows))
    return total


@slow
def test_deployment_tags_come_from_the_version_over_its_run_with_their_source(
    mlflow_server: MlflowServer, make_gitops_remote: MakeRemote, run_step
) -> None:
    name = unique_model_name("fraud")
    old = register_run_version(mlflow_server.uri, name, seed=1)
    new = register_run_version(mlflow_server.uri, name, seed=2, tags={"replica_max": "8"},
                               run_tags={"gpu_type": "NVIDIA-L4", "replica_min": "2", "replica_max": "3",
                                         "team": "risk"})
    remote = make_gitops_remote(fraud_model=name, fraud_version=old.version)

    code, outputs, err = run_step(mlflow_server.uri, remote.url, model=name, version=new.version, alias="champion")
    assert code == 0, err
    context = json.loads(outputs["context"])
    assert (context["deployment"]["gpu_type"], context["deployment"]["replica_min"],
            context["deployment"]["replica_max"]) == ("NVIDIA-L4", 2, 8)  # the version's replica_max wins
    assert context["deployment_sources"] == {"gpu_type": f"run {new.run_id}", "replica_min": f"run {new.run_id}",
                                             "replica_max": "model version"}


@slow
def test_a_bad_deployment_tag_on_the_run_names_the_run(
    mlflow_server: MlflowServer, make_gitops_remote: MakeRemote, run_step
) -> None:
    name = unique_model_name("fraud")
    new = register_run_version(mlflow_server.uri, name, seed=2, run_tags={"replica_max": "many"})
    remote = make_gitops_remote(fraud_model=name, fraud_version=None)
    code, _, err = run_step(mlflow_server.uri, remote.url, model=name, version=new.version, alias="champion")
    assert code == EXIT_REJECTED
    assert "tag replica_max='many' is invalid" in err and f"(from the run {new.run_id}'s tags)" in err


@slow
def test_calibration_and_fairness_of_both_versions_with_the_audit_record_preferred(
    mlflow_server: MlflowServer, make_gitops_remote: MakeRemote, run_step
) -> None:
    from hera_flows.steps.fairness import card as fairness_card
    from tests.support.mlflow_models import evaluation_table

    name = unique_model_name("fraud")
    old_set, new_set = evaluation_table(seed=1), evaluation_table(seed=2, skew=1.5, sharpen=3.0)
    old = register_run_version(mlflow_server.uri, name, seed=1, evaluation=old_set)
    new = register_run_version(mlflow_server.uri, name, seed=2, evaluation=new_set)
    audit_record = {"date": "2026-11-30", "week": "2026-W48", "version": old.version, "selector": "production",
                    "dataset": "runs:/x/evaluation/eval.parquet", "rows": 400, "overall": None,
                    "attributes": {"sex": {"dp_difference": 0.031, "dp_ratio": 0.94, "eo_difference": 0.05}}}
    card = (f"# Model card\n\n{fairness_card.START}\n## Fairness\n{fairness_card.data_line(audit_record)}\n"
            f"{fairness_card.END}\n")
    remote = make_gitops_remote(fraud_model=name, fraud_version=old.version,
                                extra_files={f"model-cards/{name}.md": card})

    code, outputs, err = run_step(mlflow_server.uri, remote.url, model=name, version=new.version, alias="champion")
    assert code == 0, err
    evaluated = json.loads(outputs["context"])["evaluation"]
    new_result, old_result = evaluated["new"], evaluated["serving"]

    labels = new_set.column("label").to_pylist()
    scores = new_set.column("score").to_pylist()
    assert new_result["dataset"] == f"runs:/{new.run_id}/evaluation/eval.parquet" and new_result["rows"] == 400
    assert new_result["ece"] == pytest.approx(_ece(labels, scores, 10), abs=1e-6)
    pairs = list(zip(labels, scores, strict=True))
    assert new_result["brier"] == pytest.approx(sum((s - y) ** 2 for y, s in pairs) / 400, abs=1e-6)
    accuracy = sum((s >= 0.5) == bool(y) for y, s in pairs) / 400
    assert new_result["accuracy"] == pytest.approx(accuracy, abs=1e-6)
    assert old_result["ece"] == pytest.approx(
        _ece(old_set.column("label").to_pylist(), old_set.column("score").to_pylist(), 10), abs=1e-6)
    assert new_result["ece"] > old_result["ece"]  # the sharpened scores are worse calibrated
    # the new version's disparities are measured on its evaluation set; the serving version's come from the audit
    assert set(new_result["fairness"]) == {"sex", "race"} and new_result["fairness_source"].startswith("evaluation")
    assert old_result["fairness"] == {"sex": {"dp_difference": 0.031, "dp_ratio": 0.94, "eo_difference": 0.05}}
    assert old_result["fairness_source"] == f"fairness audit 2026-W48 (version {old.version})"
    moved = evaluated["deltas"]["fairness"]["sex"]["dp_difference"]
    assert moved == pytest.approx(new_result["fairness"]["sex"]["dp_difference"] - 0.031, abs=1e-6)
    assert evaluated["deltas"]["fairness"]["race"]["dp_difference"] is None  # the audit has no race record
    assert "sensitive attribute 'age_group' is not in the evaluation dataset" in new_result["problems"]


@slow
def test_a_version_without_an_evaluation_set_is_noted_not_fatal(
    mlflow_server: MlflowServer, make_gitops_remote: MakeRemote, run_step
) -> None:
    name = unique_model_name("fraud")
    new = register_run_version(mlflow_server.uri, name, seed=2)
    remote = make_gitops_remote(fraud_model=name, fraud_version=None)
    code, outputs, err = run_step(mlflow_server.uri, remote.url, model=name, version=new.version, alias="champion")
    assert code == 0, err
    evaluated = json.loads(outputs["context"])["evaluation"]
    assert evaluated["new"]["error"].startswith("no evaluation set:") and evaluated["new"]["ece"] is None
    assert evaluated["serving"]["error"] == "the serving version is not known"
