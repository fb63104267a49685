"""The coding agent's triage verdict, read back from its text.

The triage prompt (hera_flows/steps/triage/prompt.md) asks the agent to open its summary, or its issue's body,
with one line ``Verdict: <class> (rule table: <its class>)``. Reading that line back lets the PR or issue say in
hera-flows' own words which class the agent decided and whether it agrees with the rule table, and lets the
corpus benchmark score an agent the same way (benchmarks/triage_agent.py). An agent's text is free-form: markdown
around the line (``**Verdict:** `timeout` ...``) is accepted; a line naming no known class is no verdict.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hera_flows.steps.triage.classify import CATEGORIES

# The verdict is the text's opening: only the first few non-empty lines are looked at, so a class named further
# down (in the diagnosis, in a quoted log line) is never taken for it.
_OPENING_LINES = 5
_VERDICT = re.compile(r"^[\s>#*_`-]*verdict[\s*_`]*:[\s*_`]*([a-z][a-z-]*)", re.IGNORECASE)
_RULE_TABLE = re.compile(r"rule[\s-]*table[\s*_`]*:?[\s*_`]*([a-z][a-z-]*)", re.IGNORECASE)


@dataclass(frozen=True)
class AgentVerdict:
    category: str  # one of classify.CATEGORIES
    rule_table: str  # the rule table's class as the agent quoted it ("" when it did not)


def read_verdict(text: str) -> AgentVerdict | None:
    """The verdict line among the opening lines of ``text``, or None when there is none naming a known class."""
    opening = [line for line in text.splitlines() if line.strip()][:_OPENING_LINES]
    for line in opening:
        found = _VERDICT.match(line)
        if not found:
            continue
        category = found.group(1).lower()
        if category not in CATEGORIES:
            return None
        quoted = _RULE_TABLE.search(line[found.end():])
        rule_table = quoted.group(1).lower() if quoted and quoted.group(1).lower() in CATEGORIES else ""
        return AgentVerdict(category, rule_table)
    return None
