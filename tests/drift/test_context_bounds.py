"""The drift context's bound (hera_flows/steps/drift/context.py ``bounded``): as a parameter (96 KiB) a context that
would not fit leaves out the params file's content first, then halves the history and the feature files, and says
so; as an artifact (the generator's larger ``--max-context-bytes``) the same context travels whole."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from hera_flows.steps.common import StepError
from hera_flows.steps.drift.context import MAX_CONTEXT_BYTES, bounded


def _context(params_bytes: int, commits: int = 20) -> dict[str, Any]:
    return {
        "pattern": "drift",
        "event": {"model": "fraud", "feature": "amount", "metric": "psi"},
        "pipeline": {"dir": "pipelines/fraud", "params_path": "pipelines/fraud/params.yaml",
                     "params": {"features": ["f" * 50] * (params_bytes // 56)}, "params_error": None,
                     "feature_files": [f"pipelines/fraud/features/{i}.yaml" for i in range(40)]},
        "history": [{"commit": f"{i:012x}", "date": "2026-01-01", "author": "a", "subject": "s" * 180}
                    for i in range(commits)],
        "data_quality": {"suspected": False, "reasons": []},
    }


def test_a_small_context_is_unchanged() -> None:
    context = _context(2_000)
    assert json.loads(bounded(copy.deepcopy(context), MAX_CONTEXT_BYTES)) == context


def test_the_parameter_path_leaves_the_params_content_out_and_names_the_fix() -> None:
    text = bounded(_context(200_000), MAX_CONTEXT_BYTES)
    assert len(text.encode()) <= MAX_CONTEXT_BYTES
    out = json.loads(text)
    assert out["pipeline"]["params"] is None and len(out["history"]) == 20
    [note] = out["notes"]
    assert "pipelines/fraud/params.yaml is left out" in note and "artifacts.repository" in note


def test_the_artifact_bound_carries_the_whole_context() -> None:
    context = _context(200_000)
    out = json.loads(bounded(copy.deepcopy(context), 4 * 1024 * 1024))
    assert out == context


def test_history_and_feature_files_are_halved_when_the_params_alone_do_not_suffice() -> None:
    context = _context(100, commits=200)
    context["history"] = [{**c, "subject": "s" * 2000} for c in context["history"]]
    out = json.loads(bounded(context, 64 * 1024))
    assert 0 < len(out["history"]) < 200 and len(out["pipeline"]["feature_files"]) < 40
    assert out["notes"][-1] == "the history and the feature files are shortened to fit"


def test_an_event_too_large_for_a_parameter_is_an_error_naming_the_fix() -> None:
    context = _context(100)
    context["event"]["annotations"] = "x" * 200_000
    with pytest.raises(StepError, match=r"too large for a parameter.*artifacts.repository"):
        bounded(context, MAX_CONTEXT_BYTES)
