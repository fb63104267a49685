"""The agent's `Verdict:` line read back (hera_flows/steps/triage/verdict.py): what the PR/issue and the corpus
benchmark take as the agent's class."""

from __future__ import annotations

import pytest

from hera_flows.steps.triage.verdict import AgentVerdict, read_verdict


@pytest.mark.parametrize(("text", "expected"), [
    ("Verdict: timeout (rule table: unknown)\n\nThe job hit its walltime.", AgentVerdict("timeout", "unknown")),
    ("**Verdict:** `gpu-oom` (rule table: `gpu-oom`)", AgentVerdict("gpu-oom", "gpu-oom")),
    ("# Triage\n\nVerdict: Preemption (rule-table: unknown)", AgentVerdict("preemption", "unknown")),
    ("> verdict: schema-drift", AgentVerdict("schema-drift", "")),
    ("- Verdict: oom (rule table: made-up)", AgentVerdict("oom", "")),
])
def test_the_verdict_line_is_read_with_the_markdown_agents_put_around_it(text: str, expected: AgentVerdict) -> None:
    assert read_verdict(text) == expected


@pytest.mark.parametrize("text", [
    "",
    "I raised the memory limit.",
    "Verdict: flaky (rule table: unknown)",  # not a class: no verdict rather than a guess
    "Verdict timeout",  # no colon: not the line the prompt asks for
    "one\ntwo\nthree\nfour\nfive\nVerdict: oom (rule table: oom)",  # past the opening: a quote, not the verdict
    "The log says:\n    verdict-service: oom",
])
def test_a_text_without_a_verdict_line_naming_a_known_class_has_none(text: str) -> None:
    assert read_verdict(text) is None
