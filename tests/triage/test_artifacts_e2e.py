"""Triage end to end through an artifact repository (issue 13 item 1): the generated `failure-triage` template with
`artifacts.repository` on the local runner against a real S3 server (SeaweedFS), the Kubernetes API stand-in, a
real bare git remote and the GitHub stand-in. The context (log tails, statuses, Events), the classified context
and the published files are objects under the run's prefix; classify, the agent pod, review and smoke read them
as files; a log tail larger than the parameter path's whole context (96 KiB) reaches the agent whole."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import PARAMETER_CONTEXT_BYTES, parse_config
from hera_flows.generate import render, write
from hera_flows.local import eventsource as es
from hera_flows.local.runner import RunResult, run_workflow
from tests.support.fixtures_kube import TriageKubeAPI, pod_for_node
from tests.support.fixtures_s3 import artifacts_secret, artifacts_section
from tests.triage.test_e2e import OOM_NODE, PIPELINE

pytestmark = pytest.mark.slow


def _config(remote_url: str, github_url: str, s3: Any, bucket: str) -> dict[str, Any]:
    return {
        "namespace": "mlops-automation",
        "repository": {"url": remote_url, "slug": "acme/ml-gitops"},
        "forge": {"api_url": github_url, "token_secret": {"name": "forge", "key": "token"}},
        "workflow": {"retry": {"limit": 1, "backoff_seconds": 1},
                     "ttl_seconds_after_success": 10**9, "ttl_seconds_after_failure": 10**9},
        "artifacts": artifacts_section(s3, bucket),
        "patterns": {"promotion": {"enabled": False},
                     "failure_triage": {"enabled": True, "namespaces": ["ml-training"],
                                        "max_event_age_seconds": 10**9}},
    }


def _run(generated: Path, workflow: dict[str, Any], secrets: dict[str, dict[str, str]], tmp: Path) -> RunResult:
    source = yaml.safe_load((generated / "eventsources" / "workflow-failures.yaml").read_text())
    [name, *_] = es.delivering_events(source, workflow, "ADD")
    return run_workflow("failure-triage", generated=generated,
                        event=es.event_data(workflow, "ADD", source["spec"]["resource"][name]), secrets=secrets,
                        workdir=tmp / "run", state_dir=tmp / "state", echo=False)


def test_a_large_log_context_travels_as_objects_and_reaches_the_agent(
        tmp_path: Path, triage_kube: TriageKubeAPI, make_gitops_remote, github_api, s3_server, s3_bucket,  # noqa: ANN001
        fixtures_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote = make_gitops_remote(files={"README.md": "# ml pipelines\n", "pipelines/recommender-train.yaml": PIPELINE})
    generated = tmp_path / "out"
    write(render(parse_config(yaml.safe_dump(_config(remote.url, github_api.url, s3_server, s3_bucket)))), generated)
    monkeypatch.setenv("KUBECONFIG", str(triage_kube.write_kubeconfig(tmp_path / "kubeconfig")))

    # A training program that logs 1,500 long lines and then runs out of host memory (a real traceback).
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        for step in range(1500):
            print(f"step {step:05d} loss=0.{step:04d} " + "embedding-shard-stats " * 6, flush=True)
        raise MemoryError("Unable to allocate 38.1 GiB for an array with shape (100000, 51200)")
    """))
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True)
    log = run.stdout + run.stderr
    assert run.returncode == 1 and len(log.encode()) > 2 * PARAMETER_CONTEXT_BYTES
    workflow = json.loads((fixtures_dir / "argo-workflows" / "workflow_failed_oom.json").read_text())
    triage_kube.add_workflow(workflow)
    triage_kube.add_pod(pod_for_node(workflow, OOM_NODE, main={"state": {"terminated": {"reason": "Error",
                                                                                         "exitCode": 1}}}),
                        logs={"main": log})
    secrets = {"forge": {"token": github_api.token},
               **artifacts_secret(s3_server)}

    result = _run(generated, workflow, secrets, tmp_path)

    assert result.phase == "Succeeded", [(t.name, t.phase, t.message + t.log[-1500:]) for t in result.tasks.values()
                                         if t.phase not in ("Succeeded", "Skipped", "Omitted")]
    assert result.outputs["category"] == "oom"
    prefix = f"hera-flows/{result.workflow_name}"
    client = s3_server.client()
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=s3_bucket, Prefix=f"{prefix}/").get("Contents", [])}
    assert keys == {f"{prefix}/context/context.json", f"{prefix}/classify/context.json", f"{prefix}/agent/files.json"}

    # the context step kept the whole log (2000 lines, 256 KiB per container), far over the parameter path's bound
    context = json.loads(client.get_object(Bucket=s3_bucket, Key=f"{prefix}/context/context.json")["Body"].read())
    [tail] = [entry["tail"] for pod in context["pods"] for entry in pod["logs"].values()]
    assert "step 00000 " in tail and "MemoryError: Unable to allocate 38.1 GiB" in tail
    assert len(tail.encode()) > PARAMETER_CONTEXT_BYTES and not any(
        entry.get("shortened") for pod in context["pods"] for entry in pod["logs"].values())
    classified = json.loads(client.get_object(Bucket=s3_bucket, Key=f"{prefix}/classify/context.json")["Body"].read())
    assert classified["classification"]["category"] == "oom"

    # the agent pod read the classified context from its artifact: the workspace holds the whole tail
    [workspace] = (tmp_path / "run").glob("pods/agent-*/volumes/workspace")
    seen = json.loads((workspace / "context.json").read_text())
    assert seen["classification"]["category"] == "oom"
    assert [e["tail"] for p in seen["pods"] for e in p["logs"].values()] == [tail]

    # review read the same context (the PR names the failing template), smoke read the files artifact
    [branch] = [b for b in remote.branches() if b.startswith("failure-triage/")]
    assert remote.read("pipelines/recommender-train.yaml", branch) == PIPELINE.replace("memory: 8Gi  #",
                                                                                       "memory: 12Gi  #")
    [pull] = github_api.pulls()
    assert "recommender-train" in pull["title"] and "oom" in pull["title"]
    assert result.outputs["smoke-result"] == "passed"
    files = json.loads(client.get_object(Bucket=s3_bucket, Key=f"{prefix}/agent/files.json")["Body"].read())
    assert "pipelines/recommender-train.yaml" in json.dumps(files)
