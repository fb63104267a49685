"""The sample training WorkflowTemplate in examples/training: current, valid for Argo 3.7 and 4.x, restricted
pods, and carrying what patterns 1 and 3 rely on (the triage opt-in label and the owner annotation)."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import yaml

from tests.conftest import ROOT
from tests.support import schemas

SCRIPT = ROOT / "examples" / "training" / "pipeline.py"


def _module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("training_pipeline", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_manifest_is_current_and_valid() -> None:
    module = _module()
    assert module.OUTPUT.read_text(encoding="utf-8") == module.render(), "run python examples/training/pipeline.py"
    doc = yaml.safe_load(module.render())
    assert schemas.problems(doc) == []


def test_it_opts_in_to_triage_and_names_an_owner() -> None:
    doc = yaml.safe_load(_module().render())
    metadata = doc["spec"]["workflowMetadata"]
    assert metadata["labels"]["mlops.hera-flows/triage"] == "enabled"
    assert metadata["annotations"]["mlops.hera-flows/owner"].startswith("@")
    assert [t["name"] for t in doc["spec"]["templates"]] == ["train", "evaluate", "register", "promote-to-staging",
                                                              "main"]


def test_every_container_is_restricted_and_bounded() -> None:
    doc = yaml.safe_load(_module().render())
    assert doc["spec"]["securityContext"]["runAsNonRoot"] is True
    for template in doc["spec"]["templates"]:
        if "container" not in template:
            continue
        container = template["container"]
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False and context["capabilities"]["drop"] == ["ALL"]
        assert context["readOnlyRootFilesystem"] is True
        assert container["resources"]["limits"]["memory"] and container["resources"]["requests"]["cpu"]
        # parameters reach the program as argv elements, never through a shell
        assert container["command"][:2] == ["python", "-m"]
