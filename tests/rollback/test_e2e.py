"""End to end on the local runner: a promotion is merged, a production SLI alert fires, and the generated
`model-rollback` template opens one revert PR of that promotion — linked to it, with the alert as evidence — and
never a second one; the guard's window, once-per-promotion record and cooldown, each shown to refuse."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from hera_flows.steps.promotion import lifecycle
from hera_flows.steps.rollback import guard
from hera_flows.steps.rollback.history import Promotion
from tests.promotion.test_reconcile import merge
from tests.support.mlflow_models import register_run_version
from tests.support.promotion_world import PromotionWorld, promotion_world


def alert_event(model: str, *, alertname: str = "ModelErrorRateHigh", severity: str = "critical",
                fingerprint: str = "f00d") -> str:
    body = {"version": "4", "status": "firing", "receiver": "argo-events-rollback", "groupLabels": {"model": model},
            "commonLabels": {"model": model}, "truncatedAlerts": 0,
            "alerts": [{"status": "firing", "fingerprint": fingerprint,
                        "labels": {"alertname": alertname, "model": model, "severity": severity},
                        "annotations": {"summary": "error ratio 4.2 % above the 0.1 % SLO"},
                        "startsAt": "2026-12-01T10:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prometheus.monitoring.svc:9090/graph?g0.expr=errors"}]}
    return json.dumps({"header": {"Content-Type": ["application/json"]}, "body": body}, separators=(",", ":"))


@pytest.mark.slow
@pytest.mark.parametrize("target", ["kserve", "seldon"])
def test_an_sli_alert_after_a_merged_promotion_opens_one_revert_pr(
    target: str, tmp_path: Path, mlflow_server, make_gitops_remote, github_api,
) -> None:
    from hera_flows.local.standins.kserve import start_kserve
    from hera_flows.local.standins.seldon import start_seldon

    world = promotion_world(tmp_path, mlflow_server, make_gitops_remote, target=target)
    endpoint, stop = (start_kserve if target == "kserve" else start_seldon)("fraud-detector")
    try:
        world.generate(mlflow_server, github_api, endpoint.url, patterns={"rollback": {"enabled": True}})
        _promote_merge_and_roll_back(world, github_api, mlflow_server)
    finally:
        stop()


def _promote_merge_and_roll_back(world: PromotionWorld, github_api: Any, mlflow_server: Any) -> None:
    model, client, serving, remote, run = world.model, world.client, world.serving, world.remote, world.run

    # A promotion of v2, merged (a merge commit on main, as the forge's button makes it).
    candidate = register_run_version(mlflow_server.uri, model, seed=2)
    promoted = run("mlflow-promotion", "promote", overrides={"manual": "true", "model-name": model,
                                                             "version": candidate.version, "alias": "champion"})
    [promotion_pr] = github_api.pulls()
    merge(remote, promotion_pr["head"])
    before = remote.read("inference/fraud-detector.yaml", "main~1")

    # The SLI alert fires: one revert PR.
    result = run("model-rollback", "rollback", event=alert_event(model))
    assert result.outputs["decision"] == "proceed", result.outputs["reason"]
    rollback_pr = next(p for p in github_api.pulls() if p["head"].startswith("model-rollback/"))
    assert rollback_pr["head"] == f"model-rollback/{model}-v{candidate.version}"
    assert rollback_pr["title"] == (f"Roll back {model} v{candidate.version} to v{serving.version}: "
                                    "ModelErrorRateHigh fired")
    reverted = remote.read("inference/fraud-detector.yaml", rollback_pr["head"])
    assert reverted == before  # the manifest is exactly what it was before the promotion, comments and all
    doc = yaml.safe_load(reverted)
    assert doc["metadata"]["annotations"]["hera-flows.io/mlflow-version"] == serving.version
    card = remote.read(f"model-cards/{model}.md", rollback_pr["head"]) if f"model-cards/{model}.md" in remote.files(
        rollback_pr["head"]) else ""
    assert f"hera-flows:promotion v{candidate.version}" not in card  # the promotion's card entry is gone too
    body = rollback_pr["body"]
    assert promoted.outputs["pr-url"] in body and "ModelErrorRateHigh" in body and "error ratio 4.2 %" in body
    tags = client.get_model_version(model, candidate.version).tags
    assert tags[lifecycle.STATE_TAG] == "rollback-proposed"
    assert tags[lifecycle.ROLLBACK_PR_TAG] == result.outputs["pr-url"]
    assert "rollback" in github_api.labels(rollback_pr["number"])

    # The alert again (a redelivery, a flapping SLI, another alert): never a second rollback of the promotion.
    again = run("model-rollback", "rollback-again", event=alert_event(model, fingerprint="beef"))
    assert again.outputs["decision"] == "skipped-done" and "never twice" in again.outputs["reason"]
    assert len([p for p in github_api.pulls() if p["head"].startswith("model-rollback/")]) == 1

    # A low-severity alert is filtered before anything else.
    low = run("model-rollback", "rollback-low", event=alert_event(model, severity="warning"))
    assert low.outputs["decision"] == "skipped-filter"


# --- the guard's refusals, one by one -----------------------------------------------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> Any:
    from hera_flows.steps.state import FileLeaseStore

    return FileLeaseStore(tmp_path / "state", "mlops-automation")


ARGS = SimpleNamespace(window_seconds=3600.0, cooldown_seconds=1800.0, claim_seconds=600.0)


def promotion(version: str, age: float) -> Promotion:
    return Promotion("a" * 40, ("b" * 40, "c" * 40), time.time() - age, "Merge pull request #7", version, "6")


def test_an_alert_outside_the_window_rolls_nothing_back(store: Any) -> None:
    with pytest.raises(guard.Skip, match="outside the 3600 s window") as refused:
        guard.decide(ARGS, store, "run-1", "fraud", promotion("7", age=7200))
    assert refused.value.label == "skipped-window" and store.list("app.kubernetes.io/managed-by=hera-flows") == []


def test_one_rollback_per_promotion_and_one_per_model_per_cooldown(store: Any) -> None:
    guard.decide(ARGS, store, "run-1", "fraud", promotion("7", age=60))
    with pytest.raises(guard.Skip, match="already rolled back") as refused:
        guard.decide(ARGS, store, "run-2", "fraud", promotion("7", age=60))
    assert refused.value.label == "skipped-done"
    store.confirm("run-1")
    with pytest.raises(guard.Skip) as refused:  # confirmed: still never twice
        guard.decide(ARGS, store, "run-3", "fraud", promotion("7", age=120))
    assert refused.value.label == "skipped-done"
    # another promotion of the same model inside the cooldown: rate-limited, and its record is given back
    with pytest.raises(guard.Skip, match="cooldown") as refused:
        guard.decide(ARGS, store, "run-4", "fraud", promotion("8", age=60))
    assert refused.value.label == "skipped-cooldown"
    guard.decide(ARGS, store, "run-5", "other-model", promotion("8", age=60))  # other models are not held back
