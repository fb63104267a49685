"""The generator↔pod contract (hera_flows/steps/contract.py) and the pattern records (hera_flows/catalog.py).

What a step receives is declared once, next to the step, and both sides read it: these tests take every
`hera-flows step NAME` container of every generated manifest (the default configuration and the production
overlay) and check it against its step's contract, so a flag the pod does not know, a required flag the generator
forgot, an input the template does not pass or an output it does not collect fails here instead of in a pod.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows import catalog
from hera_flows.cli import run_step
from hera_flows.steps import ALIASES, STEPS, step_contract
from hera_flows.steps.contract import Flag, Step, env_name, file_env_name, render_flags
from tests.conftest import ROOT
from tests.support.settings import step_containers

OUTPUT_FOLDERS = [ROOT, ROOT / "examples" / "overlay" / "rendered"]


def containers_under(root: Path) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(file:template, template, container) for every container running `hera-flows step ...` under ``root``."""
    for path in sorted((root / "generated").rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") in ("WorkflowTemplate", "CronWorkflow"):
                for template, container in step_containers(doc):
                    yield f"{path.relative_to(root)}:{template['name']}", template, container


def all_step_containers() -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [item for root in OUTPUT_FOLDERS for item in containers_under(root)]


def test_the_generated_output_runs_every_step_of_the_table() -> None:
    used = {container["args"][1] for _, _, container in all_step_containers()}
    assert used == set(STEPS), f"steps never generated: {set(STEPS) - used}; unknown: {used - set(STEPS)}"


@pytest.mark.parametrize(("where", "template", "container"), all_step_containers(), ids=lambda v: "")
def test_every_generated_step_call_is_what_its_contract_declares(where: str, template: dict[str, Any],
                                                                 container: dict[str, Any]) -> None:
    name, *flags = container["args"][1:]
    assert name in STEPS, f"{where}: `hera-flows step {name}` is not a current step name"
    contract = step_contract(name)
    # Every flag is declared and every required one is present: the pod's own parser accepts the arguments.
    flags = [f for f in flags if not f.startswith("--outputs=")]
    parsed = vars(contract.parse(flags, _editor_settings(contract, flags)))
    declared = {f.dest for f in contract.flags}
    assert {k for k, v in parsed.items() if v is not None and k in declared} >= {
        f.dest for f in contract.flags if not f.optional}, where
    # Inputs arrive as HF_PARAM_* env vars from the template's input parameters, or (large ones, with an artifact
    # repository) as HF_FILE_* naming the path of the template's input artifact; only the contract's, each one way.
    env = {e["name"]: e.get("value") for e in container.get("env") or [] if e["name"].startswith("HF_PARAM_")}
    files = {e["name"]: e.get("value") for e in container.get("env") or [] if e["name"].startswith("HF_FILE_")}
    by_param = {p for p in contract.inputs if env_name(p) in env}
    by_file = {p for p in contract.inputs if file_env_name(p) in files}
    assert set(env) == {env_name(p) for p in by_param} and set(files) == {file_env_name(p) for p in by_file}, where
    assert not by_param & by_file, where
    for param in by_param:
        assert env[env_name(param)] == f"{{{{inputs.parameters.{param}}}}}", where
    artifacts = {a["name"]: a["path"] for a in (template.get("inputs") or {}).get("artifacts", [])}
    for param in by_file:
        assert files[file_env_name(param)] == artifacts[param], where
    if "container" in template:  # a plain step: its template declares the inputs and collects the outputs
        declared_inputs = {p["name"] for p in (template.get("inputs") or {}).get("parameters", [])}
        assert declared_inputs == by_param and set(artifacts) == by_file, where
        outputs = {p["name"] for p in (template.get("outputs") or {}).get("parameters", [])}
        stored = {a["name"] for a in (template.get("outputs") or {}).get("artifacts", [])}
        assert not outputs & stored and outputs | stored <= {*contract.outputs, *contract.directories}, where
        # an output the wiring leaves out is one the step may leave empty: only these are ever left out
        assert {*contract.outputs} - outputs - stored <= {"shard-ids"}, where


def _editor_settings(contract: Step, flags: list[str]) -> tuple[Flag, ...]:
    """The pattern editor's settings, for the steps that take ``--pattern`` (prepare, agent-builtin, publish)."""
    pattern = next((f.split("=", 1)[1] for f in flags if f.startswith("--pattern=")), None)
    if pattern is None or contract.name == "review" or contract.name == "report":
        return ()
    return tuple(importlib.import_module(catalog.pattern(pattern).editor).SETTINGS)


def test_flags_have_no_defaults_and_the_generator_cannot_leave_one_out() -> None:
    contract = step_contract("promotion-smoke")
    with pytest.raises(SystemExit):
        contract.parse([])  # nothing is assumed: a required flag left out is a usage error in the pod
    with pytest.raises(ValueError, match="endpoint"):
        contract.argv({"protocol": "v2"})  # ... and a generation error first
    with pytest.raises(ValueError, match="unknown flag"):
        contract.argv({"endpoint": "http://x", "protocol": "v2", "max_latency_ms": 1, "timeout_seconds": 1,
                       "no_such_flag": 1})
    flag = Flag("intersections", form="json")
    assert render_flags([flag], {"intersections": [["sex", "race"]]}, where="t") == \
        ['--intersections=[["sex","race"]]']
    assert flag.parse('[["sex","race"]]') == [["sex", "race"]]


def test_a_step_reads_and_writes_only_what_it_declares(tmp_path: Path) -> None:
    contract = step_contract("claims")
    with pytest.raises(ValueError, match="undeclared input"):
        contract.param("event-body")
    with pytest.raises(ValueError, match="undeclared output"):
        contract.write(tmp_path, decision="x")
    contract.write(tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == set(contract.outputs)  # every declared output, empty


def test_every_step_module_declares_its_own_name() -> None:
    for name, module in STEPS.items():
        contract = importlib.import_module(module).CONTRACT
        assert contract.name == name, module
        assert contract.entry == f"{module}:main", module


def test_earlier_step_names_are_still_dispatched(capsys: pytest.CaptureFixture[str]) -> None:
    assert ALIASES and set(ALIASES.values()) <= set(STEPS)
    assert not set(ALIASES) & set(STEPS)
    # An old name runs the current step (here: it reaches the step's own argument parsing).
    with pytest.raises(SystemExit):
        run_step(["guard-drift"])
    assert "hera-flows step drift-guard" in capsys.readouterr().err
    assert run_step(["no-such-step"]) == 2


@pytest.mark.parametrize("record", catalog.PATTERNS, ids=lambda r: r.id)
def test_a_pattern_is_its_record_plus_its_own_folders(record: catalog.Pattern) -> None:
    generator = importlib.import_module(f"hera_flows.patterns.{record.config_key}")
    assert callable(generator.build) and callable(generator.editor_settings)
    editor = importlib.import_module(record.editor)
    assert editor.SETTINGS and callable(editor.builtin_edit) and callable(editor.writable_paths)
    module, function = record.review_text.split(":")
    assert callable(getattr(importlib.import_module(module), function))
    assert (ROOT / "hera_flows" / record.prompt).is_file()
    assert (ROOT / "docs" / "patterns").is_dir() and (ROOT / "tests" / record.id).is_dir()
    for step in record.steps:
        assert record.step_name(step) in STEPS
        assert (ROOT / "hera_flows" / "steps" / record.id / f"{step}.py").is_file()


def test_every_metric_of_a_pattern_carries_its_one_label() -> None:
    """The Prometheus `pattern` label is the record's label on every metric of the pattern's templates."""
    seen: dict[str, set[str]] = {}
    for path in sorted((ROOT / "generated" / "workflowtemplates").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        [record] = [r for r in catalog.PATTERNS if doc["metadata"]["name"] in r.templates]

        def labels(node: Any) -> Iterator[str]:
            if isinstance(node, dict):
                if "prometheus" in node:
                    for metric in node["prometheus"]:
                        yield from (lb["value"] for lb in metric.get("labels", []) if lb["key"] == "pattern")
                for value in node.values():
                    yield from labels(value)
            elif isinstance(node, list):
                for value in node:
                    yield from labels(value)

        values = set(labels(doc))
        assert values == {record.label}, f"{path.name}: pattern labels {values}"
        seen[record.id] = values
    assert set(seen) == {r.id for r in catalog.PATTERNS}
