"""The promotion reconciler and the registry write-back: a promotion whose webhook was lost is started through the
same guard, the version's tags say where it stands, and nothing is ever promoted twice or after a rollback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local.runner import load_template, run_workflow_object
from hera_flows.steps.promotion import lifecycle, reconcile
from hera_flows.steps.promotion.reconcile import Action, decide
from tests.support.fixtures_gitops import git
from tests.support.go_json import argo_event_data
from tests.support.mlflow_models import register_run_version
from tests.support.promotion_world import promotion_world
from tests.support.schemas import problems as schema_problems

slow = pytest.mark.slow
WEBHOOK_SECRET = "reconcile-webhook-secret"


# --- the decision table -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("served", "state", "pr_open", "expected"), [
    ("7", "proposed", False, reconcile.MARK_MERGED),
    ("7", "smoke-failed", False, reconcile.MARK_MERGED),
    ("7", "", False, reconcile.IN_SYNC),
    ("7", "merged", False, reconcile.IN_SYNC),
    ("6", "rollback-proposed", False, reconcile.MARK_ROLLED_BACK),
    ("6", "rolled-back", False, reconcile.SKIP),
    ("6", "rolled-back", True, reconcile.SKIP),
    ("6", "proposed", True, reconcile.PROPOSED),
    ("6", "", True, reconcile.PROPOSED),
    ("6", "", False, reconcile.START),
    (None, "", False, reconcile.START),
    ("6", "smoke-failed", False, reconcile.START),  # its PR was closed unmerged: the alias still asks for it
])
def test_what_the_reconciler_does_for_each_combination(served, state, pr_open, expected) -> None:
    asked: list[bool] = []

    def ask() -> bool:
        asked.append(True)
        return pr_open

    action = decide("fraud", "7", "champion", served, state, "model-promotion/fraud-v7", ask)
    assert action.action == expected, action.reason
    assert (asked != []) == (expected in (reconcile.PROPOSED, reconcile.START))  # the forge is asked only then


def test_the_workflow_it_creates_is_a_valid_argo_workflow_with_the_facts_in_an_annotation() -> None:
    action = Action("Fraud {{workflow.name}}", "7", "champion", "6", "", reconcile.START, "lost")
    workflow = reconcile.workflow_object("mlops-automation", "mlflow-promotion", action)
    assert schema_problems(workflow) == []
    assert workflow["spec"]["arguments"]["parameters"] == [{"name": "event-source", "value": "reconciler"}]
    assert "{{" not in json.dumps(workflow["spec"])  # the registry name never reaches a parameter
    body = json.loads(workflow["metadata"]["annotations"]["hera-flows.io/event-body"])
    assert body["model"] == "Fraud {{workflow.name}}" and body["version"] == "7"
    again = reconcile.workflow_object("mlops-automation", "mlflow-promotion", action)
    assert again["metadata"]["name"] == workflow["metadata"]["name"]  # one name per model version
    other = reconcile.workflow_object("mlops-automation", "mlflow-promotion", Action(
        "Fraud {{workflow.name}}", "8", "champion", "6", "", reconcile.START, "lost"))
    assert other["metadata"]["name"] != workflow["metadata"]["name"]


def test_the_guard_lets_only_one_run_build_a_version_at_a_time(tmp_path: Path, monkeypatch) -> None:
    """An event and the reconciler at once: the second run for the same version is skipped while the first holds
    it; after the first confirmed (its review succeeded), a later event proceeds (and updates the same PR)."""
    from hera_flows.steps.promotion import guard
    from hera_flows.steps.state import FileLeaseStore
    from tests.support.settings import generated_flags

    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(tmp_path / "state"))
    outputs = []
    for uid in ("run-a", "run-b"):
        monkeypatch.setenv("HF_PARAM_MANUAL", "true")
        for name, value in (("MODEL_NAME", "fraud"), ("VERSION", "7"), ("ALIAS", "champion"),
                            ("WORKFLOW_NAME", f"wf-{uid}"), ("WORKFLOW_UID", uid)):
            monkeypatch.setenv(f"HF_PARAM_{name}", value)
        out = tmp_path / uid
        assert guard.main([*generated_flags("promotion-guard"), f"--outputs={out}"]) == 0
        outputs.append((out / "decision").read_text())
    assert outputs == ["proceed", "skipped-in-progress"]
    FileLeaseStore(tmp_path / "state", "mlops-automation").confirm("run-a")
    monkeypatch.setenv("HF_PARAM_WORKFLOW_UID", "run-c")
    out = tmp_path / "run-c"
    assert guard.main([*generated_flags("promotion-guard"), f"--outputs={out}"]) == 0
    assert (out / "decision").read_text() == "proceed"


def test_a_cron_workflow_runs_on_the_local_runner_as_its_workflow_spec(tmp_path: Path) -> None:
    write(render(parse_config(yaml.safe_dump({"repository": {"url": "https://github.com/a/b.git"}}))), tmp_path)
    template = load_template("promotion-reconcile", tmp_path)
    assert template["spec"]["entrypoint"] == "main" and template["metadata"]["name"] == "promotion-reconcile"


# --- end to end -------------------------------------------------------------------------------------------------


def merge(remote: Any, branch: str) -> None:
    """Merge ``branch`` into main in the bare repository, as the forge's merge button would."""
    work = remote.path.parent / f"merge-{branch.replace('/', '-')}"
    git("clone", "--quiet", remote.url, str(work))
    git("merge", "--no-ff", "--quiet", "-m", f"Merge pull request from {branch}", f"origin/{branch}", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)


@slow
def test_a_lost_promotion_is_started_recorded_merged_and_never_doubled(
    tmp_path: Path, monkeypatch, mlflow_server, make_gitops_remote, github_api, kserve_server, kube_api,
    webhook_receiver,
) -> None:
    world = promotion_world(tmp_path, mlflow_server, make_gitops_remote)
    model, client, remote = world.model, world.client, world.remote
    world.generate(mlflow_server, github_api, kserve_server.url, webhook_secret=WEBHOOK_SECRET,
                   promotion={"reconcile": {"max_submissions": 5}})
    monkeypatch.setenv("KUBECONFIG", str(kube_api.write_kubeconfig(tmp_path / "kubeconfig", "mlops-automation")))

    def reconcile_once(name: str) -> Any:
        return world.run("promotion-reconcile", name)

    # The alias is set while no webhook exists: the promotion event is lost.
    candidate = register_run_version(mlflow_server.uri, model, seed=2)
    client.set_registered_model_alias(model, "champion", candidate.version)

    first = reconcile_once("reconcile-1")
    assert first.outputs["started"] == "1"
    actions = {(a["model"], a["version"]): a for a in json.loads(first.outputs["actions"])}
    assert actions[(model, candidate.version)]["action"] == "start-promotion"
    [created] = [w for w in kube_api.workflows.values() if w["metadata"]["labels"].get("hera-flows.io/triggered-by")
                 == "reconciler"]
    assert created["spec"]["workflowTemplateRef"] == {"name": "mlflow-promotion"}

    run = world.run_object(created, "promotion")
    assert run.tasks["guard"].outputs["decision"] == "proceed" and "reconciler" in run.outputs["reason"]
    [pull] = github_api.pulls()
    tags = client.get_model_version(model, candidate.version).tags
    assert tags[lifecycle.STATE_TAG] == "proposed" and tags[lifecycle.PR_TAG] == run.outputs["pr-url"]

    # While its PR is open, neither the reconciler nor a redelivered event opens a second one.
    second = reconcile_once("reconcile-2")
    assert second.outputs["started"] == "0"
    assert {a["action"] for a in json.loads(second.outputs["actions"]) if a["model"] == model} == {"proposed"}
    webhook = client.create_webhook(name=f"late-{model}", url=webhook_receiver.url_for("/mlflow"),
                                    events=["model_version_alias.created"], secret=WEBHOOK_SECRET)
    try:
        webhook_receiver.clear()
        client.set_registered_model_alias(model, "production", candidate.version)
        [request] = webhook_receiver.wait_for(1)
        late = world.run("mlflow-promotion", "late", event=argo_event_data(request.headers, request.body))
    finally:
        client.delete_webhook(webhook.webhook_id)
    assert late.outputs["pr-url"] == run.outputs["pr-url"]
    assert len(github_api.pulls()) == 1 and len(github_api.requests_to("POST", r"/pulls$")) == 1

    # Merged: the next reconcile writes it back to the registry and starts nothing.
    merge(remote, pull["head"])
    third = reconcile_once("reconcile-3")
    assert third.outputs["started"] == "0"
    assert client.get_model_version(model, candidate.version).tags[lifecycle.STATE_TAG] == "merged"
    assert len(github_api.pulls()) == 1


@slow
def test_a_rolled_back_version_is_marked_and_never_promoted_again(
    tmp_path: Path, monkeypatch, mlflow_server, make_gitops_remote, github_api, kserve_server, kube_api,
) -> None:
    world = promotion_world(tmp_path, mlflow_server, make_gitops_remote)  # serves v1: the revert is merged
    model, client = world.model, world.client
    bad = register_run_version(mlflow_server.uri, model, seed=2, alias="champion",
                               tags={lifecycle.STATE_TAG: "rollback-proposed"})
    world.generate(mlflow_server, github_api, kserve_server.url, webhook_secret=WEBHOOK_SECRET,
                   promotion={"reconcile": {"max_submissions": 5}})
    monkeypatch.setenv("KUBECONFIG", str(kube_api.write_kubeconfig(tmp_path / "kubeconfig", "mlops-automation")))
    for name in ("first", "second"):
        result = world.run("promotion-reconcile", name)
        assert result.phase == "Succeeded" and result.outputs["started"] == "0"
    assert client.get_model_version(model, bad.version).tags[lifecycle.STATE_TAG] == "rolled-back"
    assert not kube_api.workflows and github_api.pulls() == []


def test_local_run_needs_a_template_reference(tmp_path: Path) -> None:
    from hera_flows.local.runner import RunError

    with pytest.raises(RunError, match="workflowTemplateRef"):
        run_workflow_object({"spec": {}}, generated=tmp_path)
