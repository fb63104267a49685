"""Seldon Core v2 serving targets: the vendored CRDs, finding a Seldon Model, the builtin editor's comment-preserving
edit of it, and the smoke step validating it and routing its request through the mesh's Seldon-Model header."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
import yaml

from hera_flows.steps.promotion import seldon
from hera_flows.steps.promotion.editor import promote
from hera_flows.steps.promotion.serving_manifest import SELDON, find_serving_manifest
from tests.promotion.test_editor import commit_all, context, line_diff
from tests.promotion.test_kserve_schema import ROOT, _vendor_script
from tests.support.fixtures_gitops import seldon_model_manifest
from tests.support.settings import promotion_options

MODEL = seldon_model_manifest(name="fraud-detector", model="fraud-detector", version="6",
                              storage_uri="s3://mlflow-artifacts/1/models/m-6a1f/artifacts", min_replicas=1,
                              max_replicas=3, memory="2Gi", comment="Fraud detector on Seldon")
EXPERIMENT = """\
apiVersion: mlops.seldon.io/v1alpha1
kind: Experiment
metadata:
  name: fraud-detector
spec:
  default: fraud-detector
  candidates:
  - name: fraud-detector
    weight: 95
  - name: fraud-detector-v7
    weight: 5
"""


@pytest.mark.parametrize("entry", ["Model", "Experiment"])
def test_vendored_seldon_schemas_equal_what_the_script_derives_from_shared(shared_dir: Path, entry: str) -> None:
    script = _vendor_script()
    (record,) = [e for e in script.SCHEMAS if e.target == seldon.SCHEMA_FILES[entry]]
    assert record.source == "seldon-core-v2-crds.yaml" and record.kind == entry
    vendored = (ROOT / "hera_flows" / "schemas" / record.target).read_bytes()
    assert gzip.decompress(vendored) == script.derive_json(record, shared_dir / "schemas")


def test_valid_model_and_experiment() -> None:
    assert seldon.validate(yaml.safe_load(MODEL)) == []
    assert seldon.validate(yaml.safe_load(EXPERIMENT)) == []


@pytest.mark.parametrize(("edit", "problem"), [
    (lambda d: d["spec"].pop("storageUri"), "spec.storageUri: required field is missing"),
    (lambda d: d["spec"].update(memory="2 GB"), "spec.memory: '2 GB' is not a Kubernetes quantity"),
    (lambda d: d["spec"].update(replicas="two"), "spec.replicas: must be an integer"),
    (lambda d: d["spec"].update(storageURI="s3://x"), "spec.storageURI: unknown field"),
    (lambda d: d["spec"].update(minReplicas=2**31), "spec.minReplicas: 2147483648 is out of range for int32"),
    (lambda d: d["metadata"].update(name="Fraud_Detector"), "metadata.name: 'Fraud_Detector' is not a valid Seldon"),
    (lambda d: d.update(apiVersion="mlops.seldon.io/v1"), "apiVersion: must be mlops.seldon.io/v1alpha1"),
])
def test_model_problems_read_like_kubectl(edit, problem: str) -> None:
    doc = yaml.safe_load(MODEL)
    edit(doc)
    problems = seldon.validate(doc)
    assert any(p.startswith(problem) for p in problems), problems


@pytest.mark.parametrize(("candidates", "default", "problem"), [
    ([{"name": "a", "weight": -5}, {"name": "b", "weight": 5}], "a", "weights must not be negative"),
    ([{"name": "a", "weight": 0}, {"name": "b", "weight": 0}], "a", "at least one weight must be positive"),
    ([{"name": "a", "weight": 1}, {"name": "a", "weight": 1}], "a", "a model is named twice"),
    ([{"name": "a", "weight": 1}], "c", "spec.default: 'c' is not one of the candidates"),
    ([{"name": "a"}], "a", "spec.candidates[0].weight: required field is missing"),
])
def test_experiment_problems(candidates, default, problem: str) -> None:
    doc = yaml.safe_load(EXPERIMENT)
    doc["spec"].update(candidates=candidates, default=default)
    assert any(problem in p for p in seldon.validate(doc)), seldon.validate(doc)


def test_the_repository_chooses_the_target_per_model(tmp_path: Path) -> None:
    (tmp_path / "inference").mkdir()
    (tmp_path / "inference" / "fraud.yaml").write_text(MODEL)
    found = find_serving_manifest(tmp_path, "fraud-detector", "inference")
    assert found is not None and found.target == SELDON and found.label == "Seldon Model"
    # a Model of another API group is not a serving target ("Model" is a common kind name)
    (tmp_path / "inference" / "fraud.yaml").write_text(MODEL.replace("mlops.seldon.io", "example.com"))
    assert find_serving_manifest(tmp_path, "fraud-detector", "inference") is None


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "workspace" / "repo"
    (root / "inference").mkdir(parents=True)
    (root / "inference" / "fraud-detector.yaml").write_text(MODEL)
    commit_all(root)
    return root


def test_the_editor_changes_exactly_the_seldon_fields_and_keeps_comments(repo: Path) -> None:
    ctx = context(replica_min=2, replica_max=6, memory="4Gi", gpu_type="NVIDIA-L4", runtime_version="1.7.0")
    result = promote(repo, ctx, promotion_options())

    after = (repo / "inference" / "fraud-detector.yaml").read_text()
    removed, added = line_diff(MODEL, after)
    assert removed == ['    hera-flows.io/mlflow-version: "6"',
                       "  storageUri: s3://mlflow-artifacts/1/models/m-6a1f/artifacts",
                       "  minReplicas: 1", "  maxReplicas: 3", "  memory: 2Gi"]
    assert added == ['    hera-flows.io/mlflow-version: "7"',
                     "  storageUri: s3://mlflow-artifacts/1/models/m-7b2e/artifacts",
                     "  minReplicas: 2", "  maxReplicas: 6", "  memory: 4Gi"]
    assert "# the Server must support the mlflow runtime" in after and after.startswith("# Fraud detector on Seldon")
    assert seldon.validate(yaml.safe_load(after)) == []
    assert "points the model's Seldon Model at the new version" in result.summary
    assert "`gpu_type`" in result.summary and "do not apply to a Seldon Model" in result.summary


def test_the_smoke_step_validates_the_model_and_routes_through_the_mesh(monkeypatch, tmp_path: Path) -> None:
    from hera_flows.local.standins.seldon import start_seldon
    from hera_flows.steps.promotion import smoke
    from tests.support.settings import generated_flags

    mesh, stop = start_seldon("fraud-detector")
    try:
        mesh.served_version = "7"
        monkeypatch.setenv("HF_PARAM_MODEL_NAME", "fraud-detector")
        monkeypatch.setenv("HF_PARAM_VERSION", "7")
        broken = MODEL.replace("memory: 2Gi", "memory: lots")
        for files, expected in (({"inference/fraud-detector.yaml": MODEL}, "passed"),
                                ({"inference/fraud-detector.yaml": broken}, "failed")):
            monkeypatch.setenv("HF_PARAM_FILES", json.dumps(files))
            out = tmp_path / expected
            assert smoke.main([*generated_flags("promotion-smoke"), f"--endpoint={mesh.url}", "--protocol=v2",
                               f"--outputs={out}"]) == 0
            report = (out / "report").read_text()
            assert (out / "result").read_text() == expected, report
        [first, *_] = mesh.inference_requests
        assert first.headers["Seldon-Model"] == "fraud-detector"  # without it the mesh routes nowhere
        assert "| Seldon Model `inference/fraud-detector.yaml` | ✅ passed | valid against Seldon Core v2.10.2" \
            in (tmp_path / "passed" / "report").read_text()
        assert "spec.memory: 'lots' is not a Kubernetes quantity" in report
        assert "| Served version | ➖ skipped | not verifiable on Seldon Core 2" in report
    finally:
        stop()
