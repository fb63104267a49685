"""Every command in README.md, docs/**/*.md and examples/**/README.md is run here, or listed below with the reason it
cannot be.

Fenced ``sh``/``bash``/``shell``/``console`` blocks are split into commands (backslash continuations joined,
comment lines dropped; in ``console`` blocks only ``$ `` lines). ``<placeholders>`` become a dummy word. Each command
runs with bash in a scratch copy of the checkout (config, examples, docs, committed output, Makefile — never the
checkout itself, so `make generate` there cannot touch the committed manifests), with the real `.venv` and, first on
PATH, offline `kubectl` and `argo` shims (tests/support/doc_shims.py) that check what the real tools check before
they talk to a cluster. The last tests show that a wrong command in a doc fails."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow

LANGUAGES = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^( *)(`{3,}|~{3,})([\w+-]*)[^\n]*\n(.*?)^\1\2[ \t]*$", re.M | re.S)
PLACEHOLDER = re.compile(r"<([A-Za-z][^<>\n]*)>")

# Commands that cannot run here: regex (searched in the command) -> why, and what covers it instead.
NOT_RUNNABLE: dict[str, str] = {
    r"^make test\b": "the test suite (make test-slow: this test among the slow part); CI runs both",
    r"^make demo\b": "tests/test_demo.py runs the demo end to end (about a minute)",
    r"hera-flows run mlflow-promotion --event event\.json": "the user's own event and secrets files; "
    "tests/promotion/test_e2e.py::test_the_cli_runs_an_event_file runs this command on a real delivery",
    r"hera-flows run drift-remediation": "the guard counts open PRs on the configured forge (api.github.com); "
    "tests/drift/test_e2e.py runs it against the GitHub stand-in",
    r"hera-flows run fairness-audit": "needs the MLflow server and forge of config/flows.yaml; "
    "tests/fairness/test_e2e.py runs it against a real MLflow and the GitHub stand-in",
    r"hera-flows run failure-triage": "needs a cluster holding the failed workflow (KUBECONFIG); "
    "tests/triage/test_e2e.py runs it against the Kubernetes API stand-in",
    r"hera-flows run model-rollback": "needs the GitOps repository of config/flows.yaml (github.com) with a merged "
    "promotion; tests/rollback/test_e2e.py runs it against a local repository and the GitHub stand-in",
    r"^git (diff|show|revert)\b": "reads or changes the history of your checkout (none in the scratch copy)",
}

# Commands that run but are documented to fail: regex -> (exit code, text the output must contain).
EXPECTED_FAILURES: dict[str, tuple[int, str]] = {
    # The example delivery's timestamp is from its capture: the guard rejects it as stale (the README says so); a
    # rejection ends the run Succeeded with decision=rejected and the reason.
    r"hera-flows run mlflow-promotion --event examples/promotion/event\.mlflow-alias-created\.json": (
        0, "output reason: the delivery timestamp is"),
}


@dataclass(frozen=True)
class Command:
    source: str  # file:line
    language: str
    text: str


def commands_in(path: Path, root: Path = ROOT) -> list[Command]:
    text = path.read_text(encoding="utf-8")
    found: list[Command] = []
    for match in FENCE.finditer(text):
        if match.group(3) not in LANGUAGES:
            continue
        first_line = text.count("\n", 0, match.start(4)) + 1
        body = match.group(4)
        logical: list[tuple[int, str]] = []
        pending, start = "", 0
        for offset, raw in enumerate(body.splitlines()):
            line = raw.strip()
            if match.group(3) == "console":
                if not pending and not line.startswith("$ "):
                    continue
                line = line.removeprefix("$ ")
            if not pending:
                start = first_line + offset
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            line, pending = pending + line, ""
            if line and not line.startswith("#"):
                logical.append((start, line))
        for number, line in logical:
            found.append(Command(f"{path.relative_to(root)}:{number}", match.group(3), line))
    return found


def documented_commands(root: Path = ROOT) -> list[Command]:
    files = [root / "README.md", *sorted((root / "docs").rglob("*.md")),
             *sorted((root / "examples").rglob("README.md"))]
    return [c for f in files if "rendered" not in f.parts for c in commands_in(f, root)]


def _reason_not_runnable(command: str) -> str | None:
    return next((why for pattern, why in NOT_RUNNABLE.items() if re.search(pattern, command)), None)


def _scratch_checkout(base: Path) -> Path:
    """config, examples, docs, committed output and the Makefile, with the real virtualenv behind `.venv`."""
    copy = base / "checkout"
    copy.mkdir()
    for name in ("config", "examples", "docs", "generated", "eventsources", "sensors"):
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("Makefile", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    venv = copy / ".venv"
    venv.mkdir()
    real = ROOT / ".venv"
    for entry in real.iterdir():  # bin, lib, pyvenv.cfg ...: the real environment (an editable install of ROOT)
        if not entry.name.startswith(".installed"):
            (venv / entry.name).symlink_to(entry)
    for stamp in (".installed-base", ".installed-dev"):  # fresh stamps: `make` must not pip-install anything here
        (venv / stamp).touch()
    return copy


def _shims(base: Path) -> Path:
    folder = base / "shims"
    folder.mkdir()
    script = ROOT / "tests" / "support" / "doc_shims.py"
    for tool in ("kubectl", "argo"):
        shim = folder / tool
        shim.write_text(f"#!/bin/sh\nexec {sys.executable} {script} {tool} \"$@\"\n")
        shim.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("docs-commands")
    copy = _scratch_checkout(base)
    env = {**os.environ, "PATH": f"{_shims(base)}:{copy / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
           "HOME": str(base), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("VIRTUAL_ENV", None)
    return copy, env


_results: dict[str, subprocess.CompletedProcess[str]] = {}


def run_documented(command: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run one documented command (placeholders filled); identical commands run once."""
    line = PLACEHOLDER.sub("PLACEHOLDER", command)
    key = f"{cwd}\0{line}"
    if key not in _results:
        _results[key] = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=cwd, env=env, capture_output=True,
                                       text=True, timeout=300, stdin=subprocess.DEVNULL, check=False)
    return _results[key]


COMMANDS = documented_commands()


def test_commands_are_found_and_every_exception_is_used() -> None:
    assert len(COMMANDS) > 30
    texts = [c.text for c in COMMANDS]
    for pattern in [*NOT_RUNNABLE, *EXPECTED_FAILURES]:
        assert any(re.search(pattern, t) for t in texts), f"stale exception, no documented command matches {pattern!r}"
    for tool in ("kubectl apply -k generated/", "argo submit", "make generate", "hera-flows"):
        assert any(tool in t for t in texts), tool


@pytest.mark.parametrize("command", COMMANDS, ids=[f"{c.source} {c.text[:60]}" for c in COMMANDS])
def test_documented_command(command: Command, sandbox: tuple[Path, dict[str, str]]) -> None:
    reason = _reason_not_runnable(command.text)
    if reason:
        pytest.skip(f"not runnable here: {reason}")
    copy, env = sandbox
    result = run_documented(command.text, copy, env)
    output = result.stdout + result.stderr
    expected = next((v for p, v in EXPECTED_FAILURES.items() if re.search(p, command.text)), None)
    if expected:
        code, text = expected
        assert result.returncode == code and text in output, f"{command.source}: {command.text}\n{output[-3000:]}"
    else:
        assert result.returncode == 0, f"{command.source}: {command.text}\n{output[-3000:]}"


WRONG_DOC = """\
# A doc with mistakes

```sh
argo submit -n mlops-automation --from workflowtemplate/mlflow-promotion -p model=fraud-detector
argo submit -n mlops-automation --from workflowtemplate/drift-remediation -p severity=urgent
argo submit --from workflowtemplate/no-such-template
kubectl apply -k generatd/
kubectl apply -f eventsources/no-such-file.yaml
kubectl -n mlops-automation create secret generic Forge_Token --from-literal=token=x
kubectl -n mlops-automation create secret generic forge --from-literal token
kubectl get pods
.venv/bin/hera-flows generate --config config/no-such.yaml --out /tmp/x
make no-such-target
```

```console
$ .venv/bin/hera-flows frobnicate
```
"""


def test_a_wrong_command_in_a_doc_fails(sandbox: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    doc = tmp_path / "wrong.md"
    doc.write_text(WRONG_DOC)
    commands = commands_in(doc, tmp_path)
    assert len(commands) == 11
    copy, env = sandbox
    for command in commands:
        assert _reason_not_runnable(command.text) is None
        result = run_documented(command.text, copy, env)
        assert result.returncode != 0, f"{command.text} passed:\n{result.stdout}{result.stderr}"


def test_the_shims_accept_the_right_forms(sandbox: tuple[Path, dict[str, str]]) -> None:
    copy, env = sandbox
    for line in (
        "argo submit -n mlops-automation --from workflowtemplate/drift-remediation -p manual=true "
        "-p model=fraud-detector -p feature=amount -p severity=high",
        "kubectl apply -k generated/ && kubectl apply -f eventsources/ -f sensors/",
        "kubectl -n mlops-automation create secret generic forge --from-literal=token=PLACEHOLDER",
    ):
        result = run_documented(line, copy, env)
        assert result.returncode == 0, result.stderr
