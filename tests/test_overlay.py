"""Configuration for real clusters: layered configuration files (``--config base --config overlay``), the
private-registry settings, and the kustomize overlay example in examples/overlay/ (its rendered output is
committed and current; kustomize v5 builds it into manifests that still pass the schemas and the pod policy)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.cli import main
from hera_flows.config import ConfigError, load_config, merge_layers, parse_layers
from hera_flows.generate import check, render
from tests.conftest import ROOT
from tests.support import pod_policy, schemas

CONFIG = ROOT / "config" / "flows.yaml"
OVERLAY = ROOT / "examples" / "overlay"
PROD = OVERLAY / "prod.yaml"
SOURCES = ("config/flows.yaml", "examples/overlay/prod.yaml")  # as the Makefile and the README name them

DEFAULT_NAMESPACE = "mlops-automation"
PROD_NAMESPACE = "ml-platform-prod"
WATCHED_NAMESPACES = {"ml-training-prod"}  # failure triage's Roles live there on purpose
PRIVATE_IMAGE = "registry.internal.acme.example/mlops/hera-flows:0.1.0"
PULL_SECRETS = [{"name": "acme-registry"}]
GITLAB_API = "https://gitlab.internal.acme.example/api/v4"
FORGE_STEPS = {"review", "report", "publish", "prepare-workspace", "promotion-context"}
WORKFLOW_KINDS = ("WorkflowTemplate", "CronWorkflow")
EVENT_KINDS = ("EventSource", "Sensor")

BASE = "repository: {url: 'https://github.com/o/r', base_branch: main}\n"


def _problems(*layers: str) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_layers([(text, f"layer{i}.yaml") for i, text in enumerate(layers)])
    return error.value.problems


# ------------------------------------------------------------------------------------------------------------
# Layering semantics


def test_mappings_merge_while_lists_and_scalars_replace() -> None:
    base = BASE + (
        "image_pull_secrets: [one, two]\n"
        "patterns:\n"
        "  promotion:\n"
        "    aliases: [champion, production]\n"
        "    rate_limit: {requests_per_unit: 7, unit: Minute}\n"
    )
    overlay = (
        "repository: {url: 'https://github.com/o/other'}\n"  # base_branch is kept: mappings merge
        "image_pull_secrets: [three]\n"  # lists replace, never append
        "patterns: {promotion: {aliases: [production], rate_limit: {unit: Hour}}}\n"
    )
    cfg = parse_layers([(base, "base.yaml"), (overlay, "prod.yaml")])
    assert cfg.repository is not None
    assert (cfg.repository.url, cfg.repository.slug, cfg.repository.base_branch) == (
        "https://github.com/o/other", "o/other", "main")
    assert cfg.image_pull_secrets == ["three"]
    assert cfg.patterns.promotion.aliases == ["production"]
    assert (cfg.patterns.promotion.rate_limit.requests_per_unit, cfg.patterns.promotion.rate_limit.unit) == (7, "Hour")


def test_later_layers_win_and_null_replaces() -> None:
    assert merge_layers({"a": {"b": 1, "c": [1, 2]}, "d": 1}, {"a": {"c": None}, "d": {"e": 2}}) == {
        "a": {"b": 1, "c": None}, "d": {"e": 2}}
    three = [(BASE, "a.yaml"), ("image: 'r/one:1'\n", "b.yaml"), ("image: 'r/two:2'\n", "c.yaml"), ("", "d.yaml")]
    assert parse_layers(three).image == "r/two:2"
    # an empty overlay changes nothing
    assert parse_layers([(CONFIG.read_text(), "flows.yaml"), ("", "empty.yaml")]) == load_config(CONFIG)


def test_a_bad_value_in_the_overlay_names_the_overlay_file_and_line() -> None:
    overlay = ("namespace: ml-platform-prod\npatterns:\n  drift:\n    cooldown_seconds: 5\n"
               "image_pull_secrets: [ok, Bad_Name]\n")
    cooldown, secret = sorted(_problems(CONFIG.read_text(), overlay))
    assert cooldown.startswith("layer1.yaml:4: patterns.drift.cooldown_seconds: "), cooldown
    assert secret.startswith("layer1.yaml:5: image_pull_secrets.1: ") and "'Bad_Name'" in secret, secret


def test_a_bad_value_kept_from_the_base_names_the_base_file_and_line() -> None:
    base = BASE + "workflow:\n  active_deadline_seconds: 5\n"
    [problem] = _problems(base, "namespace: prod\nworkflow: {ttl_seconds_after_success: 86400}\n")
    assert problem.startswith("layer0.yaml:3: workflow.active_deadline_seconds: "), problem
    # ... and an overlay that overrides the bad value fixes it
    parse_layers([(base, "base.yaml"), ("workflow: {active_deadline_seconds: 600}\n", "prod.yaml")])


@pytest.mark.parametrize(("overlay", "expected"), [
    ("namespace: prod\nnamepsace: typo\n", "layer1.yaml:2: namepsace: unknown field"),
    ("forge:\n  kind: gitlab\n", "layer0.yaml + layer1.yaml: (top level): forge.api_url is GitHub's API but "
                                 "forge.kind is gitlab"),
    ("image: [not, a, string]\n", "layer1.yaml:1: image: "),
    ("patterns:\n  promotion: {enabled: true\n", "layer1.yaml:3: not valid YAML"),
    ("- a list\n", "layer1.yaml: the configuration must be a mapping"),
])
def test_overlay_mistakes_are_one_clear_line(overlay: str, expected: str) -> None:
    base = BASE + "forge: {kind: github, api_url: 'https://api.github.com'}\n"
    problems = _problems(base, overlay)
    assert any(p.startswith(expected) for p in problems), problems
    assert all("\n" not in p for p in problems)


# ------------------------------------------------------------------------------------------------------------
# CLI


def test_cli_missing_overlay_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "hera_flows", "generate", "--config", str(CONFIG), "--config", str(missing),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"{missing}: cannot read the configuration: No such file or directory"
    assert not (tmp_path / "out").exists()


def test_cli_layers_and_default(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["validate", "--config", "config/flows.yaml", "--config", "examples/overlay/prod.yaml"]) == 0
    assert capsys.readouterr().out.startswith("config/flows.yaml + examples/overlay/prod.yaml: valid")
    assert main(["validate"]) == 0  # no --config: config/flows.yaml alone, as `make generate` uses it
    assert capsys.readouterr().out.startswith("config/flows.yaml: valid")


# ------------------------------------------------------------------------------------------------------------
# The example overlay, rendered


@pytest.fixture(scope="module")
def prod_rendered() -> dict[str, str]:
    return render(load_config(CONFIG, PROD), SOURCES)


@pytest.fixture(scope="module")
def prod_documents(prod_rendered: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, doc) for path, text in prod_rendered.items() for doc in yaml.safe_load_all(text)]


def test_the_committed_rendered_example_is_current(prod_rendered: dict[str, str]) -> None:
    assert check(prod_rendered, OVERLAY / "rendered") == [], "run `make generate` and commit examples/overlay/rendered"
    assert prod_rendered["generated/rbac.yaml"].startswith(
        "# Generated by `hera-flows generate` from config/flows.yaml + examples/overlay/prod.yaml.\n")


def test_the_rendered_example_passes_yamllint() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "yamllint", "--strict", "-c", str(ROOT / ".yamllint.yaml"), str(OVERLAY / "rendered")],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_document_validates_strictly(prod_documents: list[tuple[str, dict[str, Any]]]) -> None:
    kinds = []
    for path, doc in prod_documents:
        if doc["kind"] in schemas.UNCHECKED_KINDS:
            continue
        assert schemas.problems(doc) == [], f"{path} ({doc['kind']})"
        kinds.append(doc["kind"])
        if doc["kind"] == "Sensor":
            for trigger in doc["spec"]["triggers"]:
                assert schemas.problems(trigger["template"]["argoWorkflow"]["source"]["resource"]) == []
    assert {"WorkflowTemplate", "CronWorkflow", "EventSource", "Sensor", "RoleBinding"} <= set(kinds)


def test_the_new_namespace_is_everywhere(prod_rendered, prod_documents) -> None:
    # The default namespace does occur in the base output, so its absence here means something.
    assert DEFAULT_NAMESPACE in (ROOT / "generated" / "rbac.yaml").read_text()
    for path, text in prod_rendered.items():
        assert DEFAULT_NAMESPACE not in text, path
    seen = set()
    for path, doc in prod_documents:
        if doc["kind"] != "Kustomization":
            namespace = doc["metadata"].get("namespace")
            assert namespace == PROD_NAMESPACE or (
                doc["kind"] in ("Role", "RoleBinding") and namespace in WATCHED_NAMESPACES), (path, namespace)
            seen.add(namespace)
        for subject in doc.get("subjects", []):
            assert subject["namespace"] == PROD_NAMESPACE, path
        if doc["kind"] == "Sensor":
            for trigger in doc["spec"]["triggers"]:
                assert trigger["template"]["argoWorkflow"]["source"]["resource"]["metadata"]["namespace"] == \
                    PROD_NAMESPACE
        for hook in doc.get("spec", {}).get("webhook", {}).values():
            assert f".{PROD_NAMESPACE}.svc:" in hook["url"], path
    assert seen == {PROD_NAMESPACE, *WATCHED_NAMESPACES}
    flags = [a for _, doc in prod_documents for _, c in pod_policy.containers(doc) for a in c.get("args", [])]
    state = [a for a in flags if a.startswith("--state-namespace=")]
    assert state and set(state) == {f"--state-namespace={PROD_NAMESPACE}"}


def test_the_private_image_and_pull_secret_on_every_pod(prod_rendered, prod_documents) -> None:
    assert not any("ghcr.io/hera-flows" in text for text in prod_rendered.values())
    pods = 0
    for path, doc in prod_documents:
        if doc["kind"] in WORKFLOW_KINDS:
            spec = doc["spec"] if doc["kind"] == "WorkflowTemplate" else doc["spec"]["workflowSpec"]
            assert spec["imagePullSecrets"] == PULL_SECRETS, path
            for where, container in pod_policy.containers(doc):
                # a named agent runtime's image sits next to the step image, in the same private registry
                runtime = "-agent-codex" if "failure-triage" in path else "-agent-claude-code"
                expected = PRIVATE_IMAGE.replace(":", f"{runtime}:") if where.endswith("/agent") else PRIVATE_IMAGE
                assert container["image"] == expected, f"{path}: {where}"
                pods += 1
        elif doc["kind"] in EVENT_KINDS:
            template = doc["spec"]["template"]
            assert template["imagePullSecrets"] == PULL_SECRETS, path
            # the Argo Events controller fills in its own image; the pull secret covers a mirrored one
            assert "image" not in template["container"], path
            pods += 1
        if doc["kind"] == "Sensor":
            for trigger in doc["spec"]["triggers"]:
                workflow = trigger["template"]["argoWorkflow"]["source"]["resource"]
                # a submitted Workflow inherits the WorkflowTemplate's spec, imagePullSecrets included
                assert "workflowTemplateRef" in workflow["spec"] and "templates" not in workflow["spec"]
    assert pods >= 20


def test_the_forge_steps_talk_to_gitlab(prod_rendered, prod_documents) -> None:
    assert not any("--forge=github" in text or "api.github.com" in text for text in prod_rendered.values())
    seen = set()
    for _, doc in prod_documents:
        for _, container in pod_policy.containers(doc):
            args = [*container.get("command", []), *container.get("args", [])]
            step = args[args.index("step") + 1] if "step" in args else None
            if step in FORGE_STEPS:
                seen.add(step)
                assert "--forge=gitlab" in args, (step, args)
            if step in ("review", "report"):
                assert f"--api-url={GITLAB_API}" in args, args
            for env in container.get("env", []):
                if env["name"] == "HF_FORGE_TOKEN":
                    ref = env["valueFrom"]["secretKeyRef"]
                    assert (ref["name"], ref["key"]) == ("gitlab-forge", "token")
    assert {"review", "publish", "prepare-workspace", "promotion-context"} <= seen


def test_the_rendered_example_passes_the_pod_policy(prod_documents) -> None:
    for path, doc in prod_documents:
        assert pod_policy.problems(path, doc) == []


def test_without_pull_secrets_no_pod_gets_any() -> None:
    for folder in ("generated", "eventsources", "sensors"):
        for path in (ROOT / folder).rglob("*.yaml"):
            assert "imagePullSecrets" not in path.read_text(), path


# ------------------------------------------------------------------------------------------------------------
# The kustomize overlay on top of it


def test_the_overlay_kustomization_lists_every_rendered_object() -> None:
    kustomization = yaml.safe_load((OVERLAY / "kustomization.yaml").read_text())
    expected = ["rendered/generated"] + [
        p.relative_to(OVERLAY).as_posix()
        for folder in ("eventsources", "sensors") for p in sorted((OVERLAY / "rendered" / folder).glob("*.yaml"))
    ]
    assert kustomization["resources"] == expected
    # what would rewrite hera-flows' output unsafely (see examples/overlay/README.md)
    assert not {"namespace", "images", "namePrefix", "nameSuffix", "commonLabels"} & kustomization.keys()


def _kustomize() -> list[str]:
    """A kustomize v5 command line, or skip: a standalone `kustomize`, else kubectl's embedded one (>= 1.27)."""
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        version = subprocess.run(["kubectl", "version", "--client"], capture_output=True, text=True, timeout=60)
        match = re.search(r"Kustomize Version: v(\d+)", version.stdout)
        if match and int(match.group(1)) >= 5:
            return ["kubectl", "kustomize"]
    pytest.skip("no kustomize v5 (standalone or kubectl >= 1.27) on this machine")


def _build(folder: Path) -> list[dict[str, Any]]:
    result = subprocess.run([*_kustomize(), str(folder)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def test_kustomize_builds_the_base_output() -> None:
    # Regression: a `namespace:` in generated/kustomization.yaml moved failure triage's Roles out of the
    # watched namespaces and made the build fail with an ID conflict.
    built = _build(ROOT / "generated")
    listed = yaml.safe_load((ROOT / "generated" / "kustomization.yaml").read_text())["resources"]
    on_disk = [d for rel in listed for d in yaml.safe_load_all((ROOT / "generated" / rel).read_text())]
    assert sorted(map(_identity, built)) == sorted(map(_identity, on_disk))


def _identity(doc: dict[str, Any]) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


ADDED_LABELS = {"acme.example/team": "ml-platform", "acme.example/cost-center": "cc-4711"}
NODE_SELECTOR = {"acme.example/node-pool": "automation"}


def _scheduling(doc: dict[str, Any]) -> dict[str, Any]:
    """Where the overlay's scheduling patch lands for each kind."""
    if doc["kind"] == "WorkflowTemplate":
        return doc["spec"]
    if doc["kind"] == "CronWorkflow":
        return doc["spec"]["workflowSpec"]
    return doc["spec"]["template"]


def test_the_kustomize_overlay_builds_valid_manifests_and_changes_only_what_it_says(prod_documents) -> None:
    built = _build(OVERLAY)
    rendered = {_identity(d): d for path, d in prod_documents
                if d["kind"] != "Kustomization" and not path.startswith("generated/monitoring/")}
    assert sorted(map(_identity, built)) == sorted(rendered)
    for doc in built:
        where = "/".join(_identity(doc))
        assert schemas.problems(doc) == [], where
        assert pod_policy.problems(where, doc) == []
        labels = doc["metadata"]["labels"]
        assert labels.items() >= {**ADDED_LABELS, "app.kubernetes.io/managed-by": "hera-flows"}.items(), where
        assert doc["metadata"]["annotations"]["acme.example/oncall"].startswith("https://"), where
        # Take the overlay's additions away again: what is left is exactly what hera-flows rendered.
        original = rendered[_identity(doc)]
        for key in ADDED_LABELS:
            del labels[key]
        del doc["metadata"]["annotations"]["acme.example/oncall"]
        if not doc["metadata"]["annotations"]:
            del doc["metadata"]["annotations"]
        if doc["kind"] in (*WORKFLOW_KINDS, *EVENT_KINDS):
            scheduling = _scheduling(doc)
            assert scheduling.pop("nodeSelector") == NODE_SELECTOR, where
            assert scheduling.pop("tolerations")[0]["key"] == "acme.example/node-pool", where
            priority = "podPriorityClassName" if doc["kind"] in WORKFLOW_KINDS else "priorityClassName"
            assert scheduling.pop(priority) == "ml-automation", where
        assert doc == original, where
