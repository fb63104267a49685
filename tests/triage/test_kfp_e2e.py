"""End to end through the local runner: a failed Kubeflow Pipelines v2 run (the shared fixture, KFP's real labels
and annotations, no opt-in label, no WorkflowTemplate) goes through the generated EventSource's KFP watch and the
Sensor into ``failure-triage``: guard -> context -> classify -> builtin editor -> PR on the compiled pipeline spec
(OOM) or an issue for the namespace's owner (code bug); a redelivery of the same run is skipped."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render, write
from hera_flows.local import eventsource as es
from hera_flows.local.runner import RunResult, run_workflow
from tests.support.fixtures_kube import TriageKubeAPI, pod_for_node

pytestmark = pytest.mark.slow

SPEC = (Path(__file__).parent / "data" / "kfp-churn-training.yaml").read_text()
EXECUTOR = "churn-training-pipeline-x7k2q-2801625688"
NAMESPACE = "kubeflow-user-example-com"


class KfpSetup:
    def __init__(self, generated: Path, kube: TriageKubeAPI, remote: Any, github: Any, tmp: Path) -> None:
        self.generated, self.kube, self.remote, self.github, self.tmp = generated, kube, remote, github, tmp
        self.event_source = yaml.safe_load((generated / "eventsources" / "workflow-failures.yaml").read_text())

    def deliver(self, workflow: dict[str, Any], event_type: str, *, name: str) -> RunResult | None:
        delivered = es.delivering_events(self.event_source, workflow, event_type)
        if not delivered:
            return None
        assert delivered == [f"kfp-failed-{NAMESPACE}"]
        spec = self.event_source["spec"]["resource"][delivered[0]]
        return run_workflow("failure-triage", generated=self.generated,
                            event=es.event_data(workflow, event_type, spec),
                            secrets={"forge": {"token": self.github.token}}, workdir=self.tmp / f"run-{name}",
                            state_dir=self.tmp / "state", echo=False)


@pytest.fixture()
def kfp_setup(tmp_path: Path, triage_kube: TriageKubeAPI, make_gitops_remote, github_api, monkeypatch) -> KfpSetup:
    remote = make_gitops_remote(files={"README.md": "# churn\n", "pipelines/churn/pipeline.yaml": SPEC})
    config = {
        "namespace": "mlops-automation",
        "repository": {"url": remote.url, "slug": "acme/ml-gitops"},
        "forge": {"api_url": github_api.url, "token_secret": {"name": "forge", "key": "token"}},
        "workflow": {"retry": {"limit": 1, "backoff_seconds": 1}, "ttl_seconds_after_success": 10**9,
                     "ttl_seconds_after_failure": 10**9},
        "patterns": {"promotion": {"enabled": False},
                     "failure_triage": {"enabled": True, "namespaces": [NAMESPACE], "max_event_age_seconds": 10**9,
                                        "owners": {NAMESPACE: "acme/churn-team"},
                                        "kubeflow": {"enabled": True,
                                                     "ui_url": "https://kubeflow.example.com/pipeline"}}},
    }
    out = tmp_path / "out"
    write(render(parse_config(yaml.safe_dump(config))), out)
    monkeypatch.setenv("KUBECONFIG", str(triage_kube.write_kubeconfig(tmp_path / "kubeconfig")))
    return KfpSetup(out, triage_kube, remote, github_api, tmp_path)


def _failed(result: RunResult | None) -> Any:
    assert result is not None
    return [(t.name, t.phase, t.message + t.log[-1500:]) for t in result.tasks.values()
            if t.phase not in ("Succeeded", "Skipped", "Omitted")]


def _run(fixtures_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fixtures_dir / "kubeflow-pipelines" / "workflow_failed_v2_run.json").read_text())
    return data


def test_an_oom_killed_kfp_task_becomes_a_pr_on_the_pipeline_spec(kfp_setup: KfpSetup, fixtures_dir: Path) -> None:
    run = _run(fixtures_dir)
    assert "mlops.hera-flows/triage" not in run["metadata"]["labels"]  # no opt-in label
    kfp_setup.kube.add_workflow(run)
    kfp_setup.kube.add_pod(pod_for_node(run, EXECUTOR, main={"state": {"terminated": {"reason": "OOMKilled",
                                                                                     "exitCode": 137}}}),
                           logs={"main": "I launcher_v2.go] downloading dataset\nfitting 2.4M rows\n"})

    result = kfp_setup.deliver(run, "ADD", name="oom")

    assert result is not None and result.phase == "Succeeded", _failed(result)
    assert result.outputs["category"] == "oom"
    [branch] = [b for b in kfp_setup.remote.branches() if b.startswith("failure-triage/")]
    assert branch == "failure-triage/churn-training-pipeline-oom"  # named after the pipeline, not the run
    changed = kfp_setup.remote.read("pipelines/churn/pipeline.yaml", branch)
    assert changed == SPEC.replace("memoryLimit: 8.0", "memoryLimit: 12.0").replace(
        "resourceMemoryLimit: 8G", "resourceMemoryLimit: 12G")
    [pull] = kfp_setup.github.pulls()
    assert pull["title"] == "Fix churn-training-pipeline (failure triage: oom)"
    assert "Failing task(s): `train-model`" in pull["body"] and "@acme/churn-team" in pull["body"]
    assert "https://kubeflow.example.com/pipeline/#/runs/details/9b3f6c2e-4a1d-4e8b-a7c5-2d9e0f1b3a64" in pull["body"]
    assert f"`{NAMESPACE}@churn-training-pipeline@oom`" in pull["body"]  # the dedupe key
    assert result.outputs["smoke-result"] == "passed"

    # the persistence agent's later UPDATE of the same run: skipped by uid, nothing new on the forge
    again = kfp_setup.deliver(run, "UPDATE", name="again")
    assert again is not None and again.outputs["decision"] == "skip" and "already triaged" in again.outputs["reason"]
    assert len(kfp_setup.github.pulls()) == 1


def test_a_kfp_code_bug_becomes_an_issue_for_the_namespaces_owner(kfp_setup: KfpSetup, fixtures_dir: Path,
                                                                  tmp_path: Path) -> None:
    run = _run(fixtures_dir)
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import json
        columns = json.loads('{"tenure": 1}')
        print("training on", sorted(columns), flush=True)
        churned = columns["churned"]
    """))
    log = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    assert log.returncode == 1
    kfp_setup.kube.add_workflow(run)
    kfp_setup.kube.add_pod(pod_for_node(run, EXECUTOR, main={"state": {"terminated": {"reason": "Error",
                                                                                     "exitCode": 1}}}),
                           logs={"main": log.stdout + log.stderr})

    result = kfp_setup.deliver(run, "ADD", name="bug")

    assert result is not None and result.phase == "Succeeded", _failed(result)
    assert result.outputs["category"] == "code-bug"
    assert kfp_setup.github.pulls() == []
    [issue] = kfp_setup.github.issues()
    assert issue["title"] == "[failure-triage] churn-training-pipeline: code-bug in churn-training-pipeline-x7k2q"
    assert "@acme/churn-team: a run of your pipeline failed" in issue["body"]
    assert "KeyError: 'churned'" in issue["body"] and "run id `9b3f6c2e-4a1d-4e8b-a7c5-2d9e0f1b3a64`" in issue["body"]
    assert {"failure-triage", "triage:code-bug"} <= set(kfp_setup.github.labels(issue["number"]))
