"""The review and report steps against the GitHub REST stand-in, and the promotion PR's title and body."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from hera_flows.cli import run_step
from hera_flows.steps import markdown, review
from hera_flows.steps.forge import github
from hera_flows.steps.promotion import pr as pr_body
from tests.support.fixtures_github import DEFAULT_REPO, GitHubStandIn
from tests.support.fixtures_workspace import make_context

BRANCH = "model-promotion/fraud-detector-v7"
KEY = "fraud-detector@v7"
SUMMARY = "# Promote `fraud-detector` version 7\n\n## Changes\n\n- `storageUri` now points at version 7.\n"
REFUSED = [{"path": "README.md", "reason": "outside the allowed paths (inference/**, model-cards/**)"}]
CHANGES = [{"path": "inference/fraud-detector.yaml", "kind": "modified"},
           {"path": "model-cards/fraud-detector.md", "kind": "modified"}]


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(github, "RETRY_BASE_DELAY", 0.01)


@pytest.fixture()
def review_env(monkeypatch: pytest.MonkeyPatch, github_api: GitHubStandIn) -> None:
    for name, value in {
        "HF_PARAM_BRANCH": BRANCH,
        "HF_PARAM_CHANGED": "true",
        "HF_PARAM_CONTEXT": json.dumps(make_context()),
        "HF_PARAM_SUMMARY": SUMMARY,
        "HF_PARAM_REFUSED": json.dumps(REFUSED),
        "HF_PARAM_DEDUPE_KEY": KEY,
        "HF_FORGE_TOKEN": github_api.token,
    }.items():
        monkeypatch.setenv(name, value)


def run_review(api: GitHubStandIn, out: Path) -> tuple[int, dict[str, str]]:
    code = run_step([
        "review", "--pattern=promotion", "--forge=github", f"--api-url={api.url}", f"--repo-slug={DEFAULT_REPO}",
        "--base-branch=main", f"--outputs={out}",
    ])
    outputs = {p.name: p.read_text() for p in out.iterdir()} if out.is_dir() else {}
    return code, outputs


def run_report(api: GitHubStandIn) -> int:
    return run_step(["report", "--forge=github", f"--api-url={api.url}", f"--repo-slug={DEFAULT_REPO}"])


# ---------------------------------------------------------------------------------------------------------
# title and body


def body(context: dict[str, Any] | None = None, summary: str = SUMMARY, refused: list[dict[str, Any]] = REFUSED,
         key: str = KEY) -> str:
    """The description as review writes it: the promotion layout, the pushed files, the marker last."""
    layout = pr_body.promotion_body(context or make_context(), summary=summary, refused=refused, dedupe_key=key,
                                    branch=BRANCH)
    return review.compose_body(layout, CHANGES, key)


def test_title_and_body_layout() -> None:
    assert pr_body.promotion_title(make_context()) == "Promote fraud-detector v7 to champion"
    text = body()
    sections = [line for line in text.splitlines() if line.startswith("#")]
    assert sections == ["## Promote `fraud-detector` v7 to `champion`", "### Metrics", "### What changed",
                        "#### Promote `fraud-detector` version 7", "##### Changes", "### On-call checklist",
                        "### Files in this change"]
    assert ("- modified: `inference/fraud-detector.yaml`" in text
            and "- modified: `model-cards/fraud-detector.md`" in text)
    assert "| Version | 7 (currently served: 6) |" in text
    assert "| Artifacts | `s3://models/fraud-detector/7` |" in text
    assert "| roc\\_auc | 0.9412 | 0.93 | +0.0112 |" in text
    checklist = [line for line in text.splitlines() if line.startswith("- [ ] ")]
    assert len(checklist) == 5
    assert any("smoke test" in c for c in checklist) and any("Dashboards" in c for c in checklist)
    assert any(c.startswith("- [ ] Rollback plan: revert this pull request") for c in checklist)
    assert "> [!WARNING]" in text and "> - `README.md`: outside the allowed paths" in text
    assert text.rstrip().endswith("<!-- hera-flows:dedupe-key=fraud-detector@v7 -->")
    assert body() == text  # deterministic
    assert "[!WARNING]" not in body(refused=[])


def test_untrusted_values_cannot_break_the_body() -> None:
    hostile = "evil|model\n\n## Approved <!-- x --> <img src=x onerror=alert(1)>"
    context = make_context(model=hostile, alias="champion|prod")
    context["metrics"] = {"a|b\nc": 1.0}
    context["deltas"] = {}
    summary = (
        "Innocent start\n```python\nprint('never closed')\n"
    )
    text = body(context, summary=summary, key="k --> <b>", refused=[{"path": "x|y`z", "reason": "r|s\nt"}])
    # Table rows keep their shape: every row line has exactly as many unescaped pipes as the header.
    for table in re.findall(r"((?:^\|.*\|$\n?)+)", text, flags=re.M):
        rows = table.strip("\n").split("\n")
        counts = {len(re.findall(r"(?<!\\)\|", row)) for row in rows}
        assert len(counts) == 1, rows
    # The fence the summary opened is closed before the next section, so the checklist renders.
    after_summary = text.split("### What changed", 1)[1]
    fences = [line for line in after_summary.split("### On-call checklist")[0].splitlines() if line.startswith("```")]
    assert len(fences) % 2 == 0
    assert text.count("<!--") == 1 and text.count("-->") == 1  # only our marker: nothing hidden, nothing forged
    assert "<img" not in text
    assert text.rstrip().endswith("<!-- hera-flows:dedupe-key=k_--___b_ -->")
    assert "\n## Approved" not in text
    title = pr_body.promotion_title(context)
    assert "\n" not in title and len(title) <= pr_body.MAX_TITLE_CHARS


def test_summary_is_capped_and_headings_demoted() -> None:
    long_summary = "# Title\n" + "\n".join(f"- line {i}" for i in range(10_000))
    contained = markdown.contain(long_summary, limit=500)
    assert len(contained) < 600 and contained.endswith("*(truncated)*")
    assert contained.startswith("#### Title")
    assert markdown.contain("```\n# not a heading\n<b>kept in code</b>\n```") == \
        "```\n# not a heading\n<b>kept in code</b>\n```"


# ---------------------------------------------------------------------------------------------------------
# review step


def test_first_run_creates_the_pr_second_run_updates_it(
    review_env: None, github_api: GitHubStandIn, tmp_path: Path
) -> None:
    code, out = run_review(github_api, tmp_path / "out1")
    assert code == 0
    assert out == {"pr-url": "https://github.com/acme/ml-gitops/pull/1", "pr-number": "1", "issue-url": "",
                   "issue-number": "", "action": "pr-opened"}
    [pr] = github_api.pulls()
    assert pr["title"] == "Promote fraud-detector v7 to champion"
    assert pr["head"] == BRANCH and pr["base"] == "main"
    assert "<!-- hera-flows:dedupe-key=fraud-detector@v7 -->" in pr["body"]
    assert github_api.labels(1) == ["hera-flows", "model-promotion"]
    assert github_api.comments(1) == []

    code, out = run_review(github_api, tmp_path / "out2")
    assert code == 0 and out["pr-number"] == "1"
    assert len(github_api.pulls()) == 1
    assert len(github_api.requests_to("POST", r"/pulls$")) == 1
    assert len(github_api.requests_to("PATCH", r"/pulls/1$")) == 1
    [comment] = github_api.comments(1)
    assert comment["body"].startswith("Updated by a redelivered or repeated event for `fraud-detector@v7`")
    assert github_api.labels(1) == ["hera-flows", "model-promotion"]


def test_nothing_changed_means_no_request(review_env: None, github_api: GitHubStandIn, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_PARAM_CHANGED", "false")
    monkeypatch.delenv("HF_FORGE_TOKEN")  # not even needed
    code, out = run_review(github_api, tmp_path / "out")
    assert code == 0 and out == {"pr-url": "", "pr-number": "", "issue-url": "", "issue-number": "", "action": "none"}
    assert github_api.requests == []
    assert "nothing to review" in capsys.readouterr().err


def test_server_errors_then_success(review_env: None, github_api: GitHubStandIn, tmp_path: Path) -> None:
    github_api.fail("POST", r"/pulls$", 500, times=2)
    code, out = run_review(github_api, tmp_path / "out")
    assert code == 0 and out["pr-number"] == "1"
    assert [r.method for r in github_api.requests_to("POST", r"/pulls$")] == ["POST"] * 3
    assert len(github_api.pulls()) == 1


def test_bad_token_is_a_clear_failure(review_env: None, github_api: GitHubStandIn, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_FORGE_TOKEN", "ghp_revoked_token_value")
    code, out = run_review(github_api, tmp_path / "out")
    assert code == 1 and out == {}
    err = capsys.readouterr().err
    assert "HTTP 401: Bad credentials" in err and "Traceback" not in err
    assert "ghp_revoked_token_value" not in err
    assert len(github_api.requests) == 1  # not retried


def test_a_pr_created_concurrently_is_updated(review_env: None, github_api: GitHubStandIn, tmp_path: Path) -> None:
    """Another run opened the PR between our lookup and our create: GitHub's 422 leads to the update path."""
    github_api.add_pull(BRANCH, title="other run")
    github_api.fail("GET", r"/pulls$", 200, body=[])  # our first lookup does not see it yet
    code, out = run_review(github_api, tmp_path / "out")
    assert code == 0 and out["pr-number"] == "1"
    assert len(github_api.pulls()) == 1
    assert github_api.pulls()[0]["title"] == "Promote fraud-detector v7 to champion"
    assert len(github_api.comments(1)) == 1


def test_review_rejects_bad_input(review_env: None, github_api: GitHubStandIn, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_PARAM_CONTEXT", "[1, 2]")
    assert run_review(github_api, tmp_path / "a")[0] == 1
    assert "must be a JSON object" in capsys.readouterr().err
    monkeypatch.setenv("HF_PARAM_CONTEXT", json.dumps({"pattern": "promotion"}))
    assert run_review(github_api, tmp_path / "b")[0] == 1
    assert "the context has no 'model'" in capsys.readouterr().err
    assert github_api.requests == []


# ---------------------------------------------------------------------------------------------------------
# report step


def test_report_comments_on_the_pr(github_api: GitHubStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    github_api.add_pull(BRANCH)
    monkeypatch.setenv("HF_FORGE_TOKEN", github_api.token)
    monkeypatch.setenv("HF_PARAM_PR_NUMBER", "1")
    monkeypatch.setenv("HF_PARAM_BODY", "## Smoke test: passed\n\n| check | result |\n|---|---|\n| latency | 12 ms |\n")
    assert run_report(github_api) == 0
    [comment] = github_api.comments(1)
    assert comment["body"].startswith("## Smoke test: passed")


def test_report_posts_a_failed_smoke_test_then_fails_the_run(
    github_api: GitHubStandIn, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    github_api.add_pull(BRANCH)
    monkeypatch.setenv("HF_FORGE_TOKEN", github_api.token)
    monkeypatch.setenv("HF_PARAM_PR_NUMBER", "1")
    monkeypatch.setenv("HF_PARAM_BODY", "## Smoke test: failed\n\nlatency 9000 ms > 2000 ms\n")
    monkeypatch.setenv("HF_PARAM_RESULT", "failed")
    assert run_report(github_api) == 1
    [comment] = github_api.comments(1)  # reviewers see the report before the workflow shows Failed
    assert comment["body"].startswith("## Smoke test: failed")
    assert "the staging smoke test failed" in capsys.readouterr().err


def test_report_without_pr_does_nothing(github_api: GitHubStandIn, monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("HF_FORGE_TOKEN", raising=False)
    monkeypatch.setenv("HF_PARAM_PR_NUMBER", "")
    monkeypatch.setenv("HF_PARAM_BODY", "report")
    assert run_report(github_api) == 0
    assert github_api.requests == []
    assert "nothing to comment on" in capsys.readouterr().err
    monkeypatch.setenv("HF_PARAM_PR_NUMBER", "1; rm -rf /")
    assert run_report(github_api) == 1
    assert github_api.requests == []


# ---------------------------------------------------------------------------------------------------------
# issue mode: the agent asked for an issue instead of a change


ISSUE = {"title": "Upstream data bug in fraud-detector/amount", "body": "Missing values in `amount`.",
         "labels": ["data-quality"]}


def test_issue_mode_opens_one_issue_per_key_and_updates_it(
    review_env: None, github_api: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_PARAM_CHANGED", "false")
    monkeypatch.setenv("HF_PARAM_ISSUE", json.dumps(ISSUE))
    code, out = run_review(github_api, tmp_path / "a")
    assert code == 0
    assert out == {"pr-url": "", "pr-number": "", "issue-url": "https://github.com/acme/ml-gitops/issues/1",
                   "issue-number": "1", "action": "issue-opened"}
    [issue] = github_api.issues()
    assert issue["title"] == ISSUE["title"]
    assert issue["body"].startswith("Missing values in `amount`.")
    assert issue["body"].rstrip().endswith(f"<!-- hera-flows:dedupe-key={KEY} -->")
    assert set(github_api.labels(1)) == {"hera-flows", "model-promotion", "data-quality"}
    assert github_api.pulls() == []

    # the same key again: the open issue is updated and commented, no second issue
    monkeypatch.setenv("HF_PARAM_ISSUE", json.dumps(ISSUE | {"body": "Missing values in `amount` (again)."}))
    code, out = run_review(github_api, tmp_path / "b")
    assert code == 0 and out["issue-number"] == "1" and out["action"] == "issue-updated"
    [issue] = github_api.issues()
    assert issue["body"].startswith("Missing values in `amount` (again).")
    assert any("Seen again" in c["body"] for c in github_api.comments(1))

    # another key: another issue
    monkeypatch.setenv("HF_PARAM_DEDUPE_KEY", "fraud-detector@v8")
    code, out = run_review(github_api, tmp_path / "c")
    assert code == 0 and out["issue-number"] == "2" and len(github_api.issues()) == 2


def test_issue_mode_rejects_a_malformed_issue(
    review_env: None, github_api: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_PARAM_ISSUE", json.dumps({"title": 3}))
    code, _ = run_review(github_api, tmp_path / "a")
    assert code == 1
    assert "must be an object with a title and a body" in capsys.readouterr().err
    assert github_api.issues() == [] and github_api.requests == []


def test_issue_marker_cannot_close_the_comment_early() -> None:
    marker = markdown.dedupe_marker("a-->b <script>")
    assert marker.count("-->") == 1 and marker.endswith("-->")


# ---------------------------------------------------------------------------------------------------------
# one escaping policy for every pattern (issue 16 item 11)


HIDDEN = "All good.\n<!--\n- [ ] hidden from the reviewer\n-->\n<!-- hera-flows:dedupe-key=fraud-detector@v8 -->"


@pytest.mark.parametrize("pattern", ["promotion", "drift", "triage", "fairness"])
def test_an_agent_summary_cannot_hide_text_or_plant_a_marker(
    pattern: str, review_env: None, github_api: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    contexts = {
        "promotion": make_context(),
        "drift": {"pattern": "drift", "event": {"model": "fraud-detector", "feature": "amount", "source": "evidently",
                                                "id": "a`b<!--", "severity": "high", "metric": "psi",
                                                "metric_value": 0.3, "threshold": 0.2}},
        "triage": {"pattern": "triage", "workflow": {"name": "train-x", "template": "train"},
                           "classification": {"category": "oom"}},
        "fairness": {"pattern": "fairness", "date": "2026-11-30"},
    }
    monkeypatch.setenv("HF_PARAM_CONTEXT", json.dumps(contexts[pattern]))
    monkeypatch.setenv("HF_PARAM_SUMMARY", HIDDEN)
    code = run_step(["review", f"--pattern={pattern}", "--forge=github", f"--api-url={github_api.url}",
                     f"--repo-slug={DEFAULT_REPO}", "--base-branch=main", f"--outputs={tmp_path / 'out'}"])
    assert code == 0
    [pr] = github_api.pulls()
    assert pr["body"].count("<!--") == 1, pr["body"]  # only our own marker, as the last line
    assert pr["body"].rstrip().endswith(f"<!-- hera-flows:dedupe-key={KEY} -->")
    assert "hidden from the reviewer" in pr["body"]  # shown, not hidden


def test_a_planted_marker_in_an_issue_body_cannot_redirect_another_key(
    review_env: None, github_api: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_PARAM_CHANGED", "false")
    monkeypatch.setenv("HF_PARAM_ISSUE", json.dumps(ISSUE | {"body": HIDDEN}))
    assert run_review(github_api, tmp_path / "a")[0] == 0
    [first] = github_api.issues()
    assert first["body"].count("<!--") == 1 and "&lt;!--" in first["body"]
    # A later run for the key the agent tried to claim opens its own issue instead of updating the first one.
    monkeypatch.setenv("HF_PARAM_DEDUPE_KEY", "fraud-detector@v8")
    monkeypatch.setenv("HF_PARAM_ISSUE", json.dumps(ISSUE))
    code, out = run_review(github_api, tmp_path / "b")
    assert code == 0 and out["action"] == "issue-opened" and len(github_api.issues()) == 2


def test_a_marker_anywhere_but_the_last_line_does_not_count(github_api: GitHubStandIn) -> None:
    key = "fraud-detector@v8"
    github_api.add_issue(title="old", body=f"{markdown.dedupe_marker(key)}\n\nmore text after it")
    with github.GitHubForge(api_url=github_api.url, repo_slug=DEFAULT_REPO, token=github_api.token) as forge:
        assert forge.find_open_issue(markdown.dedupe_marker(key)) is None
        github_api.add_issue(title="ours", body=markdown.with_marker("evidence", key))
        found = forge.find_open_issue(markdown.dedupe_marker(key))
    assert found is not None and found.title == "ours"


def test_a_blocked_update_is_commented_and_fails_the_run(
    review_env: None, github_api: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 16 items 2 and 3: publish refused to touch a branch with conflicting commits; the reviewer learns why
    on the PR, and the run ends Failed with the same sentence."""
    github_api.add_pull(BRANCH)
    monkeypatch.setenv("HF_PARAM_CHANGED", "false")
    monkeypatch.setenv("HF_PARAM_BLOCKED", "the change to inference/fraud-detector.yaml conflicts with commits "
                                           "others pushed to the branch")
    code, out = run_review(github_api, tmp_path / "out")
    assert code == 1 and out == {}
    assert "nothing was published for branch" in capsys.readouterr().err
    [comment] = github_api.comments(1)
    assert "could not update this pull request" in comment["body"] and "conflicts with commits" in comment["body"]
    assert github_api.pulls()[0]["title"] == "opened elsewhere"  # not rewritten


@pytest.mark.parametrize(("mode", "says"), [("rebuilt", "rebuilt on the current"), ("added", "commits others pushed"),
                                            ("unchanged", "no commit was added")])
def test_the_update_comment_says_what_happened_to_the_branch(
    mode: str, says: str, review_env: None, github_api: GitHubStandIn, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    github_api.add_pull(BRANCH)
    monkeypatch.setenv("HF_PARAM_UPDATE", mode)
    assert run_review(github_api, tmp_path / "out")[0] == 0
    [comment] = github_api.comments(1)
    assert says in comment["body"]


# ---------------------------------------------------------------------------------------------------------
# a coding agent's run (issue 12)

AGENT_RECORD = {"runtime": "claude-code", "model": "claude-sonnet-4-5", "turns": 6, "duration_seconds": 41.7,
                "tokens": 5120, "cost_usd": 0.0123, "denied": ["Edit .github/workflows/ci.yml"], "denied_count": 1,
                "failure": None, "workflow": "mlflow-promotion-x7k2p"}


def test_the_pr_says_which_agent_made_the_change_and_at_what_cost(
    review_env: None, github_api: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_PARAM_AGENT", json.dumps(AGENT_RECORD))
    assert run_review(github_api, tmp_path / "out")[0] == 0
    text = github_api.pulls()[0]["body"]
    section = text[text.index("### Agent run"):]
    assert ("Edited by a coding agent: runtime `claude-code`, model `claude-sonnet-4-5`, 6 turns, 42 s, 5120 tokens, "
            "$0.0123.") in section
    assert "denied 1 tool call(s)" in section and "`Edit .github/workflows/ci.yml`" in section
    assert "`transcript` output of the `agent` step of workflow `mlflow-promotion-x7k2p`" in section
    assert text.rstrip().endswith("-->")  # the dedupe marker stays the last line
    monkeypatch.setenv("HF_PARAM_AGENT", "")
    assert run_review(github_api, tmp_path / "out2")[0] == 0
    assert "### Agent run" not in github_api.pulls()[0]["body"]  # the builtin editor: no such section


def test_an_agent_that_did_not_finish_is_said_on_the_open_issue_of_its_key(
    review_env: None, github_api: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """No PR for the branch, but an issue of the same dedupe key (e.g. a data-quality issue of an earlier event):
    the comment goes there, and the run fails with the one line."""
    from hera_flows.steps.markdown import dedupe_marker

    github_api.add_issue(title="data bug in amount", body=f"evidence\n\n{dedupe_marker(KEY)}")
    monkeypatch.setenv("HF_PARAM_CHANGED", "false")
    reason = "the agent did not finish: claude-code: stopped at the turn limit (30 turns) before finishing"
    monkeypatch.setenv("HF_PARAM_BLOCKED", reason)
    code, _ = run_review(github_api, tmp_path / "out")
    assert code == 1 and f"nothing was published for branch {BRANCH}: {reason}" in capsys.readouterr().err
    [issue] = github_api.issues()
    [comment] = github_api.comments(issue["number"])
    assert "could not update this issue" in comment["body"] and "turn limit" in comment["body"]
    assert github_api.pulls() == []


TRIAGE_CONTEXT = {"pattern": "failure_triage", "workflow": {"name": "train-x", "template": "recommender-train"},
                  "classification": {"category": "unknown", "evidence": ["node train: Error (exit code 1)"]}}


@pytest.mark.parametrize("kind", ["pr", "issue"])
def test_a_triage_pr_or_issue_says_whether_the_rule_table_or_the_agent_decided(
    review_env: None, github_api: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str,
) -> None:
    monkeypatch.setenv("HF_PARAM_CONTEXT", json.dumps(TRIAGE_CONTEXT))
    if kind == "issue":
        monkeypatch.setenv("HF_PARAM_CHANGED", "false")
        monkeypatch.setenv("HF_PARAM_ISSUE", json.dumps(ISSUE))

    def text() -> str:
        made = github_api.issues() if kind == "issue" else github_api.pulls()
        return str(made[-1]["body"])

    def review_triage(out: Path) -> int:
        return run_step(["review", "--pattern=triage", "--forge=github", f"--api-url={github_api.url}",
                         f"--repo-slug={DEFAULT_REPO}", "--base-branch=main", f"--outputs={out}"])

    assert review_triage(tmp_path / "a") == 0
    assert "**Decided by the rule table** (hera-flows' documented rules, no LLM): `unknown`." in text()
    monkeypatch.setenv("HF_PARAM_AGENT", json.dumps(AGENT_RECORD))
    assert review_triage(tmp_path / "b") == 0  # the agent's text opens with no verdict line
    assert ("**Decided by the coding agent** `claude-code`, given the rule table's verdict `unknown`; the agent "
            "wrote no `Verdict: <class>` line" in text())
    assert "Decided by the rule table" not in text() and text().rstrip().endswith("-->")
    # the agent's verdict line (markdown around it is fine) is read back: it overrode the rule table's `unknown`
    opening = "**Verdict:** `timeout` (rule table: `unknown`)\n\nPBS killed the job at its walltime.\n"
    if kind == "issue":
        monkeypatch.setenv("HF_PARAM_ISSUE", json.dumps({**ISSUE, "body": opening}))
    else:
        monkeypatch.setenv("HF_PARAM_SUMMARY", opening)
    assert review_triage(tmp_path / "c") == 0
    assert ("**Decided by the coding agent** `claude-code`: `timeout`, given the rule table's verdict `unknown`: "
            "the agent overrode the rule table." in text())
    if kind == "pr":
        assert github_api.pulls()[-1]["title"].endswith("(failure triage: timeout)")
