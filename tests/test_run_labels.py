"""Guards label their own Workflow: values are valid label values whatever the event said, and every guard
does it (checked through each guard's local label file)."""

from __future__ import annotations

import json
import re

import pytest

from hera_flows.steps.run_labels import DECISION_LABEL, KEY_LABEL, MODEL_LABEL, key_label, label_workflow, run_labels

LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?)?$")


@pytest.mark.parametrize("model", ["fraud-detector", "a" * 64, "ünïcode", "x/y", "-leading", "ok.v2_x", ""])
def test_labels_are_always_valid_label_values(model: str) -> None:
    labels = run_labels("skipped-cooldown", dedupe_key=f"{model}@amount", model=model)
    assert labels[DECISION_LABEL] == "skipped-cooldown"
    assert labels[KEY_LABEL] == key_label(f"{model}@amount") and len(labels[KEY_LABEL]) == 32
    assert all(LABEL_VALUE.match(value) for value in labels.values())
    assert (MODEL_LABEL in labels) == (model in ("fraud-detector", "ok.v2_x"))


def test_same_key_same_label_other_key_other_label() -> None:
    assert key_label("fraud@v7") == key_label("fraud@v7") != key_label("fraud@v8")


def test_local_runs_write_the_labels_to_the_state_folder(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(tmp_path))
    label_workflow("ns", "wf-1", run_labels("proceed", dedupe_key="k", model="m"))
    assert json.loads((tmp_path / "workflow-labels" / "wf-1.json").read_text()) == {
        DECISION_LABEL: "proceed", KEY_LABEL: key_label("k"), MODEL_LABEL: "m"}


def test_without_a_cluster_labelling_is_only_logged(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("HERA_FLOWS_STATE_DIR", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    label_workflow("ns", "wf-1", {DECISION_LABEL: "proceed"}, who="guard-x")
    assert "guard-x: could not label workflow wf-1" in capsys.readouterr().err
