"""The pod policy gate (tests/support/pod_policy.py) over every manifest on disk in generated/, eventsources/ and
sensors/ — whatever files the patterns write there — and proof that it catches each kind of violation."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import ROOT
from tests.support import pod_policy

OUTPUT_DIRS = ("generated", "eventsources", "sensors")


def _on_disk() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for folder in OUTPUT_DIRS:
        for path in sorted((ROOT / folder).rglob("*.y*ml")):
            for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
                if isinstance(doc, dict):
                    found.append((str(path.relative_to(ROOT)), doc))
    return found


DOCUMENTS = _on_disk()


def _first(kind: str) -> dict[str, Any]:
    return copy.deepcopy(next(doc for _, doc in DOCUMENTS if doc.get("kind") == kind))


def test_every_pod_of_every_generated_manifest_passes_the_policy() -> None:
    violations = [p for path, doc in DOCUMENTS for p in pod_policy.problems(path, doc)]
    assert violations == []


def test_the_policy_sees_every_kind_of_pod_we_generate() -> None:
    pods = [pod for path, doc in DOCUMENTS for pod in pod_policy.pods(path, doc)]
    kinds = {doc["kind"] for _, doc in DOCUMENTS if pod_policy.pods("", doc)}
    assert {"WorkflowTemplate", "EventSource", "Sensor"} <= kinds
    containers = [name for pod in pods for name, _ in pod.containers]
    assert len(containers) >= 10, containers
    # the agent containerSet is covered container by container
    assert any("/" in name and not name.startswith("template.") for name in containers), containers
    # every kind that can run a pod is understood: a new kind here must be taught to pod_policy.pods first
    pod_kinds = {"WorkflowTemplate", "CronWorkflow", "Workflow", "EventSource", "Sensor", "Pod", "CronJob",
                 *pod_policy.WORKLOAD_KINDS}
    for path, doc in DOCUMENTS:
        if doc.get("kind") in pod_kinds and doc["kind"] not in ("Workflow",):
            assert pod_policy.pods(path, doc), f"{path}: a {doc['kind']} with no pod found"


def _wt_template(doc: dict[str, Any], key: str) -> dict[str, Any]:
    return next(t for t in doc["spec"]["templates"] if key in t)


def _container(doc):
    return _wt_template(doc, "container")["container"]


def _set_member(doc):
    return _wt_template(doc, "containerSet")["containerSet"]["containers"][0]


def _add_sidecar(doc):
    tpl = _wt_template(doc, "container")
    tpl["sidecars"] = [{"name": "proxy", "image": "envoy:1", "resources": copy.deepcopy(tpl["container"]["resources"])}]


def _add_init(doc):
    tpl = _wt_template(doc, "container")
    init = copy.deepcopy(tpl["container"])
    init.update(name="setup", securityContext={**init["securityContext"], "privileged": True})
    tpl["initContainers"] = [init]


def _as_cron(doc):
    spec = doc["spec"]
    doc.update(kind="CronWorkflow", spec={"schedules": ["0 6 * * 1"], "workflowSpec": spec})
    spec["serviceAccountName"] = "default"


WT_MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("root container", lambda d: _container(d)["securityContext"].update(runAsNonRoot=False), "runAsNonRoot"),
    ("root by uid", lambda d: _container(d)["securityContext"].update(runAsUser=0), "runAsUser is 0"),
    ("escalation", lambda d: _container(d)["securityContext"].pop("allowPrivilegeEscalation"),
     "allowPrivilegeEscalation"),
    ("capabilities", lambda d: _container(d)["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
     "capabilities add"),
    ("no drop", lambda d: _container(d)["securityContext"].pop("capabilities"), "drop ALL"),
    ("seccomp", lambda d: _container(d)["securityContext"].update(seccompProfile={"type": "Unconfined"}),
     "seccompProfile"),
    ("no seccomp anywhere", lambda d: (_container(d)["securityContext"].pop("seccompProfile"),
                                       d["spec"]["securityContext"].pop("seccompProfile")), "seccompProfile"),
    ("privileged", lambda d: _container(d)["securityContext"].update(privileged=True), "privileged"),
    ("no limits", lambda d: _container(d)["resources"].pop("limits"), "resources.limits"),
    ("no memory request", lambda d: _container(d)["resources"]["requests"].pop("memory"), "resources.requests"),
    ("host path", lambda d: _wt_template(d, "container").setdefault("volumes", []).append(
        {"name": "host", "hostPath": {"path": "/"}}), "hostPath"),
    ("host network", lambda d: _wt_template(d, "container").update(hostNetwork=True), "hostNetwork"),
    ("default account", lambda d: d["spec"].update(serviceAccountName="default"), "serviceAccountName"),
    ("default account per template", lambda d: _wt_template(d, "container").update(serviceAccountName="default"),
     "serviceAccountName"),
    ("containerSet member", lambda d: _set_member(d).pop("securityContext"), "allowPrivilegeEscalation"),
    ("containerSet member root", lambda d: (_set_member(d)["securityContext"].pop("runAsNonRoot"),
                                            d["spec"]["securityContext"].pop("runAsNonRoot")), "runAsNonRoot"),
    ("sidecar", _add_sidecar, "sidecar/proxy: allowPrivilegeEscalation"),
    ("init container", _add_init, "init/setup: privileged"),
    ("cron workflow", _as_cron, "serviceAccountName"),
    ("pod spec patch", lambda d: _wt_template(d, "container").update(podSpecPatch="{}"), "podSpecPatch"),
]


@pytest.mark.parametrize(("label", "mutate", "expected"), WT_MUTATIONS, ids=[m[0] for m in WT_MUTATIONS])
def test_a_broken_workflow_template_fails_the_policy(label, mutate, expected) -> None:
    doc = _first("WorkflowTemplate")
    assert pod_policy.problems("copy", doc) == []
    mutate(doc)
    found = pod_policy.problems("copy", doc)
    assert any(expected in p for p in found), (label, found)


EVENT_MUTATIONS: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("no account", lambda d: d["spec"]["template"].pop("serviceAccountName"), "serviceAccountName"),
    ("root", lambda d: (d["spec"]["template"]["container"]["securityContext"].pop("runAsNonRoot"),
                        d["spec"]["template"]["securityContext"].pop("runAsNonRoot")), "runAsNonRoot"),
    ("no resources", lambda d: d["spec"]["template"]["container"].pop("resources"), "resources.requests"),
    ("host path", lambda d: d["spec"]["template"]["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
     "hostPath"),
    ("init container", lambda d: d["spec"]["template"].update(initContainers=[{"name": "i", "image": "x"}]),
     "initContainers/i: allowPrivilegeEscalation"),
]


@pytest.mark.parametrize("kind", ["EventSource", "Sensor"])
@pytest.mark.parametrize(("label", "mutate", "expected"), EVENT_MUTATIONS, ids=[m[0] for m in EVENT_MUTATIONS])
def test_a_broken_event_pod_fails_the_policy(kind, label, mutate, expected) -> None:
    doc = _first(kind)
    assert pod_policy.problems("copy", doc) == []
    mutate(doc)
    found = pod_policy.problems("copy", doc)
    assert any(expected in p for p in found), (label, found)


def test_a_plain_kubernetes_workload_is_checked_too() -> None:
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }
    found = pod_policy.problems("copy", deployment)
    assert any("serviceAccountName" in p for p in found) and any("resources.limits" in p for p in found)


def test_the_gate_reads_the_files_on_disk(tmp_path: Path) -> None:
    """A mutated copy written where the generator writes is caught by the same discovery the gate uses."""
    assert any(path.startswith("generated/workflowtemplates/") for path, _ in DOCUMENTS)
    assert any(path.startswith("sensors/") for path, _ in DOCUMENTS)
    assert any(path.startswith("eventsources/") for path, _ in DOCUMENTS)
