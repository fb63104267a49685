"""Canary steps in the form each serving target supports (hera_flows/steps/promotion/canary.py): KServe Standard's
spec.canary, Serverless' canaryTrafficPercent, Seldon's candidate Model and Experiment weights; every step valid
against the vendored CRDs, comments kept, and the last step leaving nothing of the canary behind."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import yaml

from hera_flows.steps.promotion import canary, kserve, reconcile, seldon
from hera_flows.steps.promotion.editor import promote
from hera_flows.steps.promotion.health import HEALTHY, NO_DATA, UNHEALTHY, Health
from tests.promotion.test_editor import FRAUD, commit_all, context
from tests.promotion.test_seldon import MODEL
from tests.support.settings import promotion_options

STEPS = [5, 25, 100]
NEW_URI = "s3://mlflow-artifacts/1/models/m-7b2e/artifacts"
OLD_URI = "s3://mlflow-artifacts/1/models/m-6a1f/artifacts"


def _repo(tmp_path: Path, manifest: str) -> Path:
    root = tmp_path / "workspace" / "repo"
    (root / "inference").mkdir(parents=True)
    (root / "inference" / "fraud-detector.yaml").write_text(manifest)
    commit_all(root)
    return root


def _step(root: Path, step: int, mode: str, **deployment: object) -> tuple[str, str]:
    ctx = {**context(**deployment), "rollout": {"step": step, "steps": STEPS, "mode": mode}}
    summary = promote(root, ctx, promotion_options()).summary
    return (root / "inference" / "fraud-detector.yaml").read_text(), summary


def _docs(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def test_kserve_standard_mode_writes_spec_canary_and_the_last_step_folds_it_in(tmp_path: Path) -> None:
    root = _repo(tmp_path, FRAUD.replace('"RawDeployment"', '"Standard"'))
    text, summary = _step(root, 5, canary.STANDARD, replica_max=6)
    [doc] = _docs(text)
    assert kserve.validate_inference_service(doc) == []
    assert doc["spec"]["predictor"]["model"]["storageUri"] == OLD_URI  # the rest of the traffic: unchanged
    [entry] = doc["spec"]["canary"]
    assert entry["trafficPercent"] == 5 and entry["predictor"]["model"]["storageUri"] == NEW_URI
    assert entry["predictor"]["maxReplicas"] == 6  # the canary gets the version's deployment tags
    annotations = doc["metadata"]["annotations"]
    assert annotations["hera-flows.io/mlflow-version"] == "6"
    assert (annotations[canary.CANARY_VERSION_ANNOTATION], annotations[canary.CANARY_PERCENT_ANNOTATION]) == ("7", "5")
    assert "# raise before Black Friday" in text and "# pinned, see RUNBOOK.md" in text
    assert "canary step 5 %" in summary and "`spec.canary`: added, `trafficPercent: 5`" in summary
    assert "canaryTrafficPercent" not in text  # it does not apply to Standard mode

    commit_all_again(root)
    text, _ = _step(root, 25, canary.STANDARD, replica_max=6)
    [doc] = _docs(text)
    assert doc["spec"]["canary"][0]["trafficPercent"] == 25 and kserve.validate_inference_service(doc) == []

    commit_all_again(root)
    text, summary = _step(root, 100, canary.STANDARD, replica_max=6)
    [doc] = _docs(text)
    assert "canary" not in doc["spec"] and doc["spec"]["predictor"]["model"]["storageUri"] == NEW_URI
    assert canary.CANARY_VERSION_ANNOTATION not in doc["metadata"]["annotations"]
    assert doc["metadata"]["annotations"]["hera-flows.io/mlflow-version"] == "7"
    assert kserve.validate_inference_service(doc) == [] and "`spec.canary`: removed" in summary


def test_kserve_serverless_mode_uses_canary_traffic_percent(tmp_path: Path) -> None:
    root = _repo(tmp_path, FRAUD.replace('"RawDeployment"', '"Serverless"'))
    text, _ = _step(root, 5, canary.SERVERLESS)
    [doc] = _docs(text)
    predictor = doc["spec"]["predictor"]
    assert (predictor["canaryTrafficPercent"], predictor["model"]["storageUri"]) == (5, NEW_URI)
    assert doc["metadata"]["annotations"]["hera-flows.io/mlflow-version"] == "6"  # still serves the rest
    assert "canary" not in doc["spec"] and kserve.validate_inference_service(doc) == []
    commit_all_again(root)
    text, _ = _step(root, 100, canary.SERVERLESS)
    [doc] = _docs(text)
    assert "canaryTrafficPercent" not in doc["spec"]["predictor"]
    assert doc["metadata"]["annotations"]["hera-flows.io/mlflow-version"] == "7"


def test_seldon_writes_a_candidate_model_and_an_experiment_then_removes_them(tmp_path: Path) -> None:
    root = _repo(tmp_path, MODEL)
    text, summary = _step(root, 5, "seldon", replica_max=6)
    main, candidate, experiment = _docs(text)
    assert main["spec"]["storageUri"] == OLD_URI and candidate["spec"]["storageUri"] == NEW_URI
    assert candidate["metadata"]["name"] == "fraud-detector-v7" and candidate["spec"]["maxReplicas"] == 6
    assert "hera-flows.io/mlflow-model" not in candidate["metadata"]["annotations"]  # never found as the model's
    assert experiment["spec"] == {"default": "fraud-detector", "candidates": [
        {"name": "fraud-detector", "weight": 95}, {"name": "fraud-detector-v7", "weight": 5}]}
    assert all(seldon.validate(d) == [] for d in (main, candidate, experiment))
    assert text.startswith(MODEL.split("\n")[0]) and "# the Server must support the mlflow runtime" in text
    assert "Seldon Experiment `fraud-detector-canary`: added, weights 95 / 5" in summary

    commit_all_again(root)
    text, _ = _step(root, 25, "seldon", replica_max=6)
    _, _, experiment = _docs(text)
    assert [c["weight"] for c in experiment["spec"]["candidates"]] == [75, 25]

    commit_all_again(root)
    text, summary = _step(root, 100, "seldon", replica_max=6)
    [main] = _docs(text)
    assert main["spec"]["storageUri"] == NEW_URI and seldon.validate(main) == []
    assert "Experiment" not in text and "fraud-detector-v7" not in text
    assert "candidate Model: removed" in summary


def test_modelmesh_has_no_canary_and_promotes_at_once(tmp_path: Path) -> None:
    root = _repo(tmp_path, FRAUD.replace('"RawDeployment"', '"ModelMesh"'))
    text, summary = _step(root, 5, canary.MODELMESH)
    [doc] = _docs(text)
    assert doc["spec"]["predictor"]["model"]["storageUri"] == NEW_URI and "canary" not in doc["spec"]
    assert "ModelMesh has no traffic split" in summary


def test_the_mode_comes_from_the_annotation_else_the_configured_default(tmp_path: Path) -> None:
    from hera_flows.steps.common import StepError
    from hera_flows.steps.promotion.serving_manifest import find_serving_manifest

    for annotation, default, expected in (('"Serverless"', "Standard", canary.SERVERLESS),
                                          ('"RawDeployment"', "Serverless", canary.STANDARD)):
        root = tmp_path / annotation.strip('"') / "repo"
        (root / "inference").mkdir(parents=True)
        (root / "inference" / "f.yaml").write_text(FRAUD.replace('"RawDeployment"', annotation))
        found = find_serving_manifest(root, "fraud-detector", "inference")
        assert canary.mode_of(found, default) == expected
    without = tmp_path / "none" / "repo"
    (without / "inference").mkdir(parents=True)
    mode_line = '    serving.kserve.io/deploymentMode: "RawDeployment"\n'
    (without / "inference" / "f.yaml").write_text(FRAUD.replace(mode_line, ""))
    found = find_serving_manifest(without, "fraud-detector", "inference")
    assert canary.mode_of(found, "Standard") == canary.STANDARD  # KServe v0.20's default
    (without / "inference" / "f.yaml").write_text(FRAUD.replace('"RawDeployment"', '"Knative"'))
    with pytest.raises(StepError, match="unknown KServe deployment mode 'Knative'"):
        canary.mode_of(find_serving_manifest(without, "fraud-detector", "inference"), "Standard")


def commit_all_again(root: Path) -> None:
    from hera_flows.steps.gitrepo import run_git

    run_git(["add", "--all"], cwd=root)
    run_git(["-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "--quiet", "-m", "merged"], cwd=root)


# --- the reconciler's canary decisions ---------------------------------------------------------------------------


def _canary(percent: int, verdict: str, *, changed: float, dwell: float = 60) -> reconcile.Canary:
    return reconcile.Canary(percent, tuple(STEPS), changed, dwell, lambda: Health(verdict, []))


@pytest.mark.parametrize(("state", "verdict", "age", "next_open", "expected"), [
    ("canary-5", HEALTHY, 120, False, reconcile.START),
    ("canary-5", UNHEALTHY, 120, False, reconcile.MARK_HALTED),
    ("canary-5", NO_DATA, 120, False, reconcile.WAIT),
    ("canary-5", HEALTHY, 10, False, reconcile.WAIT),  # the step has not served its dwell time yet
    ("canary-5", HEALTHY, 120, True, reconcile.PROPOSED),
    ("canary-halted", HEALTHY, 120, False, reconcile.SKIP),  # halted stays halted until a person says otherwise
])
def test_the_next_step_only_after_the_dwell_and_while_the_slis_hold(state, verdict, age, next_open, expected) -> None:
    now = time.time()
    action = reconcile.decide("fraud", "7", "champion", "6", state, "b", lambda: False,
                              canary=_canary(5, verdict, changed=now - age), next_pr_open=lambda step: next_open,
                              now=now)
    assert action.action == expected, action.reason
    if expected == reconcile.START:
        assert action.rollout_step == 25


# --- end to end: a canary that advances while the SLIs hold and stops at 25 % when they fail ---------------------

ERROR_RATIO = 'model:request_error_ratio:rate5m{model="fraud-detector"}'
P99 = 'model:request_latency_seconds:p99_5m{model="fraud-detector"}'
WEBHOOK_SECRET = "canary-webhook-secret"


@pytest.mark.slow
@pytest.mark.parametrize("target", ["kserve", "seldon"])
def test_a_canary_advances_while_healthy_and_stops_at_25_when_the_health_query_fails(
    target, tmp_path: Path, monkeypatch, mlflow_server, make_gitops_remote, github_api, kube_api, prometheus,
    webhook_receiver,
) -> None:
    import json

    from hera_flows.local.standins.kserve import start_kserve
    from hera_flows.local.standins.seldon import start_seldon
    from hera_flows.steps.promotion import lifecycle
    from tests.promotion.test_reconcile import merge
    from tests.support.go_json import argo_event_data
    from tests.support.mlflow_models import register_run_version
    from tests.support.promotion_world import promotion_world

    world = promotion_world(tmp_path, mlflow_server, make_gitops_remote, target=target)
    model, client, remote = world.model, world.client, world.remote
    endpoint, stop = (start_kserve if target == "kserve" else start_seldon)("fraud-detector")
    world.generate(mlflow_server, github_api, endpoint.url, webhook_secret=WEBHOOK_SECRET, promotion={
        "rollout": {"enabled": True, "steps": STEPS, "dwell_seconds": 0, "prometheus_url": prometheus.url}})
    monkeypatch.setenv("KUBECONFIG", str(kube_api.write_kubeconfig(tmp_path / "kubeconfig", "mlops-automation")))

    def manifest(ref: str = "main") -> list[dict]:
        return _docs(remote.read("inference/fraud-detector.yaml", ref))

    def reconcile_once(name: str) -> list[dict]:
        result = world.run("promotion-reconcile", name)
        return [a for a in json.loads(result.outputs["actions"]) if a["model"] == model]

    try:
        # 1. the promotion event: the PR writes the first step, 5 %
        candidate = register_run_version(mlflow_server.uri, model, seed=2)
        webhook = client.create_webhook(name=f"canary-{model}", url=webhook_receiver.url_for("/mlflow"),
                                        events=["model_version_alias.created"], secret=WEBHOOK_SECRET)
        try:
            client.set_registered_model_alias(model, "champion", candidate.version)
            [request] = webhook_receiver.wait_for(1)
        finally:
            client.delete_webhook(webhook.webhook_id)
        world.run("mlflow-promotion", "step-5", event=argo_event_data(request.headers, request.body))
        [pull] = github_api.pulls()
        assert pull["title"].endswith("(canary 5 %)")
        docs = manifest(pull["head"])
        if target == "kserve":
            assert docs[0]["spec"]["canary"][0]["trafficPercent"] == 5
        else:
            assert [c["weight"] for c in docs[2]["spec"]["candidates"]] == [95, 5]
        assert client.get_model_version(model, candidate.version).tags[lifecycle.STATE_TAG] == "canary-5"
        merge(remote, pull["head"])

        # 2. healthy SLIs: the reconciler proposes 25 %
        prometheus.exporter.set("fraud-detector", error_ratio=0.0002, latency_seconds=0.08)
        prometheus.wait_for(ERROR_RATIO, lambda v: v < 0.001)
        prometheus.wait_for(P99, lambda v: v < 0.2)
        [action] = reconcile_once("reconcile-healthy")
        assert (action["action"], action["rollout_step"]) == ("start-promotion", 25), action
        assert action["health"]["verdict"] == "healthy"
        [created] = [w for w in kube_api.workflows.values() if '"rollout_step": 25' in
                     w["metadata"]["annotations"]["hera-flows.io/event-body"]]
        world.run_object(created, "step-25")
        [_, pull25] = sorted(github_api.pulls(), key=lambda p: p["number"])
        assert pull25["head"].endswith(f"-v{candidate.version}-25pct") and pull25["title"].endswith("(canary 25 %)")
        merge(remote, pull25["head"])
        docs = manifest()
        if target == "kserve":
            assert docs[0]["spec"]["canary"][0]["trafficPercent"] == 25
        else:
            assert [c["weight"] for c in docs[2]["spec"]["candidates"]] == [75, 25]

        # 3. the error rate and p99 latency break their SLOs: the canary stops at 25 %
        prometheus.exporter.set("fraud-detector", error_ratio=0.05, latency_seconds=0.4)
        prometheus.wait_for(ERROR_RATIO, lambda v: v > 0.001)
        prometheus.wait_for(P99, lambda v: v > 0.2)
        [action] = reconcile_once("reconcile-unhealthy")
        assert action["action"] == "mark-canary-halted" and "canary at 25 % stops" in action["reason"]
        assert "error_ratio" in action["reason"] and action["health"]["verdict"] == "unhealthy"
        assert client.get_model_version(model, candidate.version).tags[lifecycle.STATE_TAG] == "canary-halted"
        [action] = reconcile_once("reconcile-again")
        assert action["action"] == "skip" and "halted" in action["reason"]
        assert len(github_api.pulls()) == 2  # no 100 % step
        assert manifest()[0]["metadata"]["annotations"]["hera-flows.io/canary-percent"] == "25"
    finally:
        stop()
