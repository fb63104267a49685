"""Which InferenceService a promotion edits (issue 16, item 4): an annotation claims a manifest for exactly one
registered model, so a look-alike name (``Fraud_Detector`` vs ``fraud-detector``) can never take over a manifest
annotated for another model, and an ambiguous repository is refused instead of guessed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hera_flows.steps.common import StepError
from hera_flows.steps.promotion.serving_manifest import AmbiguousManifest, find_serving_manifest
from tests.support.fixtures_gitops import inference_service_manifest
from tests.support.settings import promotion_options


def _repo(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def _isvc(name: str, model: str | None, uri: str = "s3://models/x/1") -> str:
    return inference_service_manifest(name=name, model=model, storage_uri=uri)


def test_a_manifest_annotated_for_another_model_is_never_matched_by_name(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"inference/fraud-detector.yaml": _isvc("fraud-detector", "fraud-detector")})
    # k8s_name("Fraud_Detector") == "fraud-detector": before the fix the name fallback took this manifest over.
    assert find_serving_manifest(repo, "Fraud_Detector", "inference") is None
    found = find_serving_manifest(repo, "fraud-detector", "inference")
    assert found is not None and found.matched_by == "annotation"


def test_an_unannotated_manifest_is_matched_by_its_name(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {"inference/churn.yaml": _isvc("churn-model", None)})
    found = find_serving_manifest(repo, "Churn Model", "inference")
    assert found is not None and found.relative == "inference/churn.yaml" and found.matched_by == "name"


def test_two_manifests_annotated_for_one_model_are_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {
        "inference/a.yaml": _isvc("fraud-a", "fraud-detector"),
        "inference/b.yaml": _isvc("fraud-b", "fraud-detector"),
    })
    with pytest.raises(AmbiguousManifest, match=r"inference/a\.yaml.*inference/b\.yaml"):
        find_serving_manifest(repo, "fraud-detector", "inference")
    assert issubclass(AmbiguousManifest, StepError)  # one clear line, never a traceback


def test_two_unannotated_manifests_with_the_model_name_are_refused(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {
        "inference/prod/fraud.yaml": _isvc("fraud-detector", None),
        "inference/staging/fraud.yaml": _isvc("fraud-detector", None),
    })
    with pytest.raises(AmbiguousManifest, match="annotate the one that serves"):
        find_serving_manifest(repo, "fraud-detector", "inference")


def test_the_annotation_wins_over_a_name_match(tmp_path: Path) -> None:
    repo = _repo(tmp_path, {
        "inference/fraud-detector.yaml": _isvc("fraud-detector", None),
        "inference/v2.yaml": _isvc("fraud-v2", "fraud-detector"),
    })
    found = find_serving_manifest(repo, "fraud-detector", "inference")
    assert found is not None and found.relative == "inference/v2.yaml"


def test_the_builtin_editor_never_rewrites_a_look_alikes_manifest(tmp_path: Path) -> None:
    """The reproduction from the review: promoting ``Fraud_Detector`` must not repoint ``fraud-detector``."""
    from hera_flows.steps.promotion.editor import promote

    original = _isvc("fraud-detector", "fraud-detector", "s3://models/fraud-detector/6")
    repo = _repo(tmp_path, {"inference/fraud-detector.yaml": original})
    context = {"pattern": "promotion", "model": "Fraud_Detector", "version": "1", "alias": "champion",
               "model_version": {"storage_uri": "s3://attacker/bucket"}, "metrics": {}, "deployment": {},
               "serving": {}, "deltas": {}}
    with pytest.raises(StepError, match="no InferenceService or Seldon Model for model 'Fraud_Detector'"):
        promote(repo, context, promotion_options())
    assert (repo / "inference/fraud-detector.yaml").read_text(encoding="utf-8") == original
