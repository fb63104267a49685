"""End to end through the local runner: the generated `failure-triage` WorkflowTemplate runs guard -> context ->
classify -> agent (prepare, builtin editor, publish) -> review -> smoke -> report against the Kubernetes API
stand-in (fed with the shared Argo fixtures), a real bare git remote holding the pipelines and the GitHub
stand-in. The event goes through the generated EventSource's selector (local evaluator) and the Sensor."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local import eventsource as es
from hera_flows.local.runner import RunResult, run_workflow
from tests.support.fixtures_kube import TriageKubeAPI, event, pod_for_node

pytestmark = pytest.mark.slow

OOM_NODE = "recommender-train-8xk2p-1733408455"
PIPELINE = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: recommender-train
  labels:
    mlops.hera-flows/triage: enabled
spec:
  entrypoint: main
  workflowMetadata:
    labels:
      mlops.hera-flows/triage: enabled
  templates:
    - name: main
      dag:
        tasks:
          - {name: prepare-data, template: prepare-data}
          - {name: train, template: train, depends: prepare-data}
    - name: prepare-data
      container:
        image: registry.example.com/ml/prepare:2.1
    - name: train
      container:
        image: registry.example.com/ml/train:1.4
        command: [python, train.py]
        resources:
          limits:
            memory: 8Gi  # sized for 90 days of events
"""
GOOD_IMAGE = "registry.example.com/ml/fraud-scorer@sha256:" + "5e" * 32
SCORING = """\
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata:
  name: batch-score-fraud-detector
spec:
  entrypoint: main
  templates:
    - name: main
      dag:
        tasks:
          - {name: score-batch, template: score-batch}
    - name: score-batch
      container:
        image: registry.example.com/ml/fraud-scorer:v7.0.3
        args: [--model, fraud-detector]
"""
PULL_NODE = "batch-score-fraud-detector-q9m4t-2330879829"


@dataclass
class Setup:
    generated: Path
    kube: TriageKubeAPI
    remote: Any
    github: Any
    tmp: Path
    secrets: dict[str, dict[str, str]]
    event_source: dict[str, Any]

    def deliver(self, workflow: dict[str, Any], event_type: str, *, name: str) -> RunResult | None:
        """What the EventSource would deliver for this object, through the Sensor, into a local run."""
        delivered = es.delivering_events(self.event_source, workflow, event_type)
        if not delivered:
            return None
        spec = self.event_source["spec"]["resource"][delivered[0]]
        return run_workflow("failure-triage", generated=self.generated, event=es.event_data(workflow, event_type, spec),
                            secrets=self.secrets, workdir=self.tmp / f"run-{name}", state_dir=self.tmp / "state",
                            echo=False)


@pytest.fixture()
def setup(tmp_path: Path, triage_kube: TriageKubeAPI, make_gitops_remote, github_api, monkeypatch) -> Setup:
    remote = make_gitops_remote(files={"README.md": "# ml pipelines\n",
                                       "pipelines/recommender-train.yaml": PIPELINE,
                                       "pipelines/scoring/batch-score.yaml": SCORING})
    config = {
        "namespace": "mlops-automation",
        "repository": {"url": remote.url, "slug": "acme/ml-gitops"},
        "forge": {"api_url": github_api.url, "token_secret": {"name": "forge", "key": "token"}},
        "workflow": {"retry": {"limit": 1, "backoff_seconds": 1}},
        "patterns": {"promotion": {"enabled": False},
                     "failure_triage": {"enabled": True, "namespaces": ["ml-training", "ml-pipelines"],
                                        # the fixtures finished in 2026-11: accept them whatever today is
                                        "max_event_age_seconds": 10**9,
                                        "fixes": {"images": {"registry.example.com/ml/fraud-scorer": GOOD_IMAGE}}}},
    }
    config["workflow"].update(ttl_seconds_after_success=10**9, ttl_seconds_after_failure=10**9)
    out = tmp_path / "out"
    write(render(parse_config(yaml.safe_dump(config))), out)
    monkeypatch.setenv("KUBECONFIG", str(triage_kube.write_kubeconfig(tmp_path / "kubeconfig")))
    event_source = yaml.safe_load((out / "eventsources" / "workflow-failures.yaml").read_text())
    return Setup(out, triage_kube, remote, github_api, tmp_path, {"forge": {"token": github_api.token}}, event_source)


def _failed(result: RunResult) -> list[tuple[str, str, str]]:
    return [(t.name, t.phase, t.message + t.log[-1500:]) for t in result.tasks.values()
            if t.phase not in ("Succeeded", "Skipped", "Omitted")]


def test_an_oom_becomes_a_pr_raising_the_memory_limit_and_redelivery_is_skipped(setup: Setup, fixtures_dir) -> None:
    workflow = json.loads((fixtures_dir / "argo-workflows" / "workflow_failed_oom.json").read_text())
    setup.kube.add_workflow(workflow)
    pod = pod_for_node(workflow, OOM_NODE, main={"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}})
    setup.kube.add_pod(pod, logs={"main": "epoch 1/5 loss=0.61\nloading embeddings shard 31/64\n"})

    result = setup.deliver(workflow, "ADD", name="oom")

    assert result is not None and result.phase == "Succeeded", _failed(result)
    assert result.outputs["category"] == "oom"
    [branch] = [b for b in setup.remote.branches() if b.startswith("failure-triage/")]
    changed = setup.remote.read("pipelines/recommender-train.yaml", branch)
    assert changed == PIPELINE.replace("memory: 8Gi  #", "memory: 12Gi  #")
    [pull] = setup.github.pulls()
    assert pull["head"] == branch and "oom" in pull["title"]
    assert "OOMKilled" in pull["body"] and "12Gi" in pull["body"] and "@ml-recsys" in pull["body"]
    assert result.outputs["pr-url"].endswith(f"/pull/{pull['number']}")
    assert result.outputs["smoke-result"] == "passed"
    assert any("Smoke test passed" in c["body"] for c in setup.github.comments(pull["number"]))
    assert setup.github.issues() == []

    # The UPDATE that follows the ADD: same uid, skipped by the guard, nothing new on the forge.
    again = setup.deliver(workflow, "UPDATE", name="redelivery")
    assert again is not None and again.phase == "Succeeded"
    assert again.outputs["decision"] == "skip" and "already triaged" in again.outputs["reason"]
    assert [t.phase for name, t in again.tasks.items() if name != "guard"] == ["Skipped"] + ["Omitted"] * 6
    assert len(setup.github.pulls()) == 1 and len(setup.github.requests_to("POST", r"/pulls$")) == 1


def test_a_code_bug_becomes_an_issue_for_the_owner(setup: Setup, fixtures_dir, tmp_path: Path) -> None:
    workflow = json.loads((fixtures_dir / "argo-workflows" / "workflow_failed_oom.json").read_text())
    workflow["metadata"].update(name="recommender-train-k2j9d", uid="5d1e2f3a-0b1c-4d2e-8f3a-4b5c6d7e8f90")
    node = workflow["status"]["nodes"].pop(OOM_NODE)
    node_id = "recommender-train-k2j9d-1733408455"
    node.update(id=node_id, name="recommender-train-k2j9d.train", message="Error (exit code 1)",
                outputs={"exitCode": "1"})
    workflow["status"]["nodes"] = {node_id: node}
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        rows = [{"user": 1, "item": 7}]
        print("building features", flush=True)
        labels = [row["label"] for row in rows]
    """))
    log = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert log.returncode == 1
    setup.kube.add_workflow(workflow)
    setup.kube.add_pod(pod_for_node(workflow, node_id, main={"state": {"terminated": {"reason": "Error",
                                                                                     "exitCode": 1}}}),
                       logs={"main": log.stdout + log.stderr})

    result = setup.deliver(workflow, "ADD", name="code-bug")

    assert result is not None and result.phase == "Succeeded", _failed(result)
    assert result.outputs["category"] == "code-bug"
    assert setup.github.pulls() == []
    assert [b for b in setup.remote.branches() if b.startswith("failure-triage/")] == []
    [issue] = setup.github.issues()
    assert issue["title"].startswith("[failure-triage] recommender-train: code-bug")
    assert "@ml-recsys" in issue["body"] and "KeyError: 'label'" in issue["body"]
    assert {"hera-flows", "failure-triage", "triage:code-bug"} <= set(setup.github.labels(issue["number"]))
    assert result.outputs["issue-url"] and result.tasks["smoke-schema"].phase == "Skipped"


def test_our_own_failed_workflow_never_reaches_a_run(setup: Setup) -> None:
    template = yaml.safe_load((setup.generated / "generated/workflowtemplates/failure-triage.yaml").read_text())
    run = {"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
           "metadata": {"name": "failure-triage-x", "namespace": "ml-training", "uid": "0b7c2f4e-1111-4c8e-9f00-1",
                        "labels": {**template["spec"]["workflowMetadata"]["labels"],
                                   "workflows.argoproj.io/phase": "Failed", "mlops.hera-flows/triage": "enabled"}},
           "status": {"phase": "Failed"}}
    assert setup.deliver(run, "ADD", name="self") is None


def test_a_pod_stuck_pulling_its_image_becomes_a_pr_pinning_the_known_good_image(setup: Setup, fixtures_dir) -> None:
    workflow = json.loads((fixtures_dir / "argo-workflows" / "workflow_running_imagepullbackoff.json").read_text())
    workflow["metadata"]["labels"]["mlops.hera-flows/triage"] = "enabled"
    setup.kube.add_workflow(workflow)
    pod = pod_for_node(workflow, PULL_NODE, main={"image": "registry.example.com/ml/fraud-scorer:v7.0.3", "state": {
        "waiting": {"reason": "ImagePullBackOff",
                    "message": "Back-off pulling image \"registry.example.com/ml/fraud-scorer:v7.0.3\""}}})
    setup.kube.add_pod(pod, events=[event(pod, "Failed", "Failed to pull image \"registry.example.com/ml/fraud-scorer:"
                                                         "v7.0.3\": manifest unknown", count=9)])

    assert setup.deliver(workflow, "ADD", name="pull-add") is None  # a Running workflow only arrives as UPDATE
    result = setup.deliver(workflow, "UPDATE", name="pull")  # the fixture's pod has waited for days by now

    assert result is not None and result.phase == "Succeeded", _failed(result)
    assert result.outputs["category"] == "image-pull"
    [branch] = [b for b in setup.remote.branches() if b.startswith("failure-triage/")]
    changed = setup.remote.read("pipelines/scoring/batch-score.yaml", branch)
    assert changed == SCORING.replace("fraud-scorer:v7.0.3", GOOD_IMAGE.split("/")[-1])
    [pull] = setup.github.pulls()
    assert "image-pull" in pull["title"] and "Failed to pull image" in pull["body"]
    assert result.outputs["smoke-result"] == "passed"


def test_secrets_in_a_failing_log_never_reach_the_issue(setup: Setup, fixtures_dir) -> None:
    """Issue 16 item 10: a password, an AWS secret key and a Secret-sourced variable printed by the failing pod
    are masked in everything that leaves the cluster (the issue body here; the agent context too)."""
    workflow = json.loads((fixtures_dir / "argo-workflows" / "workflow_failed_oom.json").read_text())
    workflow["metadata"].update(name="recommender-train-s3cr7", uid="7d1e2f3a-0b1c-4d2e-8f3a-4b5c6d7e8f91")
    node = workflow["status"]["nodes"].pop(OOM_NODE)
    node_id = "recommender-train-s3cr7-1733408455"
    node.update(id=node_id, name="recommender-train-s3cr7.train", message="Error (exit code 1)",
                outputs={"exitCode": "1"})
    workflow["status"]["nodes"] = {node_id: node}
    pod = pod_for_node(workflow, node_id, main={"state": {"terminated": {"reason": "Error", "exitCode": 1}}})
    pod["spec"]["containers"][1]["env"] = [
        {"name": "FEATURE_STORE_DSN", "valueFrom": {"secretKeyRef": {"name": "fs", "key": "dsn"}}}]
    leaked = ("connecting with password=hunter2-prod\n"
              "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
              "FEATURE_STORE_DSN=fs-7f3a9c1e5b2d\n"
              "Traceback (most recent call last):\n  File \"train.py\", line 3\nKeyError: 'label'\n")
    setup.kube.add_workflow(workflow)
    setup.kube.add_pod(pod, logs={"main": leaked})

    result = setup.deliver(workflow, "ADD", name="leak")

    assert result is not None and result.phase == "Succeeded", _failed(result)
    [issue] = setup.github.issues()
    assert "KeyError: 'label'" in issue["body"]  # the evidence stays
    for secret in ("hunter2-prod", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "fs-7f3a9c1e5b2d"):
        assert secret not in issue["body"]
        assert all(secret not in p.read_text(errors="replace") for p in result.workdir.rglob("context.json"))
    assert "password=***" in issue["body"] and "AWS_SECRET_ACCESS_KEY=***" in issue["body"]
