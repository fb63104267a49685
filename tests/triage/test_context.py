"""The context step against a real HTTP server on 127.0.0.1 that serves the Kubernetes API paths the
``kubernetes`` client calls (tests/support/fixtures_kube.py), fed with the shared Argo fixtures."""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import pytest

from hera_flows.steps.common import StepError
from hera_flows.steps.triage import context as ctx
from hera_flows.steps.triage.classify import classify
from hera_flows.steps.triage.kube import KubeReader
from tests.support.fixtures_kube import HugeLog, TriageKubeAPI, event, pod_for_node
from tests.support.settings import generated_flags

OOM_NODE = "recommender-train-8xk2p-1733408455"
PULL_NODE = "batch-score-fraud-detector-q9m4t-2330879829"
TRACEBACK = ("Traceback (most recent call last):\n  File \"/app/train.py\", line 88, in <module>\n"
             "    fit(frame)\nKeyError: 'label'\n")


def load(fixtures_dir: Path, name: str) -> dict[str, Any]:
    return json.loads((fixtures_dir / "argo-workflows" / name).read_text())


def args(*extra: str) -> Any:
    """The step's flags as generate writes them, then the test's own (the last value wins)."""
    return ctx.CONTRACT.parse([*generated_flags("triage-context"), *extra])


def template(namespace: str, name: str, step: str, memory: str = "8Gi") -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
        "metadata": {"name": name, "namespace": namespace, "labels": {"mlops.hera-flows/owner": "ml-platform"}},
        "spec": {"entrypoint": "main", "templates": [
            {"name": step, "container": {"image": "registry.example.com/ml/train:1.4",
                                         "resources": {"limits": {"memory": memory}}}}]},
    }


@pytest.fixture
def oom(triage_kube: TriageKubeAPI, fixtures_dir: Path) -> dict[str, Any]:
    workflow = load(fixtures_dir, "workflow_failed_oom.json")
    triage_kube.add_workflow(workflow)
    triage_kube.add_template(template("ml-training", "recommender-train", "train"))
    pod = pod_for_node(workflow, OOM_NODE, main={"state": {"terminated": {"reason": "OOMKilled", "exitCode": 137}}})
    triage_kube.add_pod(pod, logs={"main": "epoch 1 loss=0.9\nepoch 2 loss=0.7\nloading embeddings shard 31/64\n",
                                   "wait": "time=... level=info msg=\"sub-process exited\"\n"})
    return workflow


def test_oom_context_has_nodes_pods_statuses_logs_template_and_owner(triage_kube: TriageKubeAPI, oom: dict) -> None:
    reader = KubeReader(triage_kube.api_client())
    context = ctx.build_context(reader, "ml-training", "recommender-train-8xk2p", oom["metadata"]["uid"], "failed",
                                args())
    [node] = context["nodes"]
    assert (node["display_name"], node["template"], node["exit_code"]) == ("train", "train", "137")
    [pod] = context["pods"]
    main = next(c for c in pod["containers"] if c["name"] == "main")
    assert (main["terminated_reason"], main["exit_code"]) == ("OOMKilled", 137)
    assert pod["logs"]["main"]["tail"].endswith("loading embeddings shard 31/64\n")
    assert "wait" not in pod["logs"]  # Argo's own container is not read
    assert "node train: main: OOMKilled (exit code 137)" in context["evidence"]
    assert "pod train container main: terminated OOMKilled (exit code 137)" in context["evidence"]
    assert context["workflow"]["owner"] == "@ml-recsys"  # the workflow's annotation wins over the template's
    assert context["workflow_template"]["templates"]["train"]["resources"] == {"limits": {"memory": "8Gi"}}
    assert context["failing_templates"] == ["train"]
    assert context["offloaded"] is False and context["notes"] == []
    paths = triage_kube.paths()
    assert "/apis/argoproj.io/v1alpha1/namespaces/ml-training/workflows/recommender-train-8xk2p" in paths
    assert "/apis/argoproj.io/v1alpha1/namespaces/ml-training/workflowtemplates/recommender-train" in paths
    pods_query = next(r.query for r in triage_kube.requests if r.path.endswith("/pods"))
    assert pods_query["labelSelector"] == ["workflows.argoproj.io/workflow=recommender-train-8xk2p"]


def test_offloaded_node_status_falls_back_to_pods(triage_kube: TriageKubeAPI, oom: dict) -> None:
    offloaded = copy.deepcopy(oom)
    del offloaded["status"]["nodes"]
    offloaded["status"]["offloadNodeStatusVersion"] = "fnv:784127654"
    triage_kube.add_workflow(offloaded)
    context = ctx.build_context(KubeReader(triage_kube.api_client()), "ml-training", "recommender-train-8xk2p",
                                oom["metadata"]["uid"], "failed", args())
    assert context["offloaded"] is True
    assert any("offloaded" in note for note in context["notes"])
    assert context["nodes"] == []
    [pod] = context["pods"]
    assert pod["step"].startswith("recommender-train-8xk2p-train-")
    assert "pod " + pod["step"] + " container main: terminated OOMKilled (exit code 137)" in context["evidence"]


def test_image_pull_context_reads_events_and_survives_a_log_that_does_not_exist(
    triage_kube: TriageKubeAPI, fixtures_dir: Path
) -> None:
    workflow = load(fixtures_dir, "workflow_running_imagepullbackoff.json")
    triage_kube.add_workflow(workflow)
    pod = pod_for_node(workflow, PULL_NODE, main={
        "image": "registry.example.com/ml/fraud-scorer:v7.0.3",
        "state": {"waiting": {"reason": "ImagePullBackOff",
                              "message": "Back-off pulling image \"registry.example.com/ml/fraud-scorer:v7.0.3\""}}})
    triage_kube.add_pod(pod, events=[
        event(pod, "Failed", "Failed to pull image \"registry.example.com/ml/fraud-scorer:v7.0.3\": rpc error: "
                             "code = NotFound desc = failed to resolve reference: not found", count=7),
        event(pod, "Pulling", "Pulling image \"registry.example.com/ml/fraud-scorer:v7.0.3\"", type_="Normal"),
    ])
    context = ctx.build_context(KubeReader(triage_kube.api_client()), "ml-pipelines", workflow["metadata"]["name"],
                                workflow["metadata"]["uid"], "image-pull", args())
    [node] = context["nodes"]
    assert node["phase"] == "Pending"
    assert any(line.startswith("event score-batch Failed: Failed to pull image") for line in context["evidence"])
    assert not any("Pulling image" in line for line in context["evidence"])  # Normal events are kept, not evidence
    assert "the pod or its log" not in json.dumps(context)
    assert context["pods"][0]["logs"]["main"]["error"].startswith("no log (HTTP 400")
    assert context["notes"] == ["WorkflowTemplate batch-score-fraud-detector is not in namespace ml-pipelines"]


def test_a_garbage_collected_pod_is_a_note(triage_kube: TriageKubeAPI, fixtures_dir: Path) -> None:
    workflow = load(fixtures_dir, "workflow_failed_oom_steps.json")
    triage_kube.add_workflow(workflow)
    context = ctx.build_context(KubeReader(triage_kube.api_client()), "ml-pipelines", workflow["metadata"]["name"],
                                workflow["metadata"]["uid"], "failed", args())
    assert context["pods"] == []
    assert any("is gone" in note for note in context["notes"])
    assert "node train-model: main: OOMKilled (exit code 137)" in context["evidence"]


def test_a_huge_log_is_read_as_a_bounded_tail(triage_kube: TriageKubeAPI, oom: dict) -> None:
    pod_name = next(iter(triage_kube.pods))[1]
    huge = HugeLog(lines=30_000_000, line_bytes=100, ending=TRACEBACK)  # ~3 GB, generated, never in memory
    triage_kube.logs[("ml-training", pod_name, "main")] = huge
    started = time.monotonic()
    context = ctx.build_context(KubeReader(triage_kube.api_client()), "ml-training", "recommender-train-8xk2p",
                                oom["metadata"]["uid"], "failed",
                                args("--tail-lines=200", "--limit-bytes=65536", "--keep-bytes=4096"))
    log = context["pods"][0]["logs"]["main"]
    query = next(r.query for r in triage_kube.requests if r.path.endswith("/log"))
    assert query["tailLines"] == ["200"] and query["limitBytes"] == ["65536"] and query["container"] == ["main"]
    assert log["bytes_read"] == triage_kube.log_bytes_sent[("ml-training", pod_name, "main")] <= 65536
    assert len(log["tail"].encode()) <= 4096 and log["tail"].endswith("KeyError: 'label'\n")
    assert time.monotonic() - started < 10


def test_a_server_ignoring_the_limits_still_cannot_make_the_step_read_the_whole_log(
    triage_kube: TriageKubeAPI, oom: dict
) -> None:
    pod_name = next(iter(triage_kube.pods))[1]
    huge = HugeLog(lines=20_000_000, line_bytes=100)  # 2 GB streamed in full by a misbehaving server
    triage_kube.logs[("ml-training", pod_name, "main")] = huge
    triage_kube.ignore_log_limits = True
    context = ctx.build_context(KubeReader(triage_kube.api_client()), "ml-training", "recommender-train-8xk2p",
                                oom["metadata"]["uid"], "failed",
                                args("--limit-bytes=1048576", "--keep-bytes=16384"))
    log = context["pods"][0]["logs"]["main"]
    assert log["bytes_read"] == 1048576 and log["truncated"] is True
    time.sleep(0.5)  # let the server notice the closed connection
    sent = triage_kube.log_bytes_sent[("ml-training", pod_name, "main")]
    assert sent < 64 * 1024 * 1024 < huge.size  # the client closed the stream: at most socket buffers more
    assert len(log["tail"].encode()) <= 16384
    assert any("read limit" in note for note in context["notes"])


def test_context_is_capped_for_argo_parameters() -> None:
    big = {"pods": [{"logs": {"main": {"tail": "x" * 200_000}}}], "evidence": []}
    text = ctx.cap_context(big, limit=50_000)
    assert len(text.encode()) <= 50_000
    assert json.loads(text)["pods"][0]["logs"]["main"]["shortened"] is True


def test_wrong_credentials_are_one_clear_line(triage_kube: TriageKubeAPI, oom: dict) -> None:
    triage_kube.token = "not-the-token"
    reader = KubeReader(triage_kube.api_client())
    triage_kube.token = "other"
    with pytest.raises(StepError, match="HTTP 401.*ServiceAccount"):
        ctx.build_context(reader, "ml-training", "recommender-train-8xk2p", oom["metadata"]["uid"], "failed", args())


def test_a_replaced_workflow_is_refused(triage_kube: TriageKubeAPI, oom: dict) -> None:
    with pytest.raises(StepError, match="replaced"):
        ctx.build_context(KubeReader(triage_kube.api_client()), "ml-training", "recommender-train-8xk2p",
                          "00000000-0000-0000-0000-000000000000", "failed", args())


@pytest.mark.parametrize(
    ("reason", "message", "condition", "category"),
    [
        # a drain through the Eviction API (a scale-down, a spot interruption handler): the node is taken away
        ("", "", ("EvictionByEvictionAPI", "Eviction API: evicting"), "preemption"),
        # the pod GC deleting the pods of a node object that is gone
        ("", "", ("DeletionByPodGC", "PodGC: node no longer exists"), "preemption"),
        # the kubelet at a graceful node shutdown: the pod's own reason and the condition say it
        ("Terminated", "Pod was terminated in response to imminent node shutdown.",
         ("TerminationByKubelet", "Pod was terminated in response to imminent node shutdown."), "preemption"),
        # the kubelet under node pressure: the same condition reason, another message
        ("Evicted", "The node was low on resource: memory. Threshold quantity: 100Mi, available: 52Mi. Container "
         "main was using 6Gi, which exceeds its request of 0.",
         ("TerminationByKubelet", "The node was low on resource: memory."), "eviction"),
        # the taint manager says a NoExecute taint, not whose: no class from it alone
        ("", "", ("DeletionByTaintManager", "Taint manager: deleting due to NoExecute taint"), "unknown"),
    ],
)
def test_the_pods_own_reason_and_its_disruption_condition_are_evidence(
    triage_kube: TriageKubeAPI, fixtures_dir: Path, reason: str, message: str, condition: tuple[str, str],
    category: str,
) -> None:
    workflow = load(fixtures_dir, "workflow_failed_oom.json")
    node = workflow["status"]["nodes"][OOM_NODE]
    node["message"], node["outputs"] = "", {"exitCode": "143"}  # what Argo says of a pod killed from outside
    triage_kube.add_workflow(workflow)
    triage_kube.add_template(template("ml-training", "recommender-train", "train"))
    pod = pod_for_node(workflow, OOM_NODE, main={"state": {"terminated": {"reason": "Error", "exitCode": 143}}},
                       conditions=[{"type": "DisruptionTarget", "status": "True", "reason": condition[0],
                                    "message": condition[1]}])
    if reason:
        pod["status"]["reason"], pod["status"]["message"] = reason, message
    triage_kube.add_pod(pod, logs={"main": "epoch 3 loss=0.41\n"})
    context = ctx.build_context(KubeReader(triage_kube.api_client()), "ml-training", "recommender-train-8xk2p",
                                workflow["metadata"]["uid"], "failed", args())
    assert f"pod train disrupted ({condition[0]}): {condition[1]}" in context["evidence"]
    if reason:
        assert f"pod train: {reason}: {message}" in context["evidence"]
        assert (context["pods"][0]["reason"], context["pods"][0]["message"]) == (reason, message)
    assert classify(context).category == category
