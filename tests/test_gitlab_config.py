"""``forge.kind: gitlab`` in the configuration: validation, defaults, and manifests that pass the same strict
schema validation as the committed output, with every forge-using step told which forge it talks to."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from hera_flows.config import ConfigError, parse_config
from hera_flows.generate import render
from tests.conftest import ROOT
from tests.support import schemas

CONFIG = ROOT / "config" / "flows.yaml"
GITLAB_API = "https://gitlab.example.com/api/v4"
# Steps that talk to the forge (review, report) or clone/push with its token (context, prepare, publish).
FORGE_STEPS = {"review", "report", "publish", "prepare-workspace", "promotion-context"}


def gitlab_config_text() -> str:
    """config/flows.yaml with every repository on a self-managed GitLab (a subgroup) and forge.kind gitlab."""
    data = yaml.safe_load(CONFIG.read_text())
    data["forge"] = {"kind": "gitlab", "api_url": GITLAB_API, "token_secret": {"name": "gitlab-token", "key": "token"}}

    def move(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "repository" and isinstance(value, dict) and "url" in value:
                    value["url"] = value["url"].replace("https://github.com/", "https://gitlab.example.com/platform/")
                    value.pop("slug", None)
                else:
                    move(value)

    move(data)
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture(scope="module")
def gitlab_documents() -> list[tuple[str, dict[str, Any]]]:
    rendered = render(parse_config(gitlab_config_text(), "gitlab.yaml"))
    return [(path, doc) for path, text in rendered.items() for doc in yaml.safe_load_all(text)]


def test_gitlab_defaults_and_project_paths() -> None:
    cfg = parse_config("repository: {url: 'https://gitlab.com/acme/ml/gitops.git'}\nforge: {kind: gitlab}\n")
    assert cfg.forge.api_url == "https://gitlab.com/api/v4"
    assert cfg.repository is not None and cfg.repository.slug == "acme/ml/gitops"
    github = parse_config("repository: {url: 'https://github.com/o/r'}\n")
    assert github.forge.kind == "github" and github.forge.api_url == "https://api.github.com"
    own = parse_config(f"repository: {{url: 'https://h/a/b'}}\nforge: {{kind: gitlab, api_url: '{GITLAB_API}'}}\n")
    assert own.forge.api_url == GITLAB_API


@pytest.mark.parametrize(("text", "message"), [
    ("forge: {kind: bitbucket}\n", "forge.kind"),
    ("forge: {kind: github, api_url: 'https://gitlab.example.com/api/v4'}\n", "set forge.kind: gitlab"),
    ("repository: {url: 'https://github.com/acme/ml/gitops'}\n", "group/subgroup/name needs forge.kind: gitlab"),
])
def test_forge_mistakes_are_one_clear_line(text: str, message: str) -> None:
    if not text.startswith("repository"):
        text = "repository: {url: 'https://github.com/o/r'}\n" + text
    with pytest.raises(ConfigError) as error:
        parse_config(text)
    assert any(message in problem for problem in error.value.problems), error.value.problems


def test_gitlab_manifests_validate_strictly(gitlab_documents: list[tuple[str, dict[str, Any]]]) -> None:
    """As tests/test_manifests.py: every document against the official Argo Workflows v3.7/v4.1 and Argo Events
    schemas (strict), and the Workflows the Sensors submit."""
    checked = []
    for path, doc in gitlab_documents:
        if doc["kind"] in schemas.UNCHECKED_KINDS:
            continue
        assert schemas.problems(doc) == [], f"{path} ({doc['kind']})"
        checked.append(doc["kind"])
        if doc["kind"] == "Sensor":
            for trigger in doc["spec"]["triggers"]:
                assert schemas.problems(trigger["template"]["argoWorkflow"]["source"]["resource"]) == []
    assert checked.count("WorkflowTemplate") >= 1 and len(checked) >= 5


def _step_containers(documents: list[tuple[str, dict[str, Any]]]) -> list[tuple[str, dict[str, Any]]]:
    """(step name, container) for every ``hera-flows step NAME`` container, containerSet members included."""
    found = []
    for _, doc in documents:
        if doc["kind"] != "WorkflowTemplate":
            continue
        for template in doc["spec"]["templates"]:
            containers = [template.get("container")] + list((template.get("containerSet") or {}).get("containers", []))
            for container in filter(None, containers):
                args = [*container.get("command", []), *container.get("args", [])]
                if "step" in args:
                    found.append((args[args.index("step") + 1], container))
    return found


def test_every_forge_step_is_told_the_forge(gitlab_documents: list[tuple[str, dict[str, Any]]]) -> None:
    seen = set()
    for step, container in _step_containers(gitlab_documents):
        args = [*container.get("command", []), *container.get("args", [])]
        if step in FORGE_STEPS:
            seen.add(step)
            assert "--forge=gitlab" in args, (step, args)
        if step in ("review", "report"):
            assert f"--api-url={GITLAB_API}" in args
            assert any(a.startswith("--repo-slug=platform/acme/") for a in args), args
        tokens = [e for e in container.get("env", []) if e["name"] == "HF_FORGE_TOKEN"]
        for env in tokens:
            assert env["valueFrom"]["secretKeyRef"]["name"] == "gitlab-token"
    assert {"review", "publish", "prepare-workspace", "promotion-context"} <= seen
