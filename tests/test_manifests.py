"""Every generated document: official schemas (strict), yamllint, determinism, and the policies that matter
on a real cluster (pod security, identities, deadlines, retries, no data spliced into shells)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import check, dump_documents, render
from tests.conftest import ROOT
from tests.support import pod_policy, schemas

CONFIG = ROOT / "config" / "flows.yaml"


@pytest.fixture(scope="module")
def rendered() -> dict[str, str]:
    return render(parse_config(CONFIG.read_text(), str(CONFIG)))


@pytest.fixture(scope="module")
def documents(rendered: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, doc) for path, text in rendered.items() for doc in yaml.safe_load_all(text)]


def _by_kind(documents: list[tuple[str, dict[str, Any]]], kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in documents if doc["kind"] == kind]


def test_every_document_validates_strictly_against_the_official_schemas(documents) -> None:
    checked = 0
    for path, doc in documents:
        if doc["kind"] in schemas.UNCHECKED_KINDS:
            continue
        assert schemas.problems(doc) == [], f"{path} ({doc['kind']})"
        checked += 1
    assert checked >= 5


def test_workflows_submitted_by_sensors_validate_as_argo_workflows(documents) -> None:
    for sensor in _by_kind(documents, "Sensor"):
        for trigger in sensor["spec"]["triggers"]:
            workflow = trigger["template"]["argoWorkflow"]["source"]["resource"]
            assert schemas.problems(workflow) == []


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: d["spec"]["templates"][0]["container"].update(bogus=1), "'bogus' was unexpected"),
        (lambda d: d["spec"].update(synchronization={"mutex": {"name": "m"}}), "'mutex' was unexpected"),
        (lambda d: d["spec"]["templates"][0].update(retryStrategy={"limit": 3}), "is not of type 'string'"),
    ],
)
def test_strict_validation_rejects_what_a_cluster_would_reject(documents, mutate, expected) -> None:
    import copy

    template = copy.deepcopy(_by_kind(documents, "WorkflowTemplate")[0])
    mutate(template)
    assert any(expected in p for p in schemas.problems(template))


def test_v4_schema_rejects_cron_schedule_singular() -> None:
    cron = {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "c"},
        "spec": {"schedule": "0 6 * * 1", "workflowSpec": {"entrypoint": "main"}},
    }
    found = schemas.problems(cron)
    assert any("v4.1.2" in p and "'schedule' was unexpected" in p for p in found)
    assert not any("v3.7.18" in p for p in found)


def test_yamllint_passes_on_generated_files(rendered, tmp_path: Path) -> None:
    for rel, text in rendered.items():
        target = tmp_path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(ROOT / ".yamllint.yaml"), str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_generation_is_deterministic_and_committed_output_is_current(rendered) -> None:
    again = render(parse_config(CONFIG.read_text(), str(CONFIG)))
    assert again == rendered
    assert check(rendered, ROOT) == [], "run `make generate` and commit the result"


def test_kustomization_lists_every_workflow_template_and_rbac(rendered) -> None:
    kustomization = yaml.safe_load(rendered["generated/kustomization.yaml"])
    listed = set(kustomization["resources"])
    expected = {
        rel.removeprefix("generated/")
        for rel in rendered
        if rel.startswith("generated/") and not rel.startswith("generated/monitoring/")
    }
    expected.discard("kustomization.yaml")
    assert listed == expected
    # monitoring has its own kustomization (the PrometheusRule needs the Prometheus Operator's CRDs)
    monitoring = yaml.safe_load(rendered["generated/monitoring/kustomization.yaml"])
    assert monitoring["resources"] == ["monitoring.yaml"]
    # no kustomize `namespace:`: documents carry their own (triage Roles live in the watched namespaces)
    assert "namespace" not in kustomization


# ------------------------------------------------------------------------------------------------------------
# Pod security: every container of every pod we create


def _containers(doc: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every container spec in a document, with where it is (containerSet members, init containers, sidecars,
    scripts, CronWorkflows, EventSource/Sensor pods: see tests/support/pod_policy.py, the full policy gate)."""
    return pod_policy.containers(doc)


def test_every_container_passes_pod_security_restricted(documents) -> None:
    seen = 0
    for path, doc in documents:
        for where, container in _containers(doc):
            sc = container.get("securityContext", {})
            label = f"{path}: {where}"
            assert sc.get("runAsNonRoot") is True, label
            assert sc.get("allowPrivilegeEscalation") is False, label
            assert sc.get("readOnlyRootFilesystem") is True, label
            assert sc.get("capabilities", {}).get("drop") == ["ALL"], label
            assert sc.get("seccompProfile", {}).get("type") == "RuntimeDefault", label
            limits = container.get("resources", {}).get("limits", {})
            requests = container.get("resources", {}).get("requests", {})
            assert {"cpu", "memory"} <= limits.keys() and {"cpu", "memory"} <= requests.keys(), label
            seen += 1
    assert seen >= 8


def test_every_pod_has_a_restricted_pod_context_and_a_non_default_identity(documents) -> None:
    for path, doc in documents:
        if doc["kind"] == "WorkflowTemplate":
            spec = doc["spec"]
            pod, account = spec["securityContext"], spec["serviceAccountName"]
            assert spec["automountServiceAccountToken"] is False, path
            assert spec["executor"]["serviceAccountName"] == account
        elif doc["kind"] in ("EventSource", "Sensor"):
            pod, account = doc["spec"]["template"]["securityContext"], doc["spec"]["template"]["serviceAccountName"]
        else:
            continue
        assert account and account != "default", path
        assert pod["runAsNonRoot"] is True and pod["seccompProfile"]["type"] == "RuntimeDefault", path


# (template, step template) -> the only identity allowed to mount a token there; everything else has none.
TOKEN_HOLDERS = {
    ("failure-triage", "guard"): "hera-flows-triage-guard",  # Leases + get workflows in watched namespaces
    # the guard's claims end with the run: confirmed after review, released by the exit handler (its identity)
    ("failure-triage", "confirm-claims"): "hera-flows-triage-guard",
    ("failure-triage", "release-claims"): "hera-flows-triage-guard",
    ("failure-triage", "context"): "hera-flows-triage-context",  # reads workflows, pods, logs, events there
    ("hera-flows-gc", "gc-leases"): "hera-flows-gc",  # lists and deletes expired Leases
    ("promotion-reconcile", "reconcile"): "hera-flows-promotion-reconciler",  # creates promotion Workflows only
}


def test_only_the_guard_gets_a_kubernetes_token(documents) -> None:
    for template in _by_kind(documents, "WorkflowTemplate") + _by_kind(documents, "CronWorkflow"):
        for tpl in template["spec"].get("workflowSpec", template["spec"])["templates"]:
            if tpl.get("automountServiceAccountToken"):
                expected = TOKEN_HOLDERS.get((template["metadata"]["name"], tpl["name"]))
                if expected is None:
                    assert tpl["name"] in ("guard", "confirm-claims", "release-claims")
                    expected = "hera-flows-guard"
                assert tpl["serviceAccountName"] == expected


def test_the_agent_container_holds_no_forge_token(documents) -> None:
    for template in _by_kind(documents, "WorkflowTemplate"):
        for tpl in template["spec"]["templates"]:
            for container in tpl.get("containerSet", {}).get("containers", []):
                if container["name"] == "agent":
                    names = {e["name"] for e in container.get("env", [])}
                    assert "HF_FORGE_TOKEN" not in names
                    assert not any("secretKeyRef" in e.get("valueFrom", {}) for e in container.get("env", []))


# ------------------------------------------------------------------------------------------------------------
# Reliability and injection


def test_workflows_have_deadlines_ttl_and_pod_gc(documents) -> None:
    for template in _by_kind(documents, "WorkflowTemplate"):
        spec = template["spec"]
        assert spec["activeDeadlineSeconds"] > 0
        assert spec["ttlStrategy"]["secondsAfterSuccess"] >= 0
        assert spec["podGC"]["strategy"]


def test_network_steps_retry_with_backoff(documents) -> None:
    network_steps = {"guard", "context", "review", "smoke", "report"}
    for template in _by_kind(documents, "WorkflowTemplate"):
        for tpl in template["spec"]["templates"]:
            if tpl["name"] in network_steps:
                strategy = tpl.get("retryStrategy")
                assert strategy, tpl["name"]
                assert int(strategy["limit"]) >= 1 and strategy["backoff"]["duration"]
                assert "75" in strategy["expression"]


_EXPRESSION = re.compile(r"{{.*?}}")


def test_no_template_splices_parameters_into_a_shell_or_script(documents) -> None:
    for path, doc in documents:
        for where, container in _containers(doc):
            command = container.get("command", [])
            assert command[:1] != ["sh"] and command[:1] != ["bash"], f"{path}: {where} runs a shell"
            assert not _EXPRESSION.search(container.get("source", "")), f"{path}: {where} splices into a script"
            for arg in container.get("args", []):
                # Arguments are static configuration; event data travels in env vars only.
                assert not _EXPRESSION.search(arg), f"{path}: {where}: {arg}"


def test_event_data_reaches_steps_only_through_env(documents) -> None:
    for template in _by_kind(documents, "WorkflowTemplate"):
        for tpl in template["spec"]["templates"]:
            for env in tpl.get("container", {}).get("env", []):
                if "value" in env and _EXPRESSION.search(env["value"]):
                    assert env["name"].startswith("HF_PARAM_"), env


def test_no_expression_is_spliced_anywhere_a_container_runs(documents) -> None:
    """Every template kind: containers, scripts, containerSet members, init/sidecars of WorkflowTemplates and
    CronWorkflows, EventSource/Sensor pods and the Workflows a Sensor's trigger submits: commands, args and script
    sources carry no ``{{...}}``; env values carry one only into ``HF_PARAM_*``."""
    checked = 0
    for path, doc in documents:
        found = list(_containers(doc))
        if doc["kind"] == "Sensor":
            for trigger in doc["spec"]["triggers"]:
                resource = trigger["template"].get("argoWorkflow", {}).get("source", {}).get("resource", {})
                found += pod_policy.containers(resource) if resource.get("kind") == "Workflow" else []
        for where, container in found:
            checked += 1
            label = f"{path}: {where}"
            for text in [*container.get("command", []), *container.get("args", []), container.get("source", "")]:
                assert not _EXPRESSION.search(text), f"{label}: {text}"
            for env in container.get("env", []):
                if _EXPRESSION.search(env.get("value", "")):
                    assert env["name"].startswith("HF_PARAM_"), f"{label}: {env}"
    assert checked >= 20


def test_dump_is_stable_for_unicode_and_multiline() -> None:
    text = dump_documents([{"a": "é\nline two", "b": ["x"]}])
    assert yaml.safe_load(text.split("\n", 1)[1]) == {"a": "é\nline two", "b": ["x"]}
    assert text == dump_documents([{"a": "é\nline two", "b": ["x"]}])


def test_a_command_agent_runs_its_own_image_with_only_its_own_secret() -> None:
    cfg = parse_config(
        "repository: {url: 'https://github.com/o/r'}\n"
        "agent: {kind: command, image: 'example.com/agent:1', command: [agent, --prompt-file, /workspace/prompt.md],"
        " secret: agent-credentials}\n"
    )
    template = yaml.safe_load(render(cfg)["generated/workflowtemplates/mlflow-promotion.yaml"])
    assert schemas.problems(template) == []
    [agent_set] = [t for t in template["spec"]["templates"] if t["name"] == "agent"]
    agent = next(c for c in agent_set["containerSet"]["containers"] if c["name"] == "agent")
    assert agent["image"] == "example.com/agent:1"
    assert agent["command"] == ["agent", "--prompt-file", "/workspace/prompt.md"]
    assert agent["workingDir"] == "/workspace/repo"
    assert agent["envFrom"] == [{"secretRef": {"name": "agent-credentials"}}]
    assert {e["name"] for e in agent["env"]} == {
        "HF_PROMPT_FILE", "HF_CONTEXT_FILE", "HF_SUMMARY_FILE", "HF_ISSUE_FILE", "HOME"
    }


def test_event_pods_have_a_writable_tmp_under_a_read_only_root(documents) -> None:
    # The Sensor's argoWorkflow trigger writes the Workflow to a temp file before `argo submit`.
    for path, doc in documents:
        if doc["kind"] in ("EventSource", "Sensor"):
            template = doc["spec"]["template"]
            mounts = {m["mountPath"]: m["name"] for m in template["container"]["volumeMounts"]}
            volumes = {v["name"]: v for v in template["volumes"]}
            assert "emptyDir" in volumes[mounts["/tmp"]], path
