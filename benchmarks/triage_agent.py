"""Failure triage with a coding agent, measured on the corpus: `python -m benchmarks.triage_agent`.

With a coding agent configured, the triage agent receives the failure's evidence and the rule table's verdict
(hera_flows/steps/triage/prompt.md) and opens its text with ``Verdict: <class> (rule table: <class>)``; that verdict
is the run's class (hera_flows/steps/triage/verdict.py), the rule table's only where the agent wrote none. This
benchmark scores that decision on the corpus of real failure reports (benchmarks/triage_corpus.py), next to the
rule table alone, for the held-out round and for every round an agent's verdicts were recorded for.

An LLM cannot run in CI, so an agent's replies are **recorded**: tests/triage/agent-verdicts/round-<n>.jsonl holds,
per case, the sha256 of the exact prompt the agent received (rendered by hera_flows/steps/prompts.py from the
packaged template, the shipped config/flows.yaml settings and the case's context with the rule table's current
verdict), the opening lines of its reply and who replied. Replaying scores the recorded replies against the labels.
A recording whose prompt no longer matches (the rules' verdict, the template or the settings changed) is stale and
reported as such, never scored: re-record.

Recording (needs the agent's credentials and network)::

    python -m benchmarks.triage_agent --record --round 5 --command "claude -p --tools Read --model claude-sonnet-4-5"

runs the command once per case, in a fresh workspace, with the prompt on stdin (files named by the prompt live in
that workspace) and keeps the opening of its summary, its issue body or else its output. An agent that cannot be
run from here can be given the prompts out of band: ``--export DIR`` writes the template's instructions once and
each case's context data section, keyed by its prompt's hash; ``--import FILE --recorded-by WHO`` reads the
replies back (JSON lines ``{"case": <key>, "reply": <text>}``) after checking every key is a current prompt.
(With only ``Read`` the CLI cannot write the summary file; its printed answer is then the reply.)

Two things say how far to trust the numbers: the **label audit** (benchmarks/triage_corpus.py ``load_audit``: does
a case's text show its label at all?), which splits the score into the cases a text classifier can get and the
others, and **replicates** (``--import --replicate 2``: another independent set of replies to the same prompts, and
a second reviewer's audit), whose agreement with the first is printed below each round.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shlex
import subprocess
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from benchmarks.triage_corpus import HELD_OUT_ROUND, Case, Score, load, load_audit, report

ROOT = Path(__file__).resolve().parent.parent
RECORDINGS = ROOT / "tests" / "triage" / "agent-verdicts"
CONFIG = ROOT / "config" / "flows.yaml"
PATTERN = "triage"
KEY_CHARS = 16  # a case's key in an export: the start of its prompt's sha256
REPLY_LINES = 8  # the opening of a reply that is kept (the verdict line is its first)


@dataclass(frozen=True)
class Recording:
    id: str
    prompt_sha256: str
    reply: str
    recorded_by: str


@cache
def _settings() -> tuple[dict[str, str], tuple[str, ...]]:
    """The triage editor's settings and allowed paths as the shipped config sets them (what `make generate` uses)."""
    from hera_flows.config import load_config
    from hera_flows.patterns.failure_triage import editor_settings

    cfg = load_config(CONFIG)
    settings = {k: str(v) for k, v in editor_settings(cfg).items()}
    return settings, tuple(cfg.patterns.failure_triage.allowed_paths)


def agent_context(case: Case) -> dict[str, Any]:
    """The context the agent sees: the case's evidence and log tail, and the rule table's verdict on them (as
    triage-classify adds it)."""
    return json.loads(_context_json(tuple(case.status), case.log))


@cache
def _context_json(status: tuple[str, ...], log: str) -> str:
    """Keyed by what the classifier reads: ``make docs`` and a replay ask for every case's context many times."""
    from hera_flows.steps.triage.classify import classify

    context = Case("", "", "", "", "", list(status), log).context()
    context["classification"] = classify(context).as_dict()
    return json.dumps(context)


def prompt_of(case: Case, files: dict[str, str] | None = None) -> str:
    """The prompt the agent receives for ``case`` (``files``: the contract's paths; default: the agent pod's)."""
    if files is None:
        return _default_prompt(tuple(case.status), case.log)
    return _render(agent_context(case), files)


@cache
def _default_prompt(status: tuple[str, ...], log: str) -> str:
    return _render(json.loads(_context_json(status, log)), None)


def _render(context: dict[str, Any], files: dict[str, str] | None) -> str:
    from hera_flows.steps.prompts import render_prompt

    settings, allowed = _settings()
    return render_prompt(PATTERN, context, allowed, settings, files=files)


def prompt_sha256(case: Case) -> str:
    """What a recording is keyed by: the prompt with the agent pod's paths, whatever workspace replied to it."""
    return hashlib.sha256(prompt_of(case).encode("utf-8")).hexdigest()


def opening(text: str) -> str:
    """The first non-empty lines of a reply: where the verdict line is (verdict.read_verdict looks nowhere else)."""
    return "\n".join([line.rstrip() for line in text.splitlines() if line.strip()][:REPLY_LINES])


# --- recordings ------------------------------------------------------------------------------------------------

_RECORDING_FILE = re.compile(r"^round-(\d+)(?:\.replicate-(\d+))?\.jsonl$")


def recordings_path(round_number: int, replicate: int = 1) -> Path:
    """A round's replies; a **replicate** (2, 3, ...) is another, independent set of replies to the same prompts,
    kept to show how much the numbers move from one set of replies to the next (the first set is the one scored)."""
    suffix = "" if replicate == 1 else f".replicate-{replicate}"
    return RECORDINGS / f"round-{round_number}{suffix}.jsonl"


def recorded_rounds() -> dict[int, list[int]]:
    """Round -> its recorded replicates (1 first)."""
    found: dict[int, list[int]] = {}
    for path in RECORDINGS.glob("round-*.jsonl"):
        match = _RECORDING_FILE.match(path.name)
        if match:
            found.setdefault(int(match.group(1)), []).append(int(match.group(2) or 1))
    return {number: sorted(reps) for number, reps in sorted(found.items())}


def load_recordings(round_number: int, replicate: int = 1) -> dict[str, Recording]:
    path = recordings_path(round_number, replicate)
    if not path.exists():
        return {}
    found: dict[str, Recording] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                recording = Recording(**json.loads(line))
            except (KeyError, TypeError, ValueError) as exc:
                raise SystemExit(f"{path.name}:{number}: not a recording ({exc})") from None
            found[recording.id] = recording
    return found


def unrecorded(cases: list[Case], recordings: dict[str, Recording]) -> list[Case]:
    """The cases without a current recording: new ones, and those whose prompt changed since their reply."""
    return [c for c in cases if c.id not in recordings or recordings[c.id].prompt_sha256 != prompt_sha256(c)]


def save_recordings(round_number: int, recordings: dict[str, Recording], replicate: int = 1) -> None:
    RECORDINGS.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(r.__dict__, sort_keys=True, ensure_ascii=False) for _, r in sorted(recordings.items())]
    recordings_path(round_number, replicate).write_text("\n".join(lines) + "\n", encoding="utf-8")


@dataclass
class AgentScore:
    """The run's class per case with an agent (its verdict; the rule table's where it wrote none), next to the rule
    table's alone, for the cases whose recording is current."""
    rules: Score
    agent: Score
    stale: list[Case]
    missing: list[Case]
    no_verdict: list[Case]
    recorded_by: Counter[str]

    def changes(self) -> Counter[str]:
        """How the agent's verdict moved each case against the rule table's: kept, fixed, broke, rewrote."""
        moved: Counter[str] = Counter()
        for (case, rule), (_, decided) in zip(self.rules.cases, self.agent.cases, strict=True):
            if decided == rule:
                moved["agreed with the rule table"] += 1
            elif decided == case.label:
                moved["overrode it, rightly" + (" (an unknown)" if rule == "unknown" else "")] += 1
            elif rule == case.label:
                moved["overrode a right verdict"] += 1
            else:
                moved["overrode a wrong verdict, still wrong"] += 1
        return moved


def score_with_agent(cases: list[Case], recordings: dict[str, Recording]) -> AgentScore:
    from hera_flows.steps.triage.verdict import read_verdict

    rules, agent = [], []
    stale, missing, no_verdict = [], [], []
    by: Counter[str] = Counter()
    for case in cases:
        recording = recordings.get(case.id)
        if recording is None:
            missing.append(case)
            continue
        if recording.prompt_sha256 != prompt_sha256(case):
            stale.append(case)
            continue
        rule = agent_context(case)["classification"]["category"]
        verdict = read_verdict(recording.reply)
        if verdict is None:
            no_verdict.append(case)
        rules.append((case, rule))
        agent.append((case, verdict.category if verdict else rule))
        by[recording.recorded_by] += 1
    return AgentScore(Score(rules), Score(agent), stale, missing, no_verdict, by)


@dataclass
class Audited:
    """The scores on the audited cases whose text shows their label, and the agent's answers on the others."""
    rules: Score
    agent: Score
    hidden: Counter[str]  # "the label" / "unknown" / "another class" -> cases whose text does not show the label

    @property
    def audited(self) -> int:
        return len(self.agent.cases) + sum(self.hidden.values())


def audited(result: AgentScore, audit: dict[str, bool]) -> Audited | None:
    pairs = [(c, rule, agent) for (c, rule), (_, agent) in zip(result.rules.cases, result.agent.cases, strict=True)
             if c.id in audit]
    if not pairs:
        return None
    shown = [(c, rule, agent) for c, rule, agent in pairs if audit[c.id]]
    hidden = Counter("the label" if a == c.label else "unknown" if a == "unknown" else "another class"
                     for c, _, a in pairs if not audit[c.id])
    return Audited(Score([(c, r) for c, r, _ in shown]), Score([(c, a) for c, _, a in shown]), hidden)


def audit_line(result: AgentScore, audit: dict[str, bool]) -> str:
    part = audited(result, audit)
    if part is None:
        return ""
    return (f"label audit: the text of {sum(part.hidden.values())} of {part.audited} cases does not show their "
            f"label (with the agent: {', '.join(f'{what} {n}' for what, n in sorted(part.hidden.items()))}); "
            f"on the {len(part.agent.cases)} whose text does: rules alone {part.rules.accuracy * 100:.1f} % "
            f"({len(part.rules.confident_wrong())} in a wrong class), with the agent {part.agent.accuracy * 100:.1f} %"
            f" ({len(part.agent.confident_wrong())} in a wrong class)")


def agent_report(name: str, result: AgentScore) -> list[str]:
    audit = audit_line(result, load_audit())
    lines = [f"== {name}: rules alone {result.rules.accuracy * 100:.1f} % "
             f"({len(result.rules.confident_wrong())} in a wrong class), with the agent "
             f"{result.agent.accuracy * 100:.1f} % ({len(result.agent.confident_wrong())} in a wrong class) on "
             f"{len(result.agent.cases)} cases with a current recording; stale {len(result.stale)}, missing "
             f"{len(result.missing)}, no verdict line {len(result.no_verdict)}",
             "   recorded by: " + "; ".join(f"{who} ({n})" for who, n in result.recorded_by.most_common()),
             "   the agent " + "; ".join(f"{what}: {n}" for what, n in sorted(result.changes().items())),
             *([f"   {audit}"] if audit else []), ""]
    return lines + report(f"{name}, with the agent", result.agent)


def agent_numbers(cases: list[Case]) -> list[str]:
    """The docs' tables (docs/patterns/failure-triage.md, `make docs`): each recorded round, rules alone against
    rules + agent, on every case and on the audited cases whose text shows their label; the held-out round's
    recall per class."""
    from hera_flows.steps.triage.classify import CATEGORIES

    rounds = list(recorded_rounds())
    if not rounds:
        return ["No agent replies are recorded yet (tests/triage/agent-verdicts/)."]
    audit = load_audit()
    lines = ["| round | cases | rules alone | rules + agent | cases whose text shows the label (audit) | rules alone "
             "on those | rules + agent on those |", "| --- | --- | --- | --- | --- | --- | --- |"]
    results: dict[int, AgentScore] = {}
    moved: dict[int, list[str]] = {}
    who: set[str] = set()
    for number in rounds:
        part = [c for c in cases if c.round == number]
        results[number] = result = score_with_agent(part, load_recordings(number))
        moved[number] = consistency(part, result, number)
        who |= set(result.recorded_by)
        shown = audited(result, audit)
        held = " (held out)" if number == HELD_OUT_ROUND else ""
        row = (f"| {number}{held} | {len(result.agent.cases)} | {_score(result.rules)} | "
               f"**{_score(result.agent)}** | ")
        row += (f"{len(shown.agent.cases)} of {shown.audited} | {_score(shown.rules)} | **{_score(shown.agent)}** |"
                if shown else "not audited | | |")
        lines.append(row)
    lines += ["", "(accuracy, and in brackets how many went to a wrong class rather than `unknown`.) Replies recorded "
              "by: " + "; ".join(sorted(who)) + "."]
    said = [f"- Round {number}: {line[0].lower()}{line[1:]}" for number, lines_said in moved.items()
            for line in lines_said]
    if said:
        lines += ["", *said]
    if HELD_OUT_ROUND in results:
        held_out = results[HELD_OUT_ROUND]
        part = audited(held_out, audit)
        lines += ["", f"Round {HELD_OUT_ROUND}, what the agent did with the rule table's verdicts: "
                  + "; ".join(f"{what} {n}" for what, n in sorted(held_out.changes().items())) + "."]
        if part:
            lines[-1] += (f" On the {sum(part.hidden.values())} cases whose text does not show their label it "
                          "answered " + ", ".join(f"{what} {n}" for what, n in sorted(part.hidden.items())) + ".")
        lines += ["", "| class | recall, rules alone | recall, rules + agent | precision, rules + agent | recall, "
                  "rules + agent, text shows the label |", "| --- | --- | --- | --- | --- |"]
        for label in (c for c in CATEGORIES if c != "unknown"):
            lines.append(f"| `{label}` | {_pct(held_out.rules.recall(label))} | {_pct(held_out.agent.recall(label))} "
                         f"| {_pct(held_out.agent.precision(label))} | "
                         f"{_pct(part.agent.recall(label)) if part else '-'} |")
    return lines


def consistency(part: list[Case], first: AgentScore, number: int) -> list[str]:
    """How much round ``number``'s numbers (``first``: its first set of replies scored on its cases ``part``) move
    with other replies and another reviewer: each further replicate of the round's replies (its accuracy, and on how
    many cases it gave the first set's class), and a second reviewer's label audit (agreement and Cohen's kappa with
    the first, and the agent's accuracy on the cases both call shown)."""
    decided = {c.id: p for c, p in first.agent.cases}
    lines = []
    for replicate in recorded_rounds().get(number, [])[1:]:
        other = score_with_agent(part, load_recordings(number, replicate))
        same = sum(decided.get(c.id) == p for c, p in other.agent.cases)
        lines.append(f"Replicate {replicate}, an independent set of replies to the same {len(other.agent.cases)} "
                     f"prompts: {_score(other.agent)} with the agent; it gave the first set's class on {same} "
                     f"({same / max(len(other.agent.cases), 1) * 100:.0f} %).")
    one, two = load_audit(), load_audit(reviewer=2)
    both = [c for c in part if c.id in one and c.id in two]
    if both:
        agree = sum(one[c.id] == two[c.id] for c in both)
        observed = agree / len(both)
        p1, p2 = (sum(a[c.id] for c in both) / len(both) for a in (one, two))
        expected = p1 * p2 + (1 - p1) * (1 - p2)
        kappa = (observed - expected) / (1 - expected) if expected < 1 else 1.0
        shown = {c.id for c in both if one[c.id] and two[c.id]}
        on_shown = Score([(c, p) for c, p in first.agent.cases if c.id in shown])
        lines.append(f"A second reviewer's label audit of the {len(both)} cases agrees with the first on {agree} "
                     f"({observed * 100:.0f} %, Cohen's kappa {kappa:.2f}); on the {len(on_shown.cases)} cases both "
                     f"call shown, with the agent: {_score(on_shown)}.")
    return lines


def _score(score: Score) -> str:
    return f"{score.accuracy * 100:.1f} % ({len(score.confident_wrong())})"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"  # 84.6 % is not 85 %: the goal is read off this table


# --- getting replies -------------------------------------------------------------------------------------------

def record(cases: list[Case], round_number: int, command: str, *, timeout: float, recorded_by: str) -> int:
    """Run ``command`` (a coding-agent CLI, prompt on stdin) once per case without a current recording."""
    argv = shlex.split(command)
    recordings = load_recordings(round_number)
    todo = unrecorded(cases, recordings)
    for number, case in enumerate(todo, 1):
        with tempfile.TemporaryDirectory(prefix="hera-flows-triage-agent-") as tmp:
            workspace = Path(tmp)
            (workspace / "repo").mkdir()
            files = {"summary_file": str(workspace / "summary.md"), "issue_file": str(workspace / "issue.json"),
                     "context_file": str(workspace / "context.json")}
            (workspace / "context.json").write_text(json.dumps(agent_context(case), indent=2), encoding="utf-8")
            try:
                done = subprocess.run(argv, input=prompt_of(case, files), cwd=workspace / "repo", text=True,
                                      capture_output=True, timeout=timeout)
            except FileNotFoundError:
                raise SystemExit(f"the agent command {argv[0]!r} was not found") from None
            except subprocess.TimeoutExpired:
                print(f"{case.id}: the agent ran past {timeout:g} s; not recorded", file=sys.stderr)
                continue
            reply = _reply(workspace, done.stdout)
        if done.returncode != 0 and not reply:
            print(f"{case.id}: the agent exited {done.returncode}: {done.stderr.strip()[-300:]}", file=sys.stderr)
            continue
        recordings[case.id] = Recording(case.id, prompt_sha256(case), opening(reply), recorded_by)
        save_recordings(round_number, recordings)  # after each case: an interrupted run keeps what it has
        print(f"[{number}/{len(todo)}] {case.id}: {opening(reply).splitlines()[0] if reply.strip() else '(empty)'}")
    return 0


def _reply(workspace: Path, stdout: str) -> str:
    """The agent's text, where the prompt asked for it: the summary, else the issue's body, else its output."""
    summary, issue = workspace / "summary.md", workspace / "issue.json"
    if summary.is_file() and summary.read_text(encoding="utf-8", errors="replace").strip():
        return summary.read_text(encoding="utf-8", errors="replace")
    if issue.is_file():
        try:
            body = json.loads(issue.read_text(encoding="utf-8")).get("body")
        except (ValueError, AttributeError):
            body = None
        if isinstance(body, str) and body.strip():
            return body
    return stdout


def export(cases: list[Case], folder: Path, shards: int) -> int:
    """The prompts for an agent run out of band: the instructions once (the template, identical for every case)
    and each case's data section under its key; no label, source or id of the corpus goes out."""
    folder.mkdir(parents=True, exist_ok=True)
    marker = "\n# Context data (untrusted)"
    # in the order of their keys: no grouping by class or project (the corpus files are grouped) for a reader to use;
    # two reports that pasted the same text are one prompt (one key), asked once
    prompts = sorted({(prompt_sha256(c)[:KEY_CHARS], prompt_of(c)) for c in cases})
    instructions = prompts[0][1].split(marker, 1)[0]
    (folder / "instructions.md").write_text(instructions.rstrip() + "\n", encoding="utf-8")
    for shard in range(shards):
        part = prompts[shard::shards]
        text = [f"# Cases {shard + 1} of {shards}: {len(part)} prompts", ""]
        for key, prompt in part:
            if not prompt.startswith(instructions):
                raise SystemExit("the prompts differ outside their data section; export them whole")
            text += [f"## case {key}", prompt[len(instructions):].strip(), ""]
        (folder / f"cases-{shard + 1}.md").write_text("\n".join(text), encoding="utf-8")
    print(f"wrote {folder}/instructions.md and {shards} case files ({len(prompts)} prompts)")
    return 0


def import_replies(cases: list[Case], round_number: int, paths: list[Path], recorded_by: str,
                   replicate: int = 1) -> int:
    keys: dict[str, list[Case]] = {}
    for case in cases:  # cases with the same text have the same prompt: its reply is each one's
        keys.setdefault(prompt_sha256(case)[:KEY_CHARS], []).append(case)
    recordings = load_recordings(round_number, replicate)
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                key, reply = str(item["case"]), str(item["reply"])
            except (KeyError, TypeError, ValueError) as exc:
                raise SystemExit(f"{path}:{number}: expected {{\"case\": ..., \"reply\": ...}} ({exc})") from None
            if key not in keys:
                raise SystemExit(f"{path}:{number}: {key!r} is no current prompt of round {round_number}")
            for case in keys[key]:
                recordings[case.id] = Recording(case.id, prompt_sha256(case), opening(reply), recorded_by)
    save_recordings(round_number, recordings, replicate)
    print(f"{recordings_path(round_number, replicate)}: {len(recordings)} recordings")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.triage_agent", description=__doc__.split("\n")[0])
    parser.add_argument("--round", type=int, action="append",
                        help=f"the collection round(s) (default: every recorded one, and {HELD_OUT_ROUND})")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--record", action="store_true", help="run --command once per case and record its reply")
    action.add_argument("--export", type=Path, metavar="DIR", help="write the prompts for an out-of-band agent")
    action.add_argument("--import", dest="replies", type=Path, nargs="+", metavar="FILE",
                        help="record the replies of an out-of-band agent")
    parser.add_argument("--command", help="the agent CLI (prompt on stdin), for --record")
    parser.add_argument("--recorded-by", help="who replied (default: the command)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per case, for --record")
    parser.add_argument("--shards", type=int, default=1, help="case files for --export")
    parser.add_argument("--replicate", type=int, default=1,
                        help="--import as replicate N (2, 3, ...): another independent set of replies to the round")
    parser.add_argument("--unrecorded", action="store_true",
                        help="--export only the cases without a current recording (new cases, changed prompts)")
    args = parser.parse_args(argv)
    cases = load()
    recorded = list(recorded_rounds())
    rounds = args.round or sorted({*recorded, HELD_OUT_ROUND})
    if (args.record or args.export or args.replies) and len(rounds) != 1:
        parser.error("--record, --export and --import take exactly one --round")
    chosen = [c for c in cases if c.round in rounds]
    if not chosen:
        parser.error(f"the corpus has no case in round(s) {rounds}")
    if args.record:
        if not args.command:
            parser.error("--record needs --command")
        return record(chosen, rounds[0], args.command, timeout=args.timeout,
                      recorded_by=args.recorded_by or args.command)
    if args.export:
        if args.unrecorded:
            chosen = unrecorded(chosen, load_recordings(rounds[0]))
            if not chosen:
                parser.error(f"every case of round {rounds[0]} has a current recording")
        return export(chosen, args.export, max(args.shards, 1))
    if args.replies:
        if not args.recorded_by:
            parser.error("--import needs --recorded-by (which agent and model replied, and how)")
        return import_replies(chosen, rounds[0], args.replies, args.recorded_by, args.replicate)
    for number in rounds:
        held = " (the held-out round)" if number == HELD_OUT_ROUND else " (the rules were tuned on it)"
        part = [c for c in cases if c.round == number]
        result = score_with_agent(part, load_recordings(number))
        print("\n".join(agent_report(f"round {number}{held}", result)))
        print("\n".join(f"   {line}" for line in consistency(part, result, number)))
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
