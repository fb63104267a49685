"""The fairness smoke check on real refresh output: cards written by ``collect.refresh`` in a scratch checkout pass;
each kind of damage (a broken record, a record that does not round-trip, a broken table, a stale week, a card the
digest does not name, a changed policy) fails with a line that says what is wrong."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from hera_flows.steps.common import StepError
from hera_flows.steps.fairness import card, collect, smoke
from tests.support.settings import generated_flags

DATE, WEEK = "2026-11-22", "2026-W47"
CARDS, POLICY = "model-cards", "model-cards/POLICY.md"


def _result(model: str, version: str, shift: float) -> dict[str, Any]:
    return {"model": model, "version": version, "selector": "@production", "dataset": "/d.csv", "rows": 100,
            "overall": [100, 0.3, 0.8, 0.7, 0.6, 0.1, 0.4], "problems": [], "error": "",
            "attributes": {"sex": {"groups": {"F": [50, 0.4 + shift, 0.8, 0.7, 0.6, 0.1, 0.4],
                                              "M": [50, 0.2, 0.8, 0.7, 0.6, 0.1, 0.4]},
                                   "small": [], "dp_difference": 0.2 + shift, "dp_ratio": 0.5,
                                   "eo_difference": 0.0}}}


@pytest.fixture()
def refresh(tmp_path: Path) -> tuple[dict[str, str], str, dict[str, Any]]:
    """A checkout where ``fraud|detector`` (a name that needs escaping in tables) and ``churn`` get refreshed and
    ``steady`` stays within the thresholds; returns (files output, digest, context)."""
    repo = tmp_path / "repo"
    (repo / CARDS).mkdir(parents=True)
    old = {"date": "2026-11-15", "week": "2026-W46", "version": "1", "selector": "@production", "dataset": "/d.csv",
           "rows": 100, "overall": None, "attributes": _result("steady", "1", 0.0)["attributes"]}
    (repo / CARDS / "steady.md").write_text(
        card.upsert_section(None, "steady", card.render_section("steady", old, None))
    )
    context = {"pattern": "fairness", "date": DATE, "week": WEEK, "results": [
        _result("fraud|detector", "4", 0.1), _result("churn", "2", 0.0), _result("steady", "1", 0.0)]}
    before = {p: p.read_bytes() for p in (repo / CARDS).iterdir()}
    digest = collect.refresh(repo, context, cards_dir=CARDS, policy_file=POLICY)
    files = {p.relative_to(repo).as_posix(): p.read_text() for p in (repo / CARDS).iterdir()
             if before.get(p) != p.read_bytes()}
    assert sorted(files) == ["model-cards/churn.md", "model-cards/fraud-detector.md"]
    return files, digest, context


def test_a_real_refresh_passes(refresh) -> None:
    files, digest, context = refresh
    result, report = smoke.check(files, digest, context, cards_dir=CARDS, policy_file=POLICY)
    assert result == "passed", report
    assert "2 card(s) checked, 0 not checked" in report and report.count("✅") == 2


def _damaged(files: dict[str, str], path: str, old: str, new: str) -> dict[str, str]:
    assert old in files[path]
    return {**files, path: files[path].replace(old, new, 1)}


def _record_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(card.DATA_PREFIX))


FRAUD = "model-cards/fraud-detector.md"


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda f: _damaged(f, FRAUD, '"week":"2026-W47"', '"week":"2026-W47",}'), "not valid JSON"),
    (lambda f: _damaged(f, FRAUD, '{"attributes"', '{ "attributes"'), "does not round-trip"),
    (lambda f: _damaged(f, FRAUD, '"dataset":"/d.csv"', '"dataset":"-->"'), "does not round-trip"),
    (lambda f: _damaged(f, FRAUD, _record_line(f[FRAUD]), ""), "found 0"),
    (lambda f: _damaged(f, FRAUD, card.END, ""), "exactly one fairness section"),
    (lambda f: _damaged(f, FRAUD, "| Demographic-parity ratio |", "| Demographic-parity ratio | x |"),
     "cells, its header 3"),
    (lambda f: _damaged(f, FRAUD, "|---|---:|---:|", "| x | y | z |"), "no separator row"),
    (lambda f: _damaged(f, FRAUD, '"week":"2026-W47"', '"week":"2026-W46"'), "not of this run's"),
    (lambda f: _damaged(f, FRAUD, '"version":"4"', '"version":"3"'), "the audit saw version 4"),
])
def test_a_damaged_card_fails(refresh, damage, expected: str) -> None:
    files, digest, context = refresh
    result, report = smoke.check(damage(files), digest, context, cards_dir=CARDS, policy_file=POLICY)
    assert result == "failed" and expected in report, report
    assert "✅ `model-cards/churn.md`" in report  # the other card is still reported as fine


def test_the_digest_must_name_exactly_the_changed_cards(refresh) -> None:
    files, digest, context = refresh
    result, report = smoke.check({k: v for k, v in files.items() if "churn" not in k}, digest, context,
                                 cards_dir=CARDS, policy_file=POLICY)
    assert result == "failed" and "the digest names `model-cards/churn.md` but the PR does not change it" in report
    result, report = smoke.check(files, digest.replace("`model-cards/churn.md`", "churn"), context,
                                 cards_dir=CARDS, policy_file=POLICY)
    assert result == "failed" and "`model-cards/churn.md` changed but the digest does not name it" in report


def test_a_card_of_no_audited_model_or_a_changed_policy_fails(refresh) -> None:
    files, digest, context = refresh
    stray = {**files, "model-cards/ghost.md": files["model-cards/churn.md"]}
    result, report = smoke.check(stray, digest + "\n- `model-cards/ghost.md`\n", context, cards_dir=CARDS,
                                 policy_file=POLICY)
    assert result == "failed" and "maps to no model audited in this run" in report
    result, report = smoke.check({**files, POLICY: "---\nthresholds: {dp_difference: 9}\n---\n"}, digest, context,
                                 cards_dir=CARDS, policy_file=POLICY)
    assert result == "failed" and "changed the policy file" in report


def test_content_beyond_the_files_budget_is_listed_not_failed(refresh) -> None:
    files, digest, context = refresh
    result, report = smoke.check({**files, FRAUD: ""}, digest, context, cards_dir=CARDS, policy_file=POLICY)
    assert result == "passed" and "1 card(s) checked, 1 not checked" in report and "➖" in report
    result, report = smoke.check({}, "", context, cards_dir=CARDS, policy_file=POLICY)
    assert result == "failed" and "nothing to check" in report


def test_the_step_reads_its_inputs_from_env(refresh, tmp_path: Path, monkeypatch) -> None:
    files, digest, context = refresh
    monkeypatch.setenv("HF_PARAM_FILES", json.dumps(files))
    monkeypatch.setenv("HF_PARAM_SUMMARY", digest)
    monkeypatch.setenv("HF_PARAM_CONTEXT", json.dumps(context))
    assert smoke.main([*generated_flags("fairness-smoke"), f"--outputs={tmp_path / 'out'}"]) == 0
    assert (tmp_path / "out" / "result").read_text() == "passed"
    assert (tmp_path / "out" / "report").read_text().startswith("### Model-card check")
    broken = copy.deepcopy(files)
    broken[FRAUD] = broken[FRAUD].replace(card.START, "")
    monkeypatch.setenv("HF_PARAM_FILES", json.dumps(broken))
    # a failed check is reported, not a step failure
    assert smoke.main([*generated_flags("fairness-smoke"), f"--outputs={tmp_path / 'out'}"]) == 0
    assert (tmp_path / "out" / "result").read_text() == "failed"
    monkeypatch.setenv("HF_PARAM_FILES", "[1, 2]")
    with pytest.raises(StepError, match="the files parameter must be a JSON object"):
        smoke.main([*generated_flags("fairness-smoke")])


def _with_record(files: dict[str, str], line: str) -> dict[str, str]:
    return {**files, FRAUD: files[FRAUD].replace(_record_line(files[FRAUD]), line, 1)}


def test_a_record_with_its_escapes_decoded_passes_unless_it_could_close_the_comment(refresh) -> None:
    """Claude Code's Edit tool writes an escape such as that of ``&`` as the character: the decoded canonical
    line is accepted, but only when no value in it can open or close the HTML comment."""
    files, digest, context = refresh
    data = json.loads(_record_line(files[FRAUD])[len(card.DATA_PREFIX):-len(card.DATA_SUFFIX)])

    def decoded(dataset: str) -> str:
        record = json.dumps({**data, "dataset": dataset}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return card.DATA_PREFIX + record + card.DATA_SUFFIX

    assert "\\u0026" in card.data_line({**data, "dataset": "/a&b<c>é.csv"})  # the canonical form escapes them
    result, report = smoke.check(_with_record(files, decoded("/a&b<c>é.csv")), digest, context, cards_dir=CARDS,
                                 policy_file=POLICY)
    assert result == "passed", report
    result, report = smoke.check(_with_record(files, decoded("/a-->b.csv")), digest, context, cards_dir=CARDS,
                                 policy_file=POLICY)
    assert result == "failed" and "does not round-trip" in report, report
