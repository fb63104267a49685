"""Running git safely inside the pods: no hooks, no system/global config, no prompts, tokens only from env.

Every git command a step runs goes through :func:`run_git`. The forge token never lands on disk or in argv:
git asks a credential helper that reads it from the environment of that one git process.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from hera_flows.steps.common import StepError, TransientError, retry

# Reads the username and token from the environment of this git process only; a constant, no event data in it.
_CREDENTIAL_HELPER = '!f() { echo "username=${HF_GIT_USERNAME}"; echo "password=${HF_GIT_TOKEN}"; }; f'

# The username git sends with the forge token over HTTPS, per forge kind (config ``forge.kind``, the steps'
# ``--forge``). GitHub: ``x-access-token`` (required for GitHub App installation tokens, ignored for personal
# access tokens). GitLab: ``oauth2`` (required for OAuth tokens; personal, project and group access tokens accept
# any non-empty username).
GIT_USERNAMES: dict[str, str] = {"github": "x-access-token", "gitlab": "oauth2"}

# Options that neutralise what a repository (or an agent that edited it) could make git execute.
SAFE_OPTIONS = (
    "-c", "core.hooksPath=/dev/null",
    "-c", "core.fsmonitor=false",
    "-c", "core.sshCommand=false",
    "-c", "protocol.ext.allow=never",
    "-c", "credential.helper=",
    "-c", "commit.gpgSign=false",
)


# What git (ssh, or libcurl for http) prints when the network, not the request, failed.
TRANSIENT_MARKERS = (
    "Could not resolve host",
    "Connection timed out",
    "Connection refused",
    "Failed to connect",
    "Couldn't connect to server",
    "Operation timed out",
    "The requested URL returned error: 5",
    "HTTP 5",
    "early EOF",
)


class GitError(StepError):
    pass


def git_username(forge: str) -> str:
    """The HTTPS username for the token of forge kind ``forge``; StepError for an unknown kind."""
    if forge not in GIT_USERNAMES:
        raise StepError(f"unknown forge {forge!r} (supported: {', '.join(sorted(GIT_USERNAMES))})")
    return GIT_USERNAMES[forge]


def git_env(token: str | None = None, forge: str = "github") -> dict[str, str]:
    """A minimal environment: no system or global config, no terminal prompts, a private HOME."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
        "HOME": os.environ.get("HF_GIT_HOME") or tempfile.gettempdir(),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_ASKPASS": "/bin/false",
        "LC_ALL": "C",
    }
    if token:
        env["HF_GIT_TOKEN"] = token
        env["HF_GIT_USERNAME"] = git_username(forge)
    return env


def run_git(
    args: list[str], cwd: Path | None = None, *, token: str | None = None, forge: str = "github", check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``git <SAFE_OPTIONS> <args>``; network failures become TransientError, others GitError."""
    command = ["git", *SAFE_OPTIONS]
    if token:
        command += ["-c", f"credential.helper={_CREDENTIAL_HELPER}"]
    command += args
    result = subprocess.run(
        command, cwd=cwd, env=git_env(token, forge), capture_output=True, text=True, check=False, timeout=600
    )
    if check and result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        detail = message[-1] if message else f"exit code {result.returncode}"
        if token:
            detail = detail.replace(token, "***")
        transient = any(marker in (result.stderr or "") for marker in TRANSIENT_MARKERS)
        error = TransientError if transient else GitError
        raise error(f"git {_subcommand(args)} failed: {detail}")
    return result


def _subcommand(args: list[str]) -> str:
    """The git subcommand for messages, skipping leading ``-c key=value`` pairs."""
    index = 0
    while index + 1 < len(args) and args[index] == "-c":
        index += 2
    return args[index] if index < len(args) else "(no command)"


def clone(
    url: str,
    dest: Path,
    branch: str,
    *,
    token: str | None = None,
    forge: str = "github",
    depth: int | None = 1,
    attempts: int = 3,
    deadline: float | None = None,
) -> None:
    """Clone ``branch`` of ``url`` into ``dest`` (shallow by default), retrying network failures with backoff.

    ``--no-local``: a clone of a repository on disk (the local runner, tests) copies objects instead of
    hard-linking them, so whoever edits one clone's ``.git`` (the agent) cannot touch the source's files.
    A failed attempt may leave files behind, so a retry starts from an empty ``dest``.
    """
    args = ["clone", "--quiet", "--no-local", "--no-tags", "--single-branch", "--branch", branch]
    if depth:
        args += ["--depth", str(depth)]
    tries = iter(range(attempts))

    def once() -> None:
        if next(tries):
            shutil.rmtree(dest, ignore_errors=True)
        # "--" ends the options: a URL or path can never be read as a flag.
        run_git([*args, "--", url, str(dest)], token=token, forge=forge)

    retry(once, what=f"git clone ({branch})", attempts=attempts, base_delay=1.0, deadline=deadline,
          retry_on=(TransientError,))


def remote_branch_exists(url: str, branch: str, *, token: str | None = None, forge: str = "github") -> bool:
    result = run_git(["ls-remote", "--heads", "--", url, f"refs/heads/{branch}"], token=token, forge=forge)
    return bool(result.stdout.strip())


def remote_branch_head(url: str, branch: str, *, token: str | None = None, forge: str = "github") -> str | None:
    """The commit ``refs/heads/<branch>`` points to on the remote, or None when the branch does not exist."""
    result = run_git(["ls-remote", "--heads", "--", url, f"refs/heads/{branch}"], token=token, forge=forge)
    for line in result.stdout.splitlines():
        sha, _, ref = line.partition("\t")
        if ref == f"refs/heads/{branch}":
            return sha
    return None


def check_branch_name(branch: str) -> str:
    """Return ``branch`` if git accepts it as a branch name (``git check-ref-format --branch``), else StepError."""
    if not branch or branch.startswith("-") or branch.startswith("refs/"):
        raise StepError(f"{branch!r} is not a usable branch name")
    result = run_git(["check-ref-format", "--branch", branch], check=False)
    if result.returncode != 0 or result.stdout.strip() != branch:
        raise StepError(f"{branch!r} is not a valid git branch name")
    return branch
