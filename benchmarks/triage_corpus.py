"""The failure classifier measured on real failure reports: `python -m benchmarks.triage_corpus` (part of `make bench`).

The corpus (tests/triage/corpus/*.jsonl) holds failure texts that ML engineers pasted into public issues and
discussions (Argo Workflows, Kubeflow, KServe, PyTorch, Ray, Hugging Face, TensorFlow, ...), each with its source
URL, trimmed but not rewritten, and labelled by root cause with a one-line reason. A case becomes the context the
classifier sees in a cluster: its ``status`` lines as the workflow's evidence, its ``log`` as the failing
container's log tail.

The corpus grows in collection rounds (a file ``<group>.jsonl`` is round 1, ``<group>-<n>.jsonl`` round n), each
gathered by people who did not read the rules. The newest round is the **holdout** part: it was collected while the
rules were frozen and the rules have not been tuned on it; every earlier round is the **tune** part. When a new round
arrives, the rules may be tuned on the previous holdout round and the new one measures them (HELD_OUT_ROUND).
Printed: size and sources, accuracy,
per-class precision and recall and the confusion matrix, for each part and for the whole corpus.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "triage" / "corpus"
SPLITS = ("tune", "holdout")
# The newest collection round: gathered blind to the rules, never tuned on (round 4 of the rules was tuned on rounds
# 1 to 3 while round 4 of the corpus was being collected by people who did not see the rules).
HELD_OUT_ROUND = 7
# The newest collection round the current rules were tuned on: when it reaches HELD_OUT_ROUND, the "held-out" numbers
# are of a round the rules have seen, and the output says so.
TUNED_THROUGH_ROUND = 6
if TUNED_THROUGH_ROUND < HELD_OUT_ROUND:
    _HOLDOUT_SAID = (f"collection round {HELD_OUT_ROUND}, gathered while the rules were frozen and never tuned on "
                     f"(the rules were tuned on rounds 1 to {TUNED_THROUGH_ROUND})")
else:
    _HOLDOUT_SAID = (f"collection round {HELD_OUT_ROUND}, gathered while the rules were frozen, but the current "
                     f"rules were since tuned on it too (rounds 1 to {TUNED_THROUGH_ROUND}): its numbers are not a "
                     f"held-out measure until the next collection round replaces it")


@dataclass(frozen=True)
class Case:
    id: str
    label: str
    source: str
    project: str
    why: str
    status: list[str]
    log: str
    round: int = 1  # the collection round: the file name's "-<n>" suffix

    @property
    def split(self) -> str:
        return "holdout" if self.round == HELD_OUT_ROUND else "tune"

    def context(self) -> dict[str, Any]:
        return {"pattern": "failure_triage", "evidence": list(self.status),
                "pods": [{"step": "train", "logs": {"main": {"tail": self.log}}}] if self.log else []}


def load(folder: Path = CORPUS) -> list[Case]:
    cases = []
    for path in sorted(folder.glob("*.jsonl")):
        suffix = re.search(r"-(\d+)$", path.stem)
        collected = int(suffix.group(1)) if suffix else 1
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            data = json.loads(line)
            try:
                cases.append(Case(**{k: data[k] for k in Case.__dataclass_fields__ if k != "round"},
                                  round=collected))
            except KeyError as exc:
                raise SystemExit(f"{path.name}:{number}: missing {exc}") from None
    ids = Counter(c.id for c in cases)
    duplicated = [i for i, n in ids.items() if n > 1]
    if duplicated:
        raise SystemExit(f"duplicate case ids: {duplicated}")
    return cases


# A reviewer's judgement per case, made without seeing any classifier's answer: does the evidence text alone (status
# and log, not the collector's reason or the thread) show the labelled root cause? A "no" is a case whose label rests
# on what the thread said (a Ray message listing three possible causes, an SSH timeout the thread calls a spot
# reclaim): no classifier reading the text can be expected to get it, and `unknown` is its honest answer.
AUDIT = Path(__file__).resolve().parent.parent / "tests" / "triage" / "label-audit"


_AUDIT_FILE = re.compile(r"^round-(\d+)(?:\.reviewer-(\d+))?\.jsonl$")


def load_audit(folder: Path = AUDIT, reviewer: int = 1) -> dict[str, bool]:
    """Case id -> whether its text shows its label, for every case the reviewer audited (reviewer 1's files are
    ``round-<n>.jsonl``; a second, independent reviewer's ``round-<n>.reviewer-2.jsonl`` measures agreement)."""
    shown: dict[str, bool] = {}
    for path in sorted(folder.glob("round-*.jsonl")):
        match = _AUDIT_FILE.match(path.name)
        if not match or int(match.group(2) or 1) != reviewer:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                item = json.loads(line)
                if item.get("shown") not in ("yes", "no"):
                    raise SystemExit(f"{path.name}:{number}: 'shown' must be yes or no")
                shown[item["id"]] = item["shown"] == "yes"
    return shown


@dataclass
class Score:
    cases: list[tuple[Case, str]]  # (case, predicted)

    @property
    def accuracy(self) -> float:
        return sum(c.label == p for c, p in self.cases) / len(self.cases) if self.cases else 0.0

    def recall(self, label: str) -> float | None:
        mine = [p for c, p in self.cases if c.label == label]
        return sum(p == label for p in mine) / len(mine) if mine else None

    def precision(self, label: str) -> float | None:
        predicted = [c for c, p in self.cases if p == label]
        return sum(c.label == label for c in predicted) / len(predicted) if predicted else None

    def confident_wrong(self) -> list[tuple[Case, str]]:
        """Cases put in a wrong class (not unknown): the mistakes that send the wrong fix."""
        return [(c, p) for c, p in self.cases if p != c.label and p != "unknown"]


def score(cases: list[Case]) -> Score:
    from hera_flows.steps.triage.classify import classify

    return Score([(case, classify(case.context()).category) for case in cases])


def _pct(value: float | None) -> str:
    return "   -" if value is None else f"{value * 100:4.0f}"


def report(name: str, result: Score) -> list[str]:
    from hera_flows.steps.triage.classify import CATEGORIES

    labels = [c for c in CATEGORIES if any(case.label == c or p == c for case, p in result.cases)]
    lines = [f"== {name}: {len(result.cases)} cases, accuracy {result.accuracy * 100:.1f} %, "
             f"{len(result.confident_wrong())} in a wrong class (not unknown)", "",
             f"{'class':<18} {'cases':>5} {'precision %':>11} {'recall %':>8}"]
    for label in labels:
        count = sum(c.label == label for c, _ in result.cases)
        lines.append(f"{label:<18} {count:>5} {_pct(result.precision(label)):>11} {_pct(result.recall(label)):>8}")
    short = [label[:5] for label in labels]
    lines += ["", "confusion (rows: label, columns: predicted)", f"{'':<18} " + " ".join(f"{s:>5}" for s in short)]
    for label in labels:
        row = Counter(p for c, p in result.cases if c.label == label)
        lines.append(f"{label:<18} " + " ".join(f"{row.get(p, 0) or '.':>5}" for p in labels))
    wrong = [f"  {c.id} ({c.label} -> {p}): {c.source}" for c, p in result.cases if p != c.label]
    if wrong:
        lines += ["", "misclassified:", *wrong]
    return lines


# --- the generated sections of docs/patterns/failure-triage.md (`make docs` rewrites them; a test compares) -----

DOC = Path(__file__).resolve().parent.parent / "docs" / "patterns" / "failure-triage.md"
SECTIONS = ("classes", "rule-table", "corpus-numbers", "worked-examples", "agent-numbers")


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def classes() -> list[str]:
    """The taxonomy as the docs print it: classify.DEFINITIONS (the coding agent's prompt lists the same) and the
    remediation each class's issue suggests."""
    from hera_flows.steps.triage.classify import DEFINITIONS, REMEDIATIONS

    lines = ["| class | the root cause | what its issue suggests |", "| --- | --- | --- |"]
    for name, text in DEFINITIONS.items():
        lines.append(f"| `{name}` | {_cell(text)} | {_cell(REMEDIATIONS[name])} |")
    return lines


def rule_table() -> list[str]:
    """The rule table as the docs print it: the code's RULES, row by row, in the order they are tried."""
    from hera_flows.steps.triage.classify import RULES, TIERS

    lines = ["| class | source | pattern (Python regex, searched) | meaning |", "| --- | --- | --- | --- |"]
    for tier in TIERS:
        for rule in (r for r in RULES if r.source in tier):
            cause = f" (cause `{rule.cause}`)" if rule.cause else ""
            lines.append(f"| `{rule.category}`{cause} | {rule.source} | `{_cell(rule.pattern)}` | {rule.means} |")
    lines.append("| `unknown` | — | nothing matched | the status evidence is reported as is |")
    return lines


def corpus_numbers(cases: list[Case]) -> list[str]:
    from hera_flows.steps.triage.classify import CATEGORIES

    projects = Counter(c.project for c in cases)
    earlier = (f"earlier rounds (1 to {HELD_OUT_ROUND - 1}; tuned on 1 to {TUNED_THROUGH_ROUND})"
               if TUNED_THROUGH_ROUND < HELD_OUT_ROUND - 1 else "tune")
    parts = {"held out": [c for c in cases if c.split == "holdout"], earlier: [c for c in cases if c.split == "tune"],
             "all": cases}
    results = {name: score(part) for name, part in parts.items()}
    lines = [f"{len(cases)} real failure reports from {len(projects)} projects "
             f"({', '.join(f'{p} {n}' for p, n in projects.most_common(6))}, …), each citing its public issue or "
             f"discussion ([tests/triage/corpus/](../../tests/triage/corpus/)). The **held-out** part is "
             f"{_HOLDOUT_SAID}.", "",
             "| part | cases | accuracy | in a wrong class (not `unknown`) |", "| --- | --- | --- | --- |"]
    for name, result in results.items():
        lines.append(f"| {name} | {len(result.cases)} | {result.accuracy * 100:.1f} % | "
                     f"{len(result.confident_wrong())} |")
    lines += ["", "| class | cases (held out) | precision, held out | recall, held out | recall, all |",
              "| --- | --- | --- | --- | --- |"]
    held, every = results["held out"], results["all"]
    for label in (c for c in CATEGORIES if c != "unknown"):
        count = sum(c.label == label for c in cases)
        count_held = sum(c.label == label for c, _ in held.cases)
        lines.append(f"| `{label}` | {count} ({count_held}) | {_pct(held.precision(label)).strip()} % | "
                     f"{_pct(held.recall(label)).strip()} % | {_pct(every.recall(label)).strip()} % |")
    return lines


def worked_examples(cases: list[Case]) -> list[str]:
    """One real case per class, as the classifier reads it: the evidence line that decided, and the source."""
    from hera_flows.steps.triage.classify import CATEGORIES, classify

    lines = ["| class | a real case | the evidence that decided |", "| --- | --- | --- |"]
    for label in (c for c in CATEGORIES if c != "unknown"):
        for case in sorted((c for c in cases if c.label == label), key=lambda c: (c.split != "tune", c.id)):
            result = classify(case.context())
            if result.category == label and result.evidence:
                evidence = result.evidence[0].split(": ", 1)[-1] if not case.status else result.evidence[0]
                if len(evidence) > 160:
                    evidence = evidence[:157] + "…"
                shown = _cell(evidence).replace("`", "'")
                lines.append(f"| `{label}` | [{case.id}]({case.source}) | `{shown}` |")
                break
        else:
            lines.append(f"| `{label}` | — | no case of the corpus is classified `{label}` |")
    return lines


def render_docs(text: str, cases: list[Case]) -> str:
    """``text`` with every generated section replaced by what the code and the corpus say now."""
    from benchmarks.triage_agent import agent_numbers

    bodies = {"classes": classes(), "rule-table": rule_table(), "corpus-numbers": corpus_numbers(cases),
              "worked-examples": worked_examples(cases), "agent-numbers": agent_numbers(cases)}
    for name in SECTIONS:
        begin, end = f"<!-- generated: {name} (make docs) -->", f"<!-- end: {name} -->"
        if begin not in text or end not in text:
            raise SystemExit(f"{DOC.name} has no section {begin} ... {end}")
        head, rest = text.split(begin, 1)
        text = head + begin + "\n" + "\n".join(bodies[name]) + "\n" + end + rest.split(end, 1)[1]
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.triage_corpus", description=__doc__.split("\n")[0])
    parser.add_argument("--split", choices=[*SPLITS, "all"], action="append",
                        help="which part to report (repeatable; default: holdout, tune and all)")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"rewrite the generated sections of {DOC.relative_to(DOC.parents[2])} and exit")
    args = parser.parse_args(argv)
    cases = load()
    if args.write_docs:
        DOC.write_text(render_docs(DOC.read_text(encoding="utf-8"), cases), encoding="utf-8")
        return 0
    projects = Counter(c.project for c in cases)
    print(f"triage corpus: {len(cases)} real failure reports from {len(projects)} projects "
          f"({', '.join(f'{p} {n}' for p, n in projects.most_common(8))}, ...); "
          f"{sum(c.split == 'holdout' for c in cases)} in the holdout part ({_HOLDOUT_SAID}), "
          f"{sum(c.split == 'tune' for c in cases)} in the earlier rounds")
    for name in args.split or ["holdout", "tune", "all"]:
        part = cases if name == "all" else [c for c in cases if c.split == name]
        print()
        print("\n".join(report(name, score(part))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
