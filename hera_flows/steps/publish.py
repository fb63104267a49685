"""`hera-flows step publish` (the containerSet's ``main`` container): push the agent's allowed changes as a branch.

The agent controlled ``<workspace>/repo`` completely, including ``.git``: it could have planted hooks, a
``core.fsmonitor`` command, a hostile ``core.hooksPath``, symlinks pointing out of the checkout, FIFOs that
block a reader, or files it was never meant to touch. So this step never runs git there and never follows a
link in it. It clones the base branch into a private directory, walks the agent's tree by directory file
descriptors (``O_NOFOLLOW`` all the way, so nothing can be swapped under the walk), compares every file with
the fresh clone, copies over only changed regular files whose paths match the allow-list, and commits and
pushes from the private clone with hooks disabled. Everything else is reported in ``refused``.

When the agent decides there is nothing to fix in the repository but something a person must look at (an
upstream data bug, a code bug), it writes ``<workspace>/issue.json`` (``{"title", "body", "labels"}``) instead of
editing: then nothing is pushed — whatever it edited is discarded — and the checked issue goes out as the
``issue`` output, for the review step to open or update.

The change is the agent's tree against the commit prepare cloned (``<workspace>/base-commit``), never against the
base branch as it is now: a commit that lands on the base branch while the agent works stays in the PR instead
of coming back reverted. That change is committed on the recorded base and then cherry-picked onto its target:

- the branch does not exist, or holds only hera-flows commits (author, committer and the ``Published-by:
  hera-flows`` trailer): the target is the current base branch, and the push replaces the branch with a lease on
  exactly the commit that was inspected (a push in between fails the lease; Argo retries and inspects again);
- anyone else has committed to the branch (a reviewer's fix, a merge of the base branch): their commits are kept
  and the change goes on top of them, as a fast-forward;
- the change conflicts with its target: nothing is pushed, the ``blocked`` output says why, and review comments
  on the PR and fails the run.

When the result is exactly what the branch already holds, nothing is pushed and the PR gets no new commit.

What the agent may change is the intersection of the pattern's ``--allowed-paths`` and the run's own files
(``writable_paths`` of the pattern's editor: the model's manifest and card, its params file, the failed template),
never a dotfile (``.gitattributes``, ``.github/``, ...). Every path pushed is in the ``changes`` output, which
review lists in the PR description.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, BinaryIO

from hera_flows.steps import gitrepo
from hera_flows.steps.allowlist import AllowList
from hera_flows.steps.common import StepError, TransientError, log, secret
from hera_flows.steps.contract import Flag, Step
from hera_flows.steps.workspace import BASE_COMMIT_FILE

OUTPUT_NAMES = ("branch", "changed", "commit", "files", "refused", "summary", "issue", "changes", "blocked", "update",
                "agent", "transcript")
PUBLISHER_TRAILER = "Published-by: hera-flows"
BASE_TRAILER = "Hera-Flows-Base"
MAX_FILES_OUTPUT_BYTES = 64 * 1024  # total content in the ``files`` output (Argo parameters are small)
MAX_SUMMARY_CHARS = 16 * 1024
MAX_FILE_BYTES = 10 * 1024 * 1024  # a changed file larger than this is refused, not pushed
MAX_ENTRIES = 200_000  # a checkout with more entries than this is not a GitOps repository any more
MAX_REFUSED_LISTED = 100
MAX_CHANGES_LISTED = 200  # the ``changes`` output (the PR lists 50 of them)
MAX_TITLE_CHARS = 200
MAX_ISSUE_BODY_CHARS = 48 * 1024
MAX_ISSUE_LABELS = 10
MAX_TRANSCRIPT_OUTPUT_BYTES = 128 * 1024  # the ``transcript`` output; the pod's log holds up to 512 KiB
MAX_AGENT_RECORD_BYTES = 64 * 1024
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._:/-]{0,49}$")
_CHUNK = 1024 * 1024
_MODE_SYMLINK = "120000"
_MODE_GITLINK = "160000"
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class Change:
    path: str
    kind: str  # added | modified | deleted
    content: bytes | None = None  # None for deletions


@dataclass(frozen=True)
class Refusal:
    path: str
    reason: str


@dataclass
class ChangeSet:
    changes: list[Change] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


CONTRACT = Step(
    name="publish",
    entry="hera_flows.steps.publish:main",
    summary="push the agent's allowed change as a branch (the agent pod's main container)",
    flags=(
        Flag("repo-url", "the GitOps repository"),
        Flag("base-branch", "the branch the change goes into"),
        Flag("workspace", "the shared workspace volume"),
        Flag("allowed-paths", "globs the pattern may change, e.g. inference/**,model-cards/**", form="csv"),
        Flag("author-name", "the commit author's name"),
        Flag("author-email", "the commit author's e-mail (also how publish knows its own commits)"),
        Flag("forge", "forge kind (github or gitlab): the username git sends with the token",
             choices=("github", "gitlab")),
        Flag("pattern", "whose editor names the run's own files (its settings follow as flags); left out: the "
             "allowed paths alone", optional=True),
        Flag("files-budget-bytes", "content the files output may hold (left out: 64 KiB, what a parameter carries; "
             "more when files travels as an artifact)", kind=int, optional=True),
    ),
    inputs=("branch", "title", "context"),
    outputs=OUTPUT_NAMES,
)


def main(argv: list[str]) -> int:
    from hera_flows.steps.editors import parse_with_settings, settings_of

    args, editor = parse_with_settings(CONTRACT, argv, required=False)
    writable = _run_paths(editor, settings_of(args, editor)) if editor is not None else None
    allow = AllowList.parse(",".join(args.allowed_paths))
    if not allow:
        raise StepError("--allowed-paths is empty: the agent would not be allowed to change anything")
    branch = gitrepo.check_branch_name(CONTRACT.param("branch", required=True).strip())
    if branch == args.base_branch:
        raise StepError(f"refusing to publish to the base branch {branch!r} itself")
    workspace = Path(args.workspace)
    agent = read_agent_record(workspace / "agent" / "run.json")
    run_outputs = {"agent": json.dumps(agent, sort_keys=True) if agent else "",
                   "transcript": read_transcript(workspace / "agent" / "transcript.jsonl") if agent else ""}
    if agent and agent.get("failure"):
        # nothing half-published: whatever the agent changed before it stopped stays in its checkout
        log(f"publish: the agent did not succeed ({agent['failure']}); nothing is pushed")
        return _write_nothing(args.outputs, branch, workspace, run_outputs,
                              blocked=f"the agent did not finish: {agent['failure']}")
    issue = read_issue(workspace / "issue.json")
    if issue is not None:
        log(f"publish: the agent asked for an issue ({issue['title']!r}) instead of a change; nothing is pushed")
        return _write_nothing(args.outputs, branch, workspace, run_outputs, issue=json.dumps(issue, ensure_ascii=False))
    result = publish(
        workspace / "repo",
        repo_url=args.repo_url,
        base_branch=args.base_branch,
        branch=branch,
        allow=allow,
        title=CONTRACT.param("title"),
        author=(args.author_name, args.author_email),
        token=secret("HF_FORGE_TOKEN", required=False) or None,
        forge=args.forge,
        base_commit=read_base_commit(workspace / BASE_COMMIT_FILE),
        writable=writable,
    )
    blocked = result.blocked
    if agent and not result.commit and not blocked and not change_may_be_empty(args.pattern):
        # a coding agent that changes nothing (or only what the allow-list refused) did not do its task
        refused = f"; publish refused what it did change: {', '.join(r.path for r in result.refused[:5])}" \
            if result.refused else ""
        blocked = f"the agent ({agent.get('runtime')}) changed no allowed file and asked for no issue{refused}"
    summary = read_summary(workspace / "summary.md")
    if args.outputs:
        clear_outputs(Path(args.outputs))
    CONTRACT.write(
        args.outputs,
        branch=branch,
        changed="true" if result.commit and not blocked else "false",
        commit=result.commit,
        files=files_output(result.changes, args.files_budget_bytes or MAX_FILES_OUTPUT_BYTES),
        refused=refused_output(result.refused),
        summary=summary,
        issue="",
        changes=changes_output(result.changes),
        blocked=blocked,
        update=result.update,
        **run_outputs,
    )
    return 0


def change_may_be_empty(pattern_id: str | None) -> bool:
    """Whether a run of this pattern may change nothing (its record in hera_flows/catalog.py)."""
    from hera_flows.catalog import BY_ID

    record = BY_ID.get(pattern_id or "")
    return record is not None and record.may_change_nothing


def _write_nothing(outputs: str | None, branch: str, workspace: Path, run_outputs: dict[str, str], *,
                   issue: str = "", blocked: str = "") -> int:
    """The outputs of a run that pushes nothing: an issue the agent asked for, or why nothing was published."""
    if outputs:
        clear_outputs(Path(outputs))
    CONTRACT.write(
        outputs, branch=branch, changed="false", commit="", files="[]", refused="[]",
        summary=read_summary(workspace / "summary.md"), issue=issue, changes="[]", blocked=blocked, update="none",
        **run_outputs,
    )
    return 0


AGENT_RECORD_FIELDS: dict[str, tuple[type, ...]] = {
    "runtime": (str,), "model": (str,), "turns": (int,), "duration_seconds": (int, float), "tokens": (int,),
    "cost_usd": (int, float), "denied": (list,), "denied_count": (int,), "failure": (str,), "workflow": (str,),
}


def read_agent_record(path: Path) -> dict[str, Any] | None:
    """agent-run's record of a named runtime's run (absent for the builtin editor and ``command`` agents): only
    the known fields, each of its type, strings capped, so even a planted file cannot put anything else in a PR."""
    raw = _read_capped(path, MAX_AGENT_RECORD_BYTES)
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"runtime": "agent", "failure": f"{path} is not the JSON record agent-run writes"}
    if not isinstance(data, dict):
        return {"runtime": "agent", "failure": f"{path} is not the JSON record agent-run writes"}
    record: dict[str, Any] = {}
    for name, kinds in AGENT_RECORD_FIELDS.items():
        value = data.get(name)
        if isinstance(value, kinds) and not isinstance(value, bool):
            record[name] = value[:500] if isinstance(value, str) else value
    record["denied"] = [str(d)[:300] for d in record.get("denied", [])][:20]
    return record


def read_transcript(path: Path) -> str:
    """The transcript for the ``transcript`` output: bounded again to what a parameter can carry."""
    from hera_flows.steps.agent_runtimes import bounded

    raw = _read_capped(path, 8 * 1024 * 1024)
    return bounded(raw.decode("utf-8", "replace"), MAX_TRANSCRIPT_OUTPUT_BYTES) if raw else ""


def read_base_commit(path: Path) -> str:
    """The base commit prepare recorded; the agent can rewrite the file, but only to another commit of the remote,
    and publish still pushes nothing outside the allowed paths."""
    raw = _read_capped(path, 200)
    text = (raw or b"").decode("ascii", errors="replace").strip()
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", text):
        raise StepError(f"{path} does not hold the base commit prepare recorded (missing or changed by the agent)")
    return text


def _run_paths(editor: ModuleType, settings: argparse.Namespace) -> Callable[[Path], list[str]]:
    """The run's own files, computed from the pristine base checkout and the context (never from the agent's
    workspace): the pattern editor's ``writable_paths``."""
    from hera_flows.steps.workspace import load_context

    context = load_context(CONTRACT.param("context", required=True))
    return lambda clone: editor.writable_paths(clone, context, settings)


@dataclass
class PublishResult:
    commit: str  # "" when there was nothing to publish
    changes: list[Change]
    refused: list[Refusal]
    pushed: bool
    update: str = "none"  # none | new | rebuilt | added | unchanged | blocked
    blocked: str = ""  # why nothing could be pushed (a conflict), for review to report


def publish(
    agent_repo: Path,
    *,
    repo_url: str,
    base_branch: str,
    branch: str,
    allow: AllowList,
    title: str,
    author: tuple[str, str],
    token: str | None,
    forge: str = "github",
    base_commit: str | None = None,
    writable: Callable[[Path], list[str]] | None = None,
) -> PublishResult:
    """Clone, compare with the recorded base, commit, move onto the target, push; see the module docstring."""
    private = Path(tempfile.mkdtemp(prefix="hf-publish-"))
    try:
        clone = private / "repo"
        git = _Git(clone, repo_url, token, forge)
        gitrepo.clone(repo_url, clone, base_branch, token=token, forge=forge)
        current = _rev(clone, "HEAD")
        base = base_commit or current
        if base != current:
            git.fetch_commit(base, what="the base commit the agent started from")
            gitrepo.run_git(["checkout", "--quiet", "--detach", base], cwd=clone)
        run_allow = None
        if writable is not None:
            paths = sorted(set(writable(clone)))
            run_allow = AllowList.parse([_glob_escape(p) for p in paths]) if paths else AllowList(())
        changeset = scan(agent_repo, clone, allow, run_allow)
        applied = apply(changeset, clone)
        gitrepo.run_git(["add", "--all"], cwd=clone)
        staged = set(_staged_paths(clone))
        for change in applied:
            if change.path not in staged:
                changeset.refused.append(Refusal(change.path, "ignored by the repository's .gitignore"))
        changes = [c for c in applied if c.path in staged]
        refused = sorted(changeset.refused, key=lambda r: r.path)
        for item in refused[:MAX_REFUSED_LISTED]:
            log(f"publish: refused {item.path!r}: {item.reason}")
        if not changes:
            log("publish: the agent made no allowed change; nothing is pushed")
            return PublishResult("", [], refused, pushed=False)
        for change in changes:
            log(f"publish: {change.kind} {change.path}")
        message = commit_message(title, branch, changes, refused, base)
        git.commit(author, message)
        change_commit = _rev(clone, "HEAD")

        remote = gitrepo.remote_branch_head(repo_url, branch, token=token, forge=forge)
        target, update = current, "new"
        if remote is not None:
            foreign = git.foreign_commits(branch, base_branch, remote, author[1])
            if foreign:
                target, update = remote, "added"
                log(f"publish: branch {branch} holds {len(foreign)} commit(s) hera-flows did not write "
                    f"({', '.join(c[:12] for c in foreign[:5])}); the change goes on top of them")
            else:
                update = "rebuilt"
        if target != base:
            conflict = git.move_onto(target, change_commit, author, message)
            if conflict:
                against = ("commits others pushed to the branch" if update == "added"
                           else f"changes on {base_branch} since the agent started (commit {base[:12]})")
                reason = f"the change to {', '.join(conflict)} conflicts with {against}"
                log(f"publish: {reason}; nothing is pushed")
                return PublishResult("", changes, refused, pushed=False, update="blocked", blocked=reason)
        commit = _rev(clone, "HEAD")
        pushed_changes = git.diff(target, commit, changes)
        if remote is not None and _rev(clone, f"{commit}^{{tree}}") == git.tree_of(remote):
            log(f"publish: branch {branch} already holds exactly these files (commit {remote}); nothing pushed")
            return PublishResult(remote, pushed_changes, refused, pushed=False, update="unchanged")
        git.push(branch, commit, lease=remote or "")
        return PublishResult(commit, pushed_changes, refused, pushed=True, update=update)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _glob_escape(path: str) -> str:
    """An exact path as an allow-list pattern (``*`` and ``?`` are the only wildcards; neither is in our names)."""
    if "*" in path or "?" in path:
        raise StepError(f"a run file name with a wildcard character cannot be allowed exactly: {path!r}")
    return path


class _Git:
    """The git operations publish runs in its private clone (never in the agent's checkout)."""

    def __init__(self, clone: Path, url: str, token: str | None, forge: str) -> None:
        self.clone, self.url, self.token, self.forge = clone, url, token, forge

    def remote(self, args: list[str]) -> None:
        gitrepo.run_git(args, cwd=self.clone, token=self.token, forge=self.forge)

    def fetch_commit(self, sha: str, *, what: str) -> None:
        try:
            self.remote(["fetch", "--quiet", "--no-tags", "--depth=1", "--", self.url, sha])
        except TransientError:
            raise
        except StepError as exc:
            raise StepError(f"{what} ({sha[:12]}) cannot be fetched from the remote: {exc}") from None

    def commit(self, author: tuple[str, str], message: str) -> None:
        name, email = author
        gitrepo.run_git(["-c", f"user.name={name}", "-c", f"user.email={email}", "commit", "--quiet", "--no-verify",
                         "-m", message], cwd=self.clone)

    def foreign_commits(self, branch: str, base_branch: str, remote: str, email: str) -> list[str]:
        """The commits on ``branch`` (not on the base branch) that hera-flows did not write, newest first.

        They are listed in a separate, empty repository: a ``--shallow-exclude`` fetch marks the oldest branch
        commit as shallow, and in the working clone that commit can be the very commit just made (a redelivery
        rebuilds a byte-identical one), whose parent must stay visible for the cherry-pick.
        """
        probe = self.clone.parent / "probe.git"
        gitrepo.run_git(["init", "--quiet", "--bare", str(probe)])
        fetched = gitrepo.run_git(["fetch", "--quiet", "--no-tags", f"--shallow-exclude=refs/heads/{base_branch}",
                                   "--", self.url, f"refs/heads/{branch}"], cwd=probe, token=self.token,
                                  forge=self.forge, check=False)
        if fetched.returncode != 0 and "no commits selected" in fetched.stderr:
            log_text = ""  # every commit of the branch is on the base branch already (a merged PR's branch)
        else:
            if fetched.returncode != 0:
                gitrepo.run_git(["fetch", "--quiet", "--no-tags", f"--shallow-exclude=refs/heads/{base_branch}",
                                 "--", self.url, f"refs/heads/{branch}"], cwd=probe, token=self.token,
                                forge=self.forge)  # raises with git's own message, transient or not
            if _rev(probe, "FETCH_HEAD") != remote:
                raise TransientError(f"branch {branch} changed on the remote while publishing; a retry looks again")
            log_text = gitrepo.run_git(["log", "--format=%H%x1f%ae%x1f%ce%x1f%B%x1e", remote], cwd=probe).stdout
        foreign = []
        for record in filter(None, (r.strip("\n") for r in log_text.split("\x1e"))):
            sha, author_email, committer_email, body = (record.split("\x1f", 3) + ["", "", ""])[:4]
            ours = author_email == committer_email == email and PUBLISHER_TRAILER in body.splitlines()
            if not ours:
                foreign.append(sha)
        self.remote(["fetch", "--quiet", "--no-tags", "--depth=1", "--", self.url, f"refs/heads/{branch}"])
        return foreign

    def move_onto(self, target: str, change: str, author: tuple[str, str], message: str) -> list[str]:
        """Apply commit ``change`` onto ``target`` and commit; the conflicting paths when it does not apply."""
        name, email = author
        gitrepo.run_git(["checkout", "--quiet", "--detach", target], cwd=self.clone)
        picked = gitrepo.run_git(["-c", f"user.name={name}", "-c", f"user.email={email}", "cherry-pick", "--no-commit",
                                  "--allow-empty", change], cwd=self.clone, check=False)
        if picked.returncode != 0:
            unmerged = gitrepo.run_git(["diff", "--name-only", "--diff-filter=U", "-z"], cwd=self.clone).stdout
            paths = [p for p in unmerged.split("\0") if p] or ["(the change)"]
            gitrepo.run_git(["cherry-pick", "--abort"], cwd=self.clone, check=False)
            return paths
        if not _staged_paths(self.clone):
            gitrepo.run_git(["reset", "--quiet", "--hard", target], cwd=self.clone)  # already in the target
            return []
        self.commit(author, message)
        return []

    def tree_of(self, commit: str) -> str:
        return _rev(self.clone, f"{commit}^{{tree}}")

    def diff(self, target: str, commit: str, changes: list[Change]) -> list[Change]:
        """What the pushed commit changes against its target, with the contents from the agent's change."""
        if target == commit:
            return []
        by_path = {c.path: c for c in changes}
        out = gitrepo.run_git(["diff", "--name-status", "--no-renames", "-z", target, commit], cwd=self.clone).stdout
        fields = [f for f in out.split("\0") if f]
        pushed = []
        for status, path in zip(fields[0::2], fields[1::2], strict=False):
            kind = {"A": "added", "D": "deleted"}.get(status[:1], "modified")
            content = None if kind == "deleted" else (self.clone / path).read_bytes()
            pushed.append(Change(path, kind, content) if path not in by_path or kind != by_path[path].kind
                          else by_path[path])
        return pushed

    def push(self, branch: str, commit: str, *, lease: str) -> None:
        """Push ``commit`` to ``branch`` only if the branch still is ``lease`` ("" = it must not exist)."""
        result = gitrepo.run_git(
            ["push", "--quiet", "--no-verify", f"--force-with-lease=refs/heads/{branch}:{lease}",
             "--", self.url, f"{commit}:refs/heads/{branch}"],
            cwd=self.clone, token=self.token, forge=self.forge, check=False,
        )
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()
            if self.token:
                detail = detail.replace(self.token, "***")
            if "stale info" in detail or "fetch first" in detail or "non-fast-forward" in detail:
                raise TransientError(f"branch {branch} changed on the remote while publishing; a retry looks again")
            lines = detail.splitlines()
            telling = [line for line in lines if "error" in line.lower() or "rejected" in line.lower()]
            shown = "; ".join((telling or lines)[-2:]) if lines else f"exit code {result.returncode}"
            raise (TransientError if any(m in detail for m in gitrepo.TRANSIENT_MARKERS) else StepError)(
                f"git push of branch {branch} failed: {shown}"
            )
        log(f"publish: pushed {commit} to branch {branch}")


# ---------------------------------------------------------------------------------------------------------
# Comparing the agent's tree with the private clone


def base_entries(clone: Path) -> dict[str, str]:
    """Every path in the base commit -> its git mode (100644, 100755, 120000, 160000)."""
    out = gitrepo.run_git(["ls-tree", "-r", "-z", "--full-tree", "HEAD"], cwd=clone).stdout
    entries: dict[str, str] = {}
    for record in out.split("\0"):
        if not record:
            continue
        meta, _, path = record.partition("\t")
        entries[path] = meta.split(" ")[0]
    return entries


def scan(agent_repo: Path, clone: Path, allow: AllowList, run_allow: AllowList | None = None) -> ChangeSet:
    """What the agent added, modified and deleted, split into allowed changes and refusals. ``run_allow``: the
    run's own files; a change must match both lists."""
    return _Scanner(clone, allow, run_allow).run(agent_repo)


class _Scanner:
    """One walk of the agent's tree by directory file descriptors, compared with the private clone."""

    def __init__(self, clone: Path, allow: AllowList, run_allow: AllowList | None = None) -> None:
        self.clone = clone
        self.allow = allow
        self.run_allow = run_allow
        self.base = base_entries(clone)
        self.base_dirs = {"/".join(p.split("/")[:i]) for p in self.base for i in range(1, p.count("/") + 1)}
        self.result = ChangeSet()
        self.seen: set[str] = set()
        self.blocked: set[str] = set()  # refused non-directories: base files below them are not "deleted"
        self.outside = f"outside the allowed paths ({allow})"
        self.not_ours = f"not one of this run's files ({run_allow or 'none'})"
        self.count = 0

    def problem(self, rel: str) -> str | None:
        """Why ``rel`` may not be changed, or None."""
        if any(part.startswith(".") for part in rel.split("/")):
            return "dotfiles (.gitattributes, .github/, ...) are never published"
        if not self.allow.allows(rel):
            return self.outside
        if self.run_allow is not None and not self.run_allow.allows(rel):
            return self.not_ours
        return None

    def refuse(self, path: str, reason: str, *, block: bool = True) -> None:
        self.result.refused.append(Refusal(path, reason))
        if block:
            self.blocked.add(path)

    def run(self, agent_repo: Path) -> ChangeSet:
        try:
            root_fd = os.open(agent_repo, _OPEN_DIR)
        except FileNotFoundError:
            raise StepError(f"{agent_repo} does not exist: the prepare step clones the repository there") from None
        except OSError as exc:
            raise StepError(f"{agent_repo} is not a directory the publish step can read ({exc.strerror})") from None
        stack: list[tuple[int, str]] = [(root_fd, "")]
        try:
            while stack:
                dir_fd, prefix = stack.pop()
                try:
                    with os.scandir(dir_fd) as entries:
                        listing = sorted(entries, key=lambda e: e.name)
                    for entry in listing:
                        subdir = self.entry(dir_fd, prefix, entry)
                        if subdir is not None:
                            stack.append(subdir)
                finally:
                    os.close(dir_fd)
        except BaseException:
            for fd, _ in stack:
                os.close(fd)
            raise
        self.deletions()
        return self.result

    def entry(self, dir_fd: int, prefix: str, entry: os.DirEntry[str]) -> tuple[int, str] | None:
        """Classify one entry; return (fd, prefix) of a folder to walk next."""
        self.count += 1
        if self.count > MAX_ENTRIES:
            raise StepError(f"the agent's checkout holds more than {MAX_ENTRIES} entries; refusing to publish")
        name = entry.name
        if not prefix and name == ".git":
            return None  # the agent's git metadata: never read, never trusted
        rel = prefix + name
        shown = _printable(rel)
        self.seen.add(rel)
        if name == ".git":
            self.refuse(shown, "a nested .git cannot be committed")
        elif entry.is_symlink():
            base_link = self.base.get(rel) == _MODE_SYMLINK and _clone_link(self.clone, rel)
            if base_link != os.readlink(name, dir_fd=dir_fd):  # else: the base branch's own symlink, untouched
                self.refuse(shown, "symbolic links are never published")
        elif entry.is_dir(follow_symlinks=False):
            if self.base.get(rel) == _MODE_GITLINK:
                return None  # a submodule: its empty folder in the checkout is not a change
            if rel not in self.base_dirs:
                problem = _name_problem(name) or (
                    "dotfiles (.gitattributes, .github/, ...) are never published" if name.startswith(".") else
                    None if self.allow.may_contain(rel) else f"new folder {self.outside}")
                if problem:
                    if _has_entries(dir_fd, name):
                        self.refuse(shown + "/", problem)
                    return None
            return os.open(name, _OPEN_DIR, dir_fd=dir_fd), rel + "/"
        elif entry.is_file(follow_symlinks=False):
            self.file(dir_fd, name, rel)
        else:
            self.refuse(shown, "not a regular file (device, FIFO or socket)")
        return None

    def file(self, dir_fd: int, name: str, rel: str) -> None:
        shown = _printable(rel)
        try:
            fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
        except OSError as exc:
            self.refuse(shown, f"cannot be read ({exc.strerror})")
            return
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            if not stat.S_ISREG(info.st_mode):
                self.refuse(shown, "not a regular file")
                return
            mode = self.base.get(rel)
            if mode is not None and mode.startswith("100") and _same_content(handle, info.st_size, self.clone / rel):
                return
            problem = _name_problem(rel) or self.problem(rel)
            if problem is None and info.st_size > MAX_FILE_BYTES:
                problem = f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB"
            if problem:
                self.refuse(shown, problem)
                return
            handle.seek(0)
            content = handle.read(MAX_FILE_BYTES + 1)
            if len(content) > MAX_FILE_BYTES:  # grew since fstat
                self.refuse(shown, f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB")
                return
            self.result.changes.append(Change(rel, "added" if mode is None else "modified", content))

    def deletions(self) -> None:
        for path, mode in sorted(self.base.items()):
            if path in self.seen or mode == _MODE_GITLINK or any(a in self.blocked for a in _ancestors(path)):
                continue
            problem = self.problem(path)
            if problem is None:
                self.result.changes.append(Change(path, "deleted"))
            else:
                self.refuse(path, f"deletion: {problem}", block=False)


def _same_content(handle: BinaryIO, size: int, clone_file: Path) -> bool:
    try:
        if clone_file.stat().st_size != size:
            return False
        with clone_file.open("rb") as theirs:
            handle.seek(0)
            while True:
                a, b = handle.read(_CHUNK), theirs.read(_CHUNK)
                if a != b:
                    return False
                if not a:
                    return True
    except OSError:
        return False


def _clone_link(clone: Path, rel: str) -> str | None:
    try:
        return os.readlink(clone / rel)
    except OSError:
        return None


def _has_entries(dir_fd: int, name: str) -> bool:
    fd = os.open(name, _OPEN_DIR, dir_fd=dir_fd)
    try:
        with os.scandir(fd) as entries:
            return any(True for _ in entries)
    finally:
        os.close(fd)


def _name_problem(name: str) -> str | None:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not valid UTF-8"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "the file name contains control characters"
    return None


def _printable(path: str) -> str:
    """A name fit for logs and JSON: odd characters escaped (a refused name may hold anything)."""
    return ascii(path)[1:-1] if _name_problem(path) else path


def _ancestors(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


# ---------------------------------------------------------------------------------------------------------
# Writing into the private clone, committing, pushing


def apply(changeset: ChangeSet, clone: Path) -> list[Change]:
    """Write the allowed changes into the private clone; a path the base branch blocks becomes a refusal."""
    applied: list[Change] = []
    for change in sorted(changeset.changes, key=lambda c: (c.kind != "deleted", c.path)):
        problem = _blocked_by_base(clone, change.path)
        if problem:
            changeset.refused.append(Refusal(change.path, problem))
            continue
        target = clone / change.path
        if change.kind == "deleted":
            target.unlink()
            _prune_empty_parents(clone, target.parent)
            applied.append(change)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        elif target.is_dir():
            try:
                target.rmdir()
            except OSError:
                changeset.refused.append(Refusal(change.path, "a folder of the base branch is in the way"))
                continue
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(change.content or b"")
        applied.append(change)
    return applied


def _blocked_by_base(clone: Path, rel: str) -> str | None:
    """Writing below a symlink or a file of the base branch would leave the clone: refuse instead."""
    current = clone
    for part in rel.split("/")[:-1]:
        current = current / part
        if current.is_symlink():
            return "the base branch has a symbolic link on this path"
        if current.exists() and not current.is_dir():
            return "a file of the base branch is in the way"
    return None


def _prune_empty_parents(clone: Path, directory: Path) -> None:
    while directory != clone:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _staged_paths(clone: Path) -> list[str]:
    out = gitrepo.run_git(["diff", "--cached", "--name-only", "--no-renames", "-z"], cwd=clone).stdout
    return [p for p in out.split("\0") if p]


def commit_message(title: str, branch: str, changes: list[Change], refused: list[Refusal], base: str = "") -> str:
    subject = " ".join(title.split())[:MAX_TITLE_CHARS] or f"hera-flows: update {branch}"
    lines = [subject, "", "Published by hera-flows from the agent's workspace.", ""]
    lines += [f"- {c.kind}: {c.path}" for c in changes[:50]]
    if len(changes) > 50:
        lines.append(f"- ... and {len(changes) - 50} more")
    if refused:
        lines += ["", f"{len(refused)} path(s) the agent changed were refused (not in this commit)."]
    lines += ["", PUBLISHER_TRAILER] + ([f"{BASE_TRAILER}: {base}"] if base else [])
    return "\n".join(lines) + "\n"


def _rev(clone: Path, ref: str) -> str:
    return gitrepo.run_git(["rev-parse", "--verify", "--quiet", ref], cwd=clone).stdout.strip()


# ---------------------------------------------------------------------------------------------------------
# Outputs


def changes_output(changes: list[Change]) -> str:
    """JSON list of the pushed paths for the PR description: the first ``MAX_CHANGES_LISTED``, then one
    ``{"kind": "more", "count": N}`` entry, so a refresh of thousands of cards stays a small parameter."""
    listed: list[dict[str, object]] = [{"path": c.path, "kind": c.kind} for c in changes[:MAX_CHANGES_LISTED]]
    if len(changes) > MAX_CHANGES_LISTED:
        listed.append({"kind": "more", "count": len(changes) - MAX_CHANGES_LISTED})
    return json.dumps(listed, ensure_ascii=False)


def files_output(changes: list[Change], budget: int = MAX_FILES_OUTPUT_BYTES) -> str:
    """JSON {path: content} of the changed files; binary, deleted and over-budget files map to ""."""
    files: dict[str, str] = {}
    # YAML first: the smoke step validates the manifests, so they get the budget before anything else.
    for change in sorted(changes, key=lambda c: (not c.path.endswith((".yaml", ".yml")), c.path)):
        text = _text(change.content)
        if text is not None and len(change.content or b"") <= budget:
            files[change.path] = text
            budget -= len(change.content or b"")
        else:
            if text is not None:
                log(f"publish: {change.path} is listed without content (the files output is capped)")
            files[change.path] = ""
    return json.dumps(dict(sorted(files.items())), ensure_ascii=False, sort_keys=True)


def _text(content: bytes | None) -> str | None:
    if content is None or b"\0" in content:
        return None
    try:
        return content.decode("utf-8")
    except UnicodeDecodeError:
        return None


def refused_output(refused: list[Refusal]) -> str:
    listed = [{"path": r.path, "reason": r.reason} for r in refused[:MAX_REFUSED_LISTED]]
    if len(refused) > MAX_REFUSED_LISTED:
        listed.append({"path": f"({len(refused) - MAX_REFUSED_LISTED} more)", "reason": "not listed"})
    return json.dumps(listed, ensure_ascii=False)


def _read_capped(path: Path, limit: int) -> bytes | None:
    """A regular file's first ``limit`` bytes, opened without following links; None when there is none."""
    try:
        fd = os.open(path, _OPEN_FILE)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(limit)


def read_issue(path: Path) -> dict[str, object] | None:
    """The agent's ``issue.json``, checked: a title, a markdown body (capped) and a few plain labels."""
    raw = _read_capped(path, MAX_ISSUE_BODY_CHARS * 4 + 4096)
    if raw is None:
        return None
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StepError(f"{path.name} written by the agent is not valid JSON (or is too large): {exc}") from None
    if not isinstance(data, dict):
        raise StepError(f"{path.name} must hold a JSON object with title, body and labels")
    title, body, labels = data.get("title"), data.get("body"), data.get("labels", [])
    if not isinstance(title, str) or not title.strip():
        raise StepError(f"{path.name}: 'title' must be a non-empty string")
    if not isinstance(body, str) or not body.strip():
        raise StepError(f"{path.name}: 'body' must be a non-empty markdown string")
    if not isinstance(labels, list) or not all(isinstance(x, str) and _LABEL.match(x) for x in labels):
        raise StepError(f"{path.name}: 'labels' must be a list of plain label names (letters, digits, ' ._:/-')")
    title = " ".join(title.split())[:MAX_TITLE_CHARS]
    if len(body) > MAX_ISSUE_BODY_CHARS:
        body = body[:MAX_ISSUE_BODY_CHARS].rstrip() + "\n\n(issue body truncated)\n"
    return {"title": title, "body": body, "labels": list(dict.fromkeys(labels))[:MAX_ISSUE_LABELS]}


def read_summary(path: Path) -> str:
    """The agent's summary.md, read without following links and capped."""
    raw = _read_capped(path, MAX_SUMMARY_CHARS * 4 + 1)
    if raw is None:
        return ""
    text = raw.decode("utf-8", errors="replace")
    if len(text) > MAX_SUMMARY_CHARS or len(raw) > MAX_SUMMARY_CHARS * 4:
        text = text[:MAX_SUMMARY_CHARS].rstrip() + "\n\n(summary truncated)\n"
    return text


def clear_outputs(out_dir: Path) -> None:
    """The agent could have planted the output files (or the folder) as symlinks: remove them first."""
    if out_dir.is_symlink() or (out_dir.exists() and not out_dir.is_dir()):
        out_dir.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in OUTPUT_NAMES:
        target = out_dir / name
        if target.is_symlink() or target.is_file():
            target.unlink()
        elif target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
