"""`hera-flows step review`: the pull request (or issue) for the published branch.

review creates the PR for the branch, or, when an open one exists (a redelivered or repeated event rebuilt the
same branch), updates its title and description and says so in a comment; there is never a second PR for a
branch. When the agent asked for an issue instead (the ``issue`` input, see publish), it opens that issue, or
updates the open one carrying the same dedupe key in a hidden marker — one issue per key, like one PR per branch.
Nothing published and no issue means nothing to review: no forge request at all. Each pattern's PR text is its
``pr.py`` (``review_text``), its labels its record in hera_flows/catalog.py. hera_flows/steps/report.py comments a
later step's report on the PR.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Any

from hera_flows.steps.common import StepError, log, parse_json, secret
from hera_flows.steps.contract import Flag, Step
from hera_flows.steps.forge.base import Forge, ForgeError, PullRequest, open_forge
from hera_flows.steps.gitrepo import check_branch_name
from hera_flows.steps.markdown import (
    agent_section,
    contain,
    dedupe_marker,
    inline_code,
    pushed_section,
    with_marker,
)

MAX_ISSUE_BODY_CHARS = 48 * 1024
# How a step reaches the forge: the same three flags for review and report.
FORGE_FLAGS = (
    Flag("forge", "forge kind", choices=("github", "gitlab")),
    Flag("api-url", "e.g. https://api.github.com, https://ghe.example/api/v3 or https://gitlab.com/api/v4"),
    Flag("repo-slug", "owner/name of the repository (GitLab: the project path)"),
)
CONTRACT = Step(
    name="review",
    entry="hera_flows.steps.review:main",
    summary="open or update the pull request (or issue) for what publish pushed",
    flags=(Flag("pattern", "whose PR text and labels (a pattern id)"), *FORGE_FLAGS,
           Flag("base-branch", "the branch the PR goes into")),
    inputs=("branch", "changed", "context", "summary", "refused", "dedupe-key", "issue", "changes", "blocked",
            "update", "agent"),
    outputs=("pr-url", "pr-number", "issue-url", "issue-number", "action"),
)


def layout(pattern_id: str) -> tuple[tuple[str, ...], Any]:
    """(PR labels, review_text function) of a pattern."""
    labels, module, function_name = _layout_module(pattern_id)
    return labels, getattr(module, function_name)


def issue_note_of(pattern_id: str) -> Any:
    """The pattern's optional ``issue_note(context, agent, body) -> lines``, added below an issue's body (None:
    none); ``body`` is the agent's issue body, whose opening may carry its verdict."""
    return getattr(_layout_module(pattern_id)[1], "issue_note", None)


def _layout_module(pattern_id: str) -> tuple[tuple[str, ...], Any, str]:
    from hera_flows.catalog import pattern

    try:
        record = pattern(pattern_id)
    except KeyError as exc:
        raise StepError(f"no pull request layout: {exc.args[0]}") from None
    module_name, function_name = record.review_text.split(":")
    return record.pr_labels, importlib.import_module(module_name), function_name


def open_forge_of(args: argparse.Namespace) -> Forge:
    return open_forge(args.forge, api_url=args.api_url, repo_slug=args.repo_slug, token=secret("HF_FORGE_TOKEN"))


param = CONTRACT.param


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    labels, render = layout(args.pattern)

    issue = param("issue").strip()
    if issue:
        return _review_issue(args, issue)
    blocked = param("blocked").strip()
    if blocked:
        return _review_blocked(args, blocked)

    changed = param("changed").strip().lower()
    if changed != "true":
        log(f"review: publish reported changed={changed or '(empty)'}: no branch was pushed, so there is nothing to "
            "review; no pull request is opened or updated")
        CONTRACT.write(args.outputs, action="none")
        return 0

    branch = check_branch_name(param("branch", required=True).strip())
    context = _json_param("context", dict)
    refused = [r for r in _json_param("refused", list, default=[]) if isinstance(r, dict)]
    key = param("dedupe-key").strip() or branch
    agent = agent_record()
    title, body, *update = render(context, param("summary"), refused, key, branch, agent=agent)
    body = compose_body(body, _json_param("changes", list, default=[]), key, agent=agent)

    with open_forge_of(args) as forge:
        body = link_branch_files(body, lambda path: forge.blob_url(branch, path))
        pr, created = create_or_update(forge, branch=branch, base=args.base_branch, title=title, body=body, key=key,
                                       comment=update_comment(key, branch, args.base_branch, param("update").strip(),
                                                              update[0] if update else ""))
        forge.add_labels(pr.number, labels)
    log(f"review: {'opened' if created else 'updated'} pull request #{pr.number}: {pr.url}")
    CONTRACT.write(args.outputs, pr_url=pr.url, pr_number=str(pr.number),
                   action="pr-opened" if created else "pr-updated")
    return 0


def compose_body(layout_body: str, changes: list[Any], key: str, agent: dict[str, Any] | None = None) -> str:
    """Every PR description ends the same way, whatever the pattern's layout wrote: the files publish actually
    pushed (so a reviewer sees each one), the coding agent's run when one edited it, then the dedupe marker as the
    last line."""
    listed = [c for c in changes if isinstance(c, dict)]
    run = agent_section(agent) if agent else []
    return with_marker("\n".join([layout_body.rstrip(), *pushed_section(listed), *run]), key)


def link_branch_files(body: str, url: Any) -> str:
    """A relative markdown link to a file of the repository (``[text](model-cards/digests/2026-W47.md)``, e.g. a
    digest too long for the description) becomes a link to that file on the PR's branch — a forge resolves a
    relative link in a description against the PR's own page, where it leads nowhere. Absolute links and paths
    with ``..`` are left as they are."""
    import re

    def replace(match: re.Match[str]) -> str:
        target = match.group(2)
        link = url(target) if ".." not in target.split("/") else None
        return f"]({link})" if link else match.group(0)

    return re.sub(r"\]\((?!https?:)(\./)?([A-Za-z0-9._/-]+)\)", replace, body)


def agent_record() -> dict[str, Any] | None:
    """Publish's ``agent`` output (the named runtime's record), or None for the builtin editor."""
    raw = param("agent").strip()
    if not raw:
        return None
    record = parse_json(raw, "the agent parameter")
    return record if isinstance(record, dict) else None


def _review_issue(args: argparse.Namespace, raw: str) -> int:
    issue = parse_json(raw, "the issue output of the agent step")
    if not isinstance(issue.get("title"), str) or not isinstance(issue.get("body"), str):
        raise StepError("the issue output of the agent step must be an object with a title and a body")
    key = param("dedupe-key").strip() or issue["title"]
    marker = dedupe_marker(key)
    # The body is the agent's text: contained, so it can neither hide anything nor plant another key's marker.
    agent = agent_record()
    run = "\n".join(agent_section(agent)) if agent else ""
    note_of = issue_note_of(args.pattern)
    note = "\n".join(note_of(_json_param("context", dict, default={}), agent, issue["body"])) if note_of else ""
    body = with_marker(contain(issue["body"], MAX_ISSUE_BODY_CHARS) + "\n\n_hera-flows pushed no change for this "
                       "issue._" + (f"\n{note}" if note else "") + (f"\n{run}" if run else ""), key)
    labels = list(dict.fromkeys([*layout(args.pattern)[0], *issue.get("labels", [])]))
    with open_forge_of(args) as forge:
        existing = forge.find_open_issue(marker)
        action = "issue-opened" if existing is None else "issue-updated"
        if existing is None:
            found = forge.create_issue(title=issue["title"], body=body, labels=labels)
            log(f"review: opened issue #{found.number}: {found.url}")
        else:
            found = forge.update_issue(existing.number, title=issue["title"], body=body)
            forge.add_labels(found.number, labels, kind="issue")
            forge.comment(found.number, issue_update_comment(key), kind="issue")
            log(f"review: updated issue #{found.number} (same dedupe key): {found.url}")
    CONTRACT.write(args.outputs, issue_url=found.url, issue_number=str(found.number), action=action)
    return 0


def _review_blocked(args: argparse.Namespace, reason: str) -> int:
    """Nothing was published: publish refused to update the branch (someone else's commits conflict with the new
    change, or the base branch moved under the agent's change), or the coding agent failed, timed out, hit a limit
    or changed nothing. Say so on the open PR (or the open issue of the same key), then fail the run with the same
    sentence."""
    branch = check_branch_name(param("branch", required=True).strip())
    key = param("dedupe-key").strip() or branch
    with open_forge_of(args) as forge:
        existing = forge.find_open_pr(branch)
        if existing is not None:
            forge.comment(existing.number, blocked_comment(key, reason))
            log(f"review: commented on pull request #{existing.number} that nothing was published")
        else:
            issue = forge.find_open_issue(dedupe_marker(key))
            if issue is not None:
                forge.comment(issue.number, blocked_comment(key, reason, what="issue"), kind="issue")
                log(f"review: commented on issue #{issue.number} that nothing was published")
    raise StepError(f"nothing was published for branch {branch}: {reason}")


def blocked_comment(key: str, reason: str, what: str = "pull request") -> str:
    return (f"A new event for {inline_code(key)} could not update this {what}: {contain(reason, 2000)}\n\n"
            f"Nothing on the branch was changed. Resolve it (or close the {what}) and the next event for this "
            "key will update it again.")


def issue_update_comment(key: str) -> str:
    return (
        f"Seen again: a new event for {inline_code(key)} refreshed the description above with the latest "
        "evidence."
    )


def create_or_update(forge: Forge, *, branch: str, base: str, title: str, body: str, key: str,
                     comment: str | None = None) -> tuple[PullRequest, bool]:
    """The open PR for ``branch``, updated; or a new one. Returns (pull request, created)."""
    existing = forge.find_open_pr(branch)
    if existing is None:
        try:
            return forge.create_pr(branch=branch, base=base, title=title, body=body), True
        except ForgeError as exc:
            # Another run created it between our lookup and our create (or a retried create already succeeded):
            # GitHub answers 422 "A pull request already exists", GitLab 409 "Another open merge request already
            # exists for this source branch".
            if exc.status not in (409, 422) or "already exists" not in exc.detail:
                raise
            existing = forge.find_open_pr(branch)
            if existing is None:
                raise
    pr = forge.update_pr(existing.number, title=title, body=body)
    forge.comment(existing.number, comment or update_comment(key, branch, base))
    return pr, False


BRANCH_UPDATES = {
    "rebuilt": "branch {branch} was rebuilt on the current {base} with the new change; please review the latest "
               "commit.",
    "added": "the new change was added on top of the commits others pushed to branch {branch} (they are kept); "
             "please review the latest commit.",
    "unchanged": "branch {branch} already held exactly this change, so no commit was added; the description was "
                 "refreshed.",
}


def update_comment(key: str, branch: str, base: str, mode: str = "", evidence: str = "") -> str:
    """The comment on an open PR that a repeated event updated: the pattern's evidence, then what publish did to
    the branch (rebuilt, added on top of others' commits, or nothing because it already held the change)."""
    what = BRANCH_UPDATES.get(mode, "the title and description were refreshed; please review the latest commit.")
    sentence = (f"Updated by a redelivered or repeated event for {inline_code(key)}: "
                + what.format(branch=inline_code(branch), base=inline_code(base)))
    return f"{evidence.rstrip()}\n\n{sentence}" if evidence.strip() else sentence


def _json_param(name: str, kind: type, default: Any = None) -> Any:
    raw = param(name)
    if not raw.strip() and default is not None:
        return default
    return parse_json(raw, f"the {name} parameter", kind)

