"""The triage guard: which workflows proceed, the image-pull grace period, and once-per-uid dedupe through the
Kubernetes API stand-in and the Lease store."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from hera_flows.steps.common import StepError
from hera_flows.steps.triage import guard
from tests.support.fixtures_kube import TriageKubeAPI
from tests.support.settings import generated_flags

OPT_IN = {"mlops.hera-flows/triage": "enabled"}
FINISHED = datetime(2026, 11, 22, 2, 41, 37, tzinfo=timezone.utc).timestamp()


def load(fixtures_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((fixtures_dir / "argo-workflows" / name).read_text())


def decide(workflow: dict[str, Any] | None, *, now: float = FINISHED + 60, uid: str | None = None,
           grace: int = 600) -> guard.Decision:
    uid = uid or (workflow or {}).get("metadata", {}).get("uid", "")
    return guard.decide(workflow, uid=uid, opt_in=OPT_IN, grace_seconds=grace, max_age_seconds=6 * 3600, now=now)


def test_a_failed_opted_in_workflow_proceeds(fixtures_dir: Path) -> None:
    d = decide(load(fixtures_dir, "workflow_failed_oom.json"))
    assert (d.decision, d.case) == ("proceed", "failed")


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda w: w["metadata"]["labels"].pop("mlops.hera-flows/triage"), "not opted in"),
        (lambda w: w["metadata"]["labels"].update({"app.kubernetes.io/managed-by": "hera-flows"}), "refused"),
        (lambda w: w["metadata"]["labels"].update({"hera-flows.io/pattern": "drift"}), "refused"),
        (lambda w: w["status"].update(phase="Succeeded"), "Succeeded"),
        (lambda w: w["metadata"].update(uid="11111111-2222-3333-4444-555555555555"), "replaced"),
    ],
)
def test_skips(fixtures_dir: Path, mutate, reason: str) -> None:
    workflow = load(fixtures_dir, "workflow_failed_oom.json")
    uid = workflow["metadata"]["uid"]
    mutate(workflow)
    d = decide(workflow, uid=uid)
    assert d.decision == "skip" and reason in d.reason


def test_an_old_failure_relisted_after_a_restart_is_skipped(fixtures_dir: Path) -> None:
    d = decide(load(fixtures_dir, "workflow_failed_oom.json"), now=FINISHED + 7 * 3600)
    assert d.decision == "skip" and "re-listed" in d.reason


def test_a_gone_workflow_is_skipped() -> None:
    assert decide(None, uid="3f6c1a52-8d0e-4f43-9b7e-0c5a3e8e1d21").reason == "the workflow no longer exists"


def test_image_pull_needs_the_grace_period(fixtures_dir: Path) -> None:
    workflow = load(fixtures_dir, "workflow_running_imagepullbackoff.json")
    workflow["metadata"]["labels"].update(OPT_IN)
    started = datetime(2026, 11, 22, 9, 0, 5, tzinfo=timezone.utc).timestamp()
    early = decide(workflow, now=started + 120)
    assert early.decision == "skip" and "less than the grace period of 600 s" in early.reason
    late = decide(workflow, now=started + 900)
    assert (late.decision, late.case) == ("proceed", "image-pull") and "900 s" in late.reason
    healthy = copy.deepcopy(workflow)
    for node in healthy["status"]["nodes"].values():
        node.pop("message", None)
    assert decide(healthy, now=started + 900).decision == "skip"


def _run(triage_kube: TriageKubeAPI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workflow: dict[str, Any],
         run_uid: str) -> dict[str, str]:
    out = tmp_path / f"out-{run_uid}"
    monkeypatch.setenv("KUBECONFIG", str(triage_kube.write_kubeconfig(tmp_path / "kubeconfig")))
    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(tmp_path / "state"))
    meta = workflow["metadata"]
    for key, value in {"TARGET_NAME": meta["name"], "TARGET_NAMESPACE": meta["namespace"],
                       "TARGET_UID": meta["uid"], "TRIGGER": "failed", "WORKFLOW_NAME": f"failure-triage-{run_uid}",
                       "WORKFLOW_UID": f"{run_uid}-0000-4000-8000-000000000000"}.items():
        monkeypatch.setenv(f"HF_PARAM_{key}", value)
    monkeypatch.setattr(guard, "_now", lambda: FINISHED + 60)
    assert guard.main([*generated_flags("triage-guard"), "--namespaces=ml-training,ml-pipelines",
                       "--opt-in-labels=mlops.hera-flows/triage=enabled", "--state-namespace=mlops-automation",
                       f"--outputs={out}"]) == 0
    return {p.name: p.read_text() for p in out.iterdir()}


def test_the_same_uid_is_triaged_once(triage_kube: TriageKubeAPI, tmp_path: Path, monkeypatch, fixtures_dir) -> None:
    workflow = load(fixtures_dir, "workflow_failed_oom.json")
    triage_kube.add_workflow(workflow)
    first = _run(triage_kube, tmp_path, monkeypatch, workflow, "aaaaaaaa")
    assert first["decision"] == "proceed" and first["case"] == "failed"
    assert json.loads(first["event"])["template"] == "recommender-train"
    again = _run(triage_kube, tmp_path, monkeypatch, workflow, "aaaaaaaa")  # an Argo retry of the same run
    assert again["decision"] == "proceed"
    second = _run(triage_kube, tmp_path, monkeypatch, workflow, "bbbbbbbb")  # the UPDATE after the ADD
    assert second["decision"] == "skip" and "already triaged" in second["reason"]
    [lease] = list((tmp_path / "state" / "mlops-automation").glob("hf-triage-*.json"))
    assert json.loads(lease.read_text())["metadata"]["ownerReferences"][0]["name"] == "failure-triage-aaaaaaaa"
    assert triage_kube.paths() == \
        ["/apis/argoproj.io/v1alpha1/namespaces/ml-training/workflows/recommender-train-8xk2p"] * 3


def test_an_unwatched_namespace_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_PARAM_TARGET_NAME", "x")
    monkeypatch.setenv("HF_PARAM_TARGET_NAMESPACE", "kube-system")
    monkeypatch.setenv("HF_PARAM_TARGET_UID", "3f6c1a52-8d0e-4f43-9b7e-0c5a3e8e1d21")
    with pytest.raises(StepError, match="not watched"):
        guard.main([*generated_flags("triage-guard"), "--namespaces=ml-training"])
