"""Kubeflow Pipelines v2 runs: recognised by KFP's own labels (no opt-in label, no WorkflowTemplate), triaged with
the pipeline's name as identity, and fixed in the compiled pipeline spec the KFP SDK writes.

The run is the shared fixture ``kubeflow-pipelines/workflow_failed_v2_run.json`` (keys as kubeflow/pipelines 2.17.0
puts them on the Workflow, see its README); the spec is ``data/kfp-churn-training.yaml``, compiled by the real
KFP SDK 2.17.3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.local import eventsource as es
from hera_flows.patterns import failure_triage
from hera_flows.steps.triage import context as ctx
from hera_flows.steps.triage import editor as agent
from hera_flows.steps.triage import guard, kfp, smoke
from hera_flows.steps.triage.classify import classify
from hera_flows.steps.triage.kube import KubeReader
from tests.support.fixtures_kube import TriageKubeAPI, pod_for_node
from tests.support.settings import generated_flags, triage_options

SPEC = (Path(__file__).parent / "data" / "kfp-churn-training.yaml").read_text()
FAILED_EXECUTOR = "churn-training-pipeline-x7k2q-2801625688"
NAMESPACE = "kubeflow-user-example-com"


@pytest.fixture
def run(fixtures_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((fixtures_dir / "kubeflow-pipelines" / "workflow_failed_v2_run.json").read_text())
    return data


def kfp_context(category: str, tasks: tuple[str, ...] = ("train-model",)) -> dict[str, Any]:
    return {
        "pattern": "failure_triage", "source": "kubeflow",
        "workflow": {"name": "churn-training-pipeline-x7k2q", "namespace": NAMESPACE, "uid": "5e0c", "phase": "Failed",
                     "template": "", "pipeline": "churn-training-pipeline", "owner": "ml-churn"},
        "kubeflow": {"run_id": "9b3f", "run_name": "churn-training 2026-11-22", "pipeline": "churn-training-pipeline",
                     "recurring_run": "", "url": "", "failing_tasks": list(tasks)},
        "failing_templates": [],
        "classification": {"category": category, "means": "why", "evidence": ["node train-model: OOMKilled"],
                           "remediation": "do something"},
        "pods": [], "notes": [],
    }


def repo_with_spec(tmp_path: Path, text: str = SPEC) -> Path:
    repo = tmp_path / "workspace" / "repo"
    (repo / "pipelines" / "churn").mkdir(parents=True)
    (repo / "pipelines" / "churn" / "pipeline.yaml").write_text(text)
    return repo


# --- the run ---------------------------------------------------------------------------------------------


def test_the_run_is_recognised_by_kfp_labels_and_named_after_its_pipeline(run: dict[str, Any]) -> None:
    assert kfp.is_kfp_run(run)
    assert kfp.pipeline_name(run) == "churn-training-pipeline"  # generateName, the only place KFP puts it
    executor = run["status"]["nodes"][FAILED_EXECUTOR]
    assert executor["displayName"] == "executor" and kfp.task_of(run, executor) == "train-model"
    facts = kfp.run_facts(run)
    assert facts["run_id"] == "9b3f6c2e-4a1d-4e8b-a7c5-2d9e0f1b3a64" != run["metadata"]["uid"]
    assert facts["run_name"] == "churn-training 2026-11-22"
    assert kfp.run_url("https://kfp.example.com/pipeline/", facts["run_id"]) == \
        "https://kfp.example.com/pipeline/#/runs/details/9b3f6c2e-4a1d-4e8b-a7c5-2d9e0f1b3a64"
    recurring = {"metadata": {"name": "nightly-2",
                              "labels": {kfp.RUN_ID_LABEL: "x", kfp.RECURRING_RUN_LABEL: "nightly"}}}
    assert kfp.pipeline_name(recurring) == "nightly"
    assert not kfp.is_kfp_run({"metadata": {"labels": {"mlops.hera-flows/triage": "enabled"}}})


def test_the_guard_needs_no_opt_in_label_for_a_kfp_run_only_when_kubeflow_is_on(run: dict[str, Any]) -> None:
    common = {"uid": run["metadata"]["uid"], "opt_in": {"mlops.hera-flows/triage": "enabled"}, "grace_seconds": 600,
              "max_age_seconds": 10**9, "now": 1.8e9}
    assert guard.decide(run, **common, kubeflow=True).decision == "proceed"
    off = guard.decide(run, **common, kubeflow=False)
    assert off.decision == "skip" and "not opted in" in off.reason
    plain = json.loads(json.dumps(run))
    del plain["metadata"]["labels"][kfp.RUN_ID_LABEL]  # an ordinary workflow still needs the opt-in label
    assert guard.decide(plain, **common, kubeflow=True).decision == "skip"


def test_kfp_runs_have_their_own_watch_and_arrive_once(run: dict[str, Any]) -> None:
    cfg = parse_config(yaml.safe_dump({
        "repository": {"url": "https://github.com/acme/ml.git", "slug": "acme/ml"},
        "patterns": {"failure_triage": {"enabled": True, "namespaces": [NAMESPACE], "kubeflow": {"enabled": True}}}}))
    source = failure_triage.event_source(cfg)
    assert es.delivering_events(source, run, "ADD") == [f"kfp-failed-{NAMESPACE}"]
    opted_in = json.loads(json.dumps(run))
    opted_in["metadata"]["labels"]["mlops.hera-flows/triage"] = "enabled"  # opted in too: still one watch
    assert es.delivering_events(source, opted_in, "ADD") == [f"kfp-failed-{NAMESPACE}"]
    ours = json.loads(json.dumps(run))
    ours["metadata"]["labels"]["app.kubernetes.io/managed-by"] = "hera-flows"
    assert es.delivering_events(source, ours, "ADD") == []
    names = {t["template"]["name"] for t in failure_triage.sensor(cfg)["spec"]["triggers"]}
    assert {f"triage-kfp-failed-{NAMESPACE}", f"triage-kfp-image-pull-{NAMESPACE}"} <= names
    # without kubeflow the run is not selected at all (it carries no opt-in label)
    off = parse_config(yaml.safe_dump({
        "repository": {"url": "https://github.com/acme/ml.git", "slug": "acme/ml"},
        "patterns": {"failure_triage": {"enabled": True, "namespaces": [NAMESPACE]}}}))
    assert es.delivering_events(failure_triage.event_source(off), run, "ADD") == []


def test_the_context_names_the_task_the_pipeline_and_the_configured_owner(
        triage_kube: TriageKubeAPI, run: dict[str, Any]) -> None:
    triage_kube.add_workflow(run)
    pod = pod_for_node(run, FAILED_EXECUTOR, main={"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}})
    triage_kube.add_pod(pod, logs={"main": "I launcher.go] downloading dataset\nepoch 3/10\n"})
    args = ctx.CONTRACT.parse([*generated_flags("triage-context"), f"--owners={json.dumps({NAMESPACE: 'acme/churn'})}",
                               "--kfp-ui-url=https://kfp.example.com/pipeline"])

    context = ctx.build_context(KubeReader(triage_kube.api_client()), NAMESPACE, run["metadata"]["name"],
                                run["metadata"]["uid"], "failed", args)

    assert context["source"] == "kubeflow" and context["workflow"]["pipeline"] == "churn-training-pipeline"
    assert context["workflow"]["template"] == "" and context["workflow"]["owner"] == "acme/churn"
    assert context["kubeflow"]["failing_tasks"] == ["train-model"]
    assert context["kubeflow"]["url"].endswith("#/runs/details/9b3f6c2e-4a1d-4e8b-a7c5-2d9e0f1b3a64")
    assert "node train-model: main: Error (exit code 1)" in context["evidence"]
    assert "WorkflowTemplate" not in " ".join(context["notes"])  # no template is looked for
    assert classify(context).category == "oom"  # the unchanged classifier sees the container's OOMKilled


# --- the fix in the pipeline spec --------------------------------------------------------------------------


def test_an_oom_raises_resource_memory_limit_and_the_legacy_float_keeping_every_other_byte(tmp_path: Path) -> None:
    repo = repo_with_spec(tmp_path)
    summary = agent.triage(repo, kfp_context("oom"), triage_options())
    text = (repo / "pipelines/churn/pipeline.yaml").read_text()
    assert text == SPEC.replace("memoryLimit: 8.0", "memoryLimit: 12.0").replace(
        "resourceMemoryLimit: 8G", "resourceMemoryLimit: 12G")
    assert "12G" in summary and "cc @ml-churn" in summary and "Failing task(s): `train-model`" in summary
    assert agent.writable_paths(repo, kfp_context("oom"), _settings()) == ["pipelines/churn/pipeline.yaml"]
    assert smoke.check_files({"pipelines/churn/pipeline.yaml": text})[0] == "passed"


def test_an_image_pull_pins_the_known_good_image_of_the_tasks_executor(tmp_path: Path) -> None:
    repo = repo_with_spec(tmp_path)
    good = "registry.example.com/ml/churn-train@sha256:" + "7a" * 32
    agent.triage(repo, kfp_context("image-pull"), triage_options(images={"registry.example.com/ml/churn-train": good}))
    text = (repo / "pipelines/churn/pipeline.yaml").read_text()
    assert text == SPEC.replace("image: registry.example.com/ml/churn-train:3.0", f"image: {good}")


def test_an_infrastructure_flake_adds_the_tasks_retry_policy_as_the_sdk_writes_it(tmp_path: Path) -> None:
    repo = repo_with_spec(tmp_path)
    agent.triage(repo, kfp_context("infrastructure"), triage_options())
    spec = yaml.safe_load((repo / "pipelines/churn/pipeline.yaml").read_text())
    # set_retry(num_retries=3, backoff_duration="30s", backoff_factor=2, backoff_max_duration="600s") in KFP 2.17.3
    assert spec["root"]["dag"]["tasks"]["train-model"]["retryPolicy"] == {
        "maxRetryCount": 3, "backoffDuration": "30s", "backoffFactor": 2.0, "backoffMaxDuration": "600s"}
    assert "retryPolicy" not in spec["root"]["dag"]["tasks"]["prepare-data"]
    assert kfp.spec_problems(spec) == []
    agent.triage(repo, kfp_context("infrastructure"), triage_options())  # the flake persisted: an issue now
    issue = json.loads((repo.parent / "issue.json").read_text())
    assert "already has a retryPolicy" in issue["body"]


@pytest.mark.parametrize(("context", "spec", "why"), [
    (kfp_context("oom", ("evaluate",)), SPEC, "task `evaluate` (or its container executor) is not in"),
    (kfp_context("oom"), SPEC.replace("        resources:\n          cpuLimit: 4.0\n          memoryLimit: 8.0\n"
                                      "          resourceCpuLimit: '4'\n          resourceMemoryLimit: 8G\n", ""),
     "has no memory limit to raise"),
    (kfp_context("oom"), SPEC.replace("name: churn-training-pipeline", "name: other"),
     "no Kubeflow pipeline spec with `pipelineInfo.name` `churn-training-pipeline`"),
    (kfp_context("code-bug"), SPEC, "`code-bug` failures need a person"),
])
def test_what_cannot_be_fixed_becomes_an_issue_for_the_owner(tmp_path: Path, context: dict[str, Any], spec: str,
                                                             why: str) -> None:
    repo = repo_with_spec(tmp_path, spec)
    agent.triage(repo, context, triage_options())
    assert (repo / "pipelines/churn/pipeline.yaml").read_text() == spec
    issue = json.loads((repo.parent / "issue.json").read_text())
    assert why in issue["body"], issue["body"]
    assert issue["title"].startswith("[failure-triage] churn-training-pipeline: ")
    assert "@ml-churn: a run of your pipeline failed" in issue["body"]
    assert "Kubeflow Pipelines run: `churn-training 2026-11-22`" in issue["body"]


def test_smoke_rejects_what_kfp_would_reject() -> None:
    spec = yaml.safe_load(SPEC)
    assert kfp.spec_problems(spec) == []
    container = spec["deploymentSpec"]["executors"]["exec-train-model"]["container"]
    container["resources"]["resourceMemoryLimit"] = "12 GB"
    spec["root"]["dag"]["tasks"]["train-model"]["retryPolicy"] = {"maxRetryCount": "3", "backoffDuration": "30"}
    spec["root"]["dag"]["tasks"]["prepare-data"]["componentRef"]["name"] = "comp-missing"
    problems = kfp.spec_problems(spec)
    assert len(problems) == 4, problems
    result, report = smoke.check_files({"pipelines/churn/pipeline.yaml": yaml.safe_dump(spec)})
    assert result == "failed" and "'12 GB' is not a KFP memory quantity" in report


def _settings() -> Any:
    from tests.support.settings import editor_args

    return editor_args("triage")
