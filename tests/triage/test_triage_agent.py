"""benchmarks/triage_agent.py: failure triage with a coding agent, scored on the corpus from recorded replies.

The recorder runs a real process (a stand-in agent CLI: a Python script reading the prompt on stdin and writing the
summary where the prompt says), the export/import round trip keeps the corpus' labels out of what goes to an agent,
and a recording whose prompt changed is reported stale and never scored.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from benchmarks import triage_agent
from benchmarks.triage_corpus import Case, load

CASES = load()

# A stand-in agent CLI: it reads the prompt from stdin, takes the rule table's verdict out of the data section and
# writes a summary whose verdict line overrides `unknown` with `timeout` and confirms anything else.
STAND_IN = r"""
import json, re, sys
prompt = sys.stdin.read()
data = json.loads(re.search(r"^(`{3,})json\n(.*?)\n\1$", prompt, re.S | re.M).group(2))
rule = data["classification"]["category"]
summary = re.search(r"markdown summary of what you changed \(or why you opened an issue\) to the file\s+`([^`]+)`",
                    prompt).group(1)
verdict = "timeout" if rule == "unknown" else rule
with open(summary, "w") as out:
    out.write(f"**Verdict:** `{verdict}` (rule table: `{rule}`)\n\nRead from the evidence.\n")
"""


@pytest.fixture
def recordings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "agent-verdicts"
    monkeypatch.setattr(triage_agent, "RECORDINGS", folder)
    return folder


def _pick(rule: str, count: int) -> list[Case]:
    picked = [c for c in CASES if triage_agent.agent_context(c)["classification"]["category"] == rule]
    return picked[:count]


def test_the_recorder_runs_the_agent_cli_on_each_prompt_and_the_replay_scores_its_verdicts(
    recordings: Path, tmp_path: Path,
) -> None:
    cases = _pick("unknown", 3) + _pick("oom", 2)
    agent = tmp_path / "agent.py"
    agent.write_text(STAND_IN, encoding="utf-8")
    command = f"{sys.executable} {agent}"
    assert triage_agent.record(cases, 9, command, timeout=60, recorded_by="stand-in") == 0
    recorded = triage_agent.load_recordings(9)
    assert sorted(recorded) == sorted(c.id for c in cases)
    assert all(r.recorded_by == "stand-in" and r.prompt_sha256 == triage_agent.prompt_sha256(c)
               for c in cases for r in [recorded[c.id]])
    result = triage_agent.score_with_agent(cases, recorded)
    assert [p for _, p in result.rules.cases] == ["unknown"] * 3 + ["oom"] * 2
    assert [p for _, p in result.agent.cases] == ["timeout"] * 3 + ["oom"] * 2  # the agent's verdict decides
    assert result.stale == result.missing == result.no_verdict == []
    right = sum(c.label == "timeout" for c in cases[:3])
    assert result.changes()["agreed with the rule table"] == 2
    assert result.changes()["overrode it, rightly (an unknown)"] == right


def test_a_recording_whose_prompt_changed_is_stale_and_a_reply_without_verdict_leaves_the_rule_table(
    recordings: Path,
) -> None:
    first, second, third = _pick("unknown", 1) + _pick("gpu-oom", 2)
    recorded = {
        first.id: triage_agent.Recording(first.id, "0" * 64, "Verdict: oom (rule table: unknown)", "x"),
        second.id: triage_agent.Recording(second.id, triage_agent.prompt_sha256(second), "I looked at it.", "x"),
    }
    result = triage_agent.score_with_agent([first, second, third], recorded)
    assert result.stale == [first] and result.missing == [third] and result.no_verdict == [second]
    assert [(c.id, p) for c, p in result.agent.cases] == [(second.id, "gpu-oom")]
    text = "\n".join(triage_agent.agent_report("r", result))
    assert "stale 1, missing 1, no verdict line 1" in text


def test_export_and_import_carry_prompts_out_and_replies_back_without_the_labels(
    recordings: Path, tmp_path: Path,
) -> None:
    cases = [c for c in CASES if c.round == 2][:12]
    assert triage_agent.export(cases, tmp_path / "out", shards=2) == 0
    instructions = (tmp_path / "out" / "instructions.md").read_text(encoding="utf-8")
    shards = [(tmp_path / "out" / f"cases-{n}.md").read_text(encoding="utf-8") for n in (1, 2)]
    assert "# Task" in instructions and "Verdict: <class>" in instructions
    keys = [k for text in shards for k in re.findall(r"^## case ([0-9a-f]+)$", text, re.M)]
    assert sorted(keys) == sorted(triage_agent.prompt_sha256(c)[:triage_agent.KEY_CHARS] for c in cases)
    # instructions + a case's section are its prompt; nothing of the corpus' labelling goes out
    whole = "\n".join(shards)
    for case in cases:
        assert case.source not in whole and case.why not in whole and case.id not in whole
    replies = tmp_path / "replies.jsonl"
    replies.write_text("\n".join(json.dumps({"case": k, "reply": "Verdict: network (rule table: x)\nwhy"})
                                 for k in keys) + "\n", encoding="utf-8")
    assert triage_agent.import_replies(cases, 2, [replies], "a reader") == 0
    recorded = triage_agent.load_recordings(2)
    assert len(recorded) == 12 and {r.reply for r in recorded.values()} == {"Verdict: network (rule table: x)\nwhy"}
    replies.write_text(json.dumps({"case": "f" * 16, "reply": "Verdict: oom"}) + "\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="is no current prompt of round 2"):
        triage_agent.import_replies(cases, 2, [replies], "a reader")


def test_cases_that_pasted_the_same_text_are_one_prompt_and_its_reply_is_each_ones(
    recordings: Path, tmp_path: Path,
) -> None:
    first = _pick("distributed", 1)[0]
    twin = Case(**{**first.__dict__, "id": "twin-of-" + first.id, "source": "https://example.invalid/twin"})
    assert triage_agent.prompt_sha256(twin) == triage_agent.prompt_sha256(first)
    assert triage_agent.export([first, twin], tmp_path / "out", shards=2) == 0
    text = "".join((tmp_path / "out" / f"cases-{n}.md").read_text(encoding="utf-8") for n in (1, 2))
    keys = re.findall(r"^## case ([0-9a-f]+)$", text, re.M)
    assert len(keys) == 1  # asked once
    replies = tmp_path / "replies.jsonl"
    replies.write_text(json.dumps({"case": keys[0], "reply": "Verdict: distributed (rule table: distributed)"}) + "\n",
                       encoding="utf-8")
    assert triage_agent.import_replies([first, twin], 2, [replies], "a reader") == 0
    assert sorted(triage_agent.load_recordings(2)) == sorted([first.id, twin.id])  # recorded for both


def test_the_command_line_says_what_each_action_needs(recordings: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        triage_agent.main(["--record", "--round", "4"])
    assert "--record needs --command" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        triage_agent.main(["--import", "x.jsonl", "--round", "4"])
    assert "--import needs --recorded-by" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        triage_agent.main(["--export", "x", "--round", "2", "--round", "3"])
    assert "exactly one --round" in capsys.readouterr().err


def test_the_label_audit_splits_the_score_into_cases_whose_text_shows_the_label_and_the_others(
    recordings: Path,
) -> None:
    cases = _pick("unknown", 2) + _pick("oom", 2)
    recorded = {c.id: triage_agent.Recording(c.id, triage_agent.prompt_sha256(c),
                                             f"Verdict: {c.label} (rule table: x)", "x") for c in cases[:3]}
    recorded[cases[3].id] = triage_agent.Recording(cases[3].id, triage_agent.prompt_sha256(cases[3]),
                                                   "Verdict: unknown", "x")
    result = triage_agent.score_with_agent(cases, recorded)
    audit = {cases[0].id: True, cases[1].id: False, cases[2].id: True, cases[3].id: False}
    part = triage_agent.audited(result, audit)
    assert part is not None and part.audited == 4
    assert [c.id for c, _ in part.agent.cases] == [cases[0].id, cases[2].id] and part.agent.accuracy == 1.0
    assert part.hidden == {"the label": 1, "unknown": 1}
    assert "the text of 2 of 4 cases does not show their label" in triage_agent.audit_line(result, audit)
    assert triage_agent.audited(result, {}) is None


def test_every_audit_and_recording_names_a_case_of_its_round() -> None:
    from benchmarks.triage_corpus import AUDIT

    for folder in (triage_agent.RECORDINGS, AUDIT):
        for path in folder.glob("round-*.jsonl"):
            found = re.match(r"^round-(\d+)(\.(replicate|reviewer)-\d+)?\.jsonl$", path.name)
            assert found, path.name
            number = int(found.group(1))
            ids = {c.id for c in CASES if c.round == number}
            named = [json.loads(line)["id"] for line in path.read_text(encoding="utf-8").splitlines() if line]
            assert len(named) == len(set(named)) and set(named) <= ids, path


def test_a_replicate_and_a_second_reviewer_show_how_much_the_numbers_move(
    recordings: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases = [c for c in CASES if c.round == 3][:4]
    first = {c.id: triage_agent.Recording(c.id, triage_agent.prompt_sha256(c), f"Verdict: {c.label}", "a")
             for c in cases}
    second = {**first, cases[0].id: triage_agent.Recording(cases[0].id, triage_agent.prompt_sha256(cases[0]),
                                                           "Verdict: unknown", "b")}
    triage_agent.save_recordings(3, first)
    triage_agent.save_recordings(3, second, replicate=2)
    assert triage_agent.recorded_rounds() == {3: [1, 2]}
    reviews = {1: {c.id: True for c in cases}, 2: {**{c.id: True for c in cases}, cases[1].id: False}}
    monkeypatch.setattr(triage_agent, "load_audit", lambda reviewer=1: reviews[reviewer])
    first_set = triage_agent.score_with_agent(cases, triage_agent.load_recordings(3))
    [replicate, audit] = triage_agent.consistency(cases, first_set, 3)
    assert replicate.startswith("Replicate 2, an independent set of replies to the same 4 prompts: 75.0 % (0)")
    assert "it gave the first set's class on 3 (75 %)" in replicate
    assert "agrees with the first on 3 (75 %, Cohen's kappa 0.00)" in audit
    assert "on the 3 cases both call shown, with the agent: 100.0 % (0)" in audit
