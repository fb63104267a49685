"""Issue 17: the classifier on real failure reports (tests/triage/corpus/, loaded by benchmarks/triage_corpus.py).

The corpus is real, cited and covers every class; a case becomes the context the cluster gives; the docs print
the rule table, the measured numbers and a worked example per class as the code and the corpus say. The held-out
part (the newest collection round, benchmarks/triage_corpus.HELD_OUT_ROUND) is what the rules were never tuned on;
`make bench` prints its numbers with the confusion matrix. With a coding agent configured the agent decides
(benchmarks/triage_agent.py): its recorded replies to the real prompts are scored on the same held-out round.
"""

from __future__ import annotations

from collections import Counter

from benchmarks.triage_agent import audited, load_recordings, recorded_rounds, score_with_agent
from benchmarks.triage_corpus import (
    DOC,
    HELD_OUT_ROUND,
    TUNED_THROUGH_ROUND,
    Case,
    load,
    load_audit,
    render_docs,
    score,
)
from hera_flows.steps.triage.classify import CATEGORIES

CASES = load()
HOLDOUT = [c for c in CASES if c.split == "holdout"]


def test_the_corpus_is_real_cited_and_covers_every_class() -> None:
    assert len(CASES) >= 120
    labels = Counter(c.label for c in CASES)
    assert set(labels) <= set(CATEGORIES) - {"unknown"}
    assert {c for c in CATEGORIES if c != "unknown" and labels[c] < 8} == set(), labels
    assert all(c.source.startswith("https://") and c.why.strip() for c in CASES)
    assert all(c.status or c.log.strip() for c in CASES)  # each case has evidence
    assert len({c.project for c in CASES}) >= 6
    assert len(HOLDOUT) >= 150 and len(HOLDOUT) / len(CASES) <= 0.42
    held_out_labels = Counter(c.label for c in HOLDOUT)
    assert {c for c in CATEGORIES if c != "unknown" and held_out_labels[c] < 6} == set(), held_out_labels
    # the held-out part is the newest collection round, whole: a new round must move HELD_OUT_ROUND along
    assert {c.round for c in HOLDOUT} == {max(c.round for c in CASES)}


# The measured level of the rule table alone (docs/patterns/failure-triage.md): the goal is 95 %, not met.
# Failure messages give counts only, never held-out cases: a developer must not tune on them.
HELD_OUT_ACCURACY = 0.765
HELD_OUT_WRONG_CLASS = 11


def test_the_held_out_part_does_not_get_worse() -> None:
    result = score(HOLDOUT)
    assert result.accuracy >= HELD_OUT_ACCURACY, f"held-out accuracy fell to {result.accuracy:.3f}"
    wrong = len(result.confident_wrong())
    assert wrong <= HELD_OUT_WRONG_CLASS, f"{wrong} held-out cases now in a wrong class (was {HELD_OUT_WRONG_CLASS})"


# The rounds the rules were tuned on (1 to TUNED_THROUGH_ROUND): each rule added for a case there stays working.
TUNED_ACCURACY = 0.955  # measured: 0.9555
TUNED_WRONG_CLASS = 21


def test_the_rounds_the_rules_were_tuned_on_do_not_get_worse() -> None:
    result = score([c for c in CASES if c.round <= TUNED_THROUGH_ROUND])
    assert result.accuracy >= TUNED_ACCURACY, f"accuracy on the tuned rounds fell to {result.accuracy:.3f}"
    wrong = len(result.confident_wrong())
    assert wrong <= TUNED_WRONG_CLASS, f"{wrong} cases of the tuned rounds now in a wrong class"


# Triage with a coding agent configured: the agent decides, given the rule table's verdict
# (hera_flows/steps/triage/verdict.py). Its replies to the exact prompts of the held-out round are recorded
# (tests/triage/agent-verdicts/), so this measures the prompt and the rules that shape it, not a live model.
# Measured on round 7 (the rules and the prompt were both frozen before it was collected): 91.3 % of all held-out
# cases (the goal, 95 %, is not met on all of them) and 98.8 % of the cases whose text shows their label
# (tests/triage/label-audit/: a reviewer's judgement made without any classifier's answer), where every class is at
# 85 % recall or more (lowest: `code-bug`, 85.7 %). Round 6, held out before it: 94.8 % and 97.9 %.
AGENT_HELD_OUT_ACCURACY = 0.913
AGENT_HELD_OUT_WRONG_CLASS = 12
AGENT_SHOWN_ACCURACY = 0.95  # the goal, met on the cases whose text shows their label (measured: 0.988)
AGENT_SHOWN_RECALL = 0.85  # the goal, met there too (measured: every class at 85.7 % or more)


def test_with_a_coding_agent_deciding_the_held_out_round_does_not_get_worse() -> None:
    result = score_with_agent(HOLDOUT, load_recordings(HELD_OUT_ROUND))
    assert not result.missing and not result.stale, (
        f"{len(result.missing)} held-out cases have no recorded agent reply and {len(result.stale)} a reply to "
        "another prompt (the rules' verdict, the template or the shipped settings changed): re-record with "
        f"`python -m benchmarks.triage_agent --record --round {HELD_OUT_ROUND} --command ...`")
    for replicate in recorded_rounds()[HELD_OUT_ROUND][1:]:  # the other reply sets the docs quote are current too
        other = score_with_agent(HOLDOUT, load_recordings(HELD_OUT_ROUND, replicate))
        assert not other.missing and not other.stale, f"replicate {replicate} needs re-recording"
    assert result.agent.accuracy >= AGENT_HELD_OUT_ACCURACY, f"with the agent: {result.agent.accuracy:.3f}"
    assert len(result.agent.confident_wrong()) <= AGENT_HELD_OUT_WRONG_CLASS
    shown = audited(result, load_audit())
    assert shown is not None and shown.audited == len(HOLDOUT), "every held-out case has a label audit"
    assert shown.agent.accuracy >= AGENT_SHOWN_ACCURACY, f"text shows the label: {shown.agent.accuracy:.3f}"
    low = {label: f"{recall:.2f}" for label in CATEGORIES if label != "unknown"
           if (recall := shown.agent.recall(label)) is not None and recall < AGENT_SHOWN_RECALL}
    assert low == {}, f"classes below {AGENT_SHOWN_RECALL:.0%} recall with the agent: {low}"


def test_a_case_becomes_the_context_the_cluster_gives() -> None:
    case = Case(id="x", label="oom", source="https://example.invalid", project="p", why="w",
                status=["pod train container main: terminated OOMKilled (exit code 137)"], log="Killed\n")
    context = case.context()
    assert context["evidence"] == case.status and context["pods"][0]["logs"]["main"]["tail"] == "Killed\n"
    assert score([case]).accuracy == 1.0


def test_the_rule_table_numbers_and_examples_in_the_docs_are_the_code_and_the_corpus() -> None:
    """docs/patterns/failure-triage.md prints RULES, the measured numbers and a worked example per class from the
    corpus: generated by `make docs`, so the docs cannot drift from the code."""
    text = DOC.read_text(encoding="utf-8")
    assert render_docs(text, CASES) == text, "run `make docs`"
