"""A GitOps repository as a real bare git repository on disk (its path is the remote URL steps clone from).

The seeded layout is what a platform team's repository typically holds::

    README.md
    .github/workflows/ci.yml
    inference/fraud-detector.yaml     KServe v1beta1 InferenceService, found by annotation
    inference/churn-model.yaml        KServe v1beta1 InferenceService, found by metadata.name only
    model-cards/fraud-detector.md

``make_gitops_remote(...)`` builds one with chosen content (storage URIs, the version annotation, extra or
omitted files); ``gitops_remote`` is the default one, or takes the same keyword arguments through indirect
parametrisation: ``@pytest.mark.parametrize("gitops_remote", [{"fraud_version": None}], indirect=True)``.
Git runs as plain subprocesses with the user's and system configuration ignored.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

FRAUD_MODEL = "fraud-detector"
CHURN_MODEL = "churn-model"
DEFAULT_FRAUD_STORAGE_URI = "s3://models/fraud-detector/6/artifacts/model"
DEFAULT_CHURN_STORAGE_URI = "s3://models/churn-model/3/artifacts/model"


def _git_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_TERMINAL_PROMPT": "0",
        "LC_ALL": "C",
        "GIT_AUTHOR_NAME": "GitOps Owner",
        "GIT_AUTHOR_EMAIL": "platform@example.com",
        "GIT_COMMITTER_NAME": "GitOps Owner",
        "GIT_COMMITTER_EMAIL": "platform@example.com",
    }


def git(*args: str, cwd: Path | None = None) -> str:
    """Run plain ``git`` (no hooks, no user config); return stdout, fail loudly with stderr."""
    result = subprocess.run(  # noqa: S603 - fixed argv
        ["git", "-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false", *args],
        cwd=cwd, env=_git_env(), capture_output=True, text=True, check=False, timeout=60,
    )
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def inference_service_manifest(
    *,
    name: str,
    model: str | None,
    storage_uri: str,
    version: str | None = None,
    runtime: str = "kserve-mlserver",
    runtime_version: str = "1.6.1",
    min_replicas: int = 1,
    max_replicas: int = 3,
    cpu: str = "1",
    memory: str = "2Gi",
    namespace: str = "models",
    comment: str = "",
) -> str:
    """A KServe v1beta1 InferenceService for an MLflow model, with comments like a hand-kept file has.

    ``model`` None leaves out the ``hera-flows.io/mlflow-model`` annotation (found by metadata.name instead);
    ``version`` None leaves out ``hera-flows.io/mlflow-version``.
    """
    annotations = ["    serving.kserve.io/deploymentMode: RawDeployment"]
    if model is not None:
        annotations.append(f"    hera-flows.io/mlflow-model: {model}")
    if version is not None:
        annotations.append(f'    hera-flows.io/mlflow-version: "{version}"')
    header = f"# {comment}\n" if comment else ""
    return (
        f"{header}"
        "# Managed by the platform team. The promotion workflow opens a PR to change storageUri,\n"
        "# runtimeVersion, replicas and resources; review it like any other change.\n"
        "apiVersion: serving.kserve.io/v1beta1\n"
        "kind: InferenceService\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {namespace}\n"
        "  labels:\n"
        f"    app.kubernetes.io/name: {name}\n"
        "    app.kubernetes.io/part-of: ml-serving\n"
        "  annotations:\n"
        + "\n".join(annotations) + "\n"
        "spec:\n"
        "  predictor:\n"
        f"    minReplicas: {min_replicas}  # keep one warm replica\n"
        f"    maxReplicas: {max_replicas}\n"
        "    model:\n"
        "      modelFormat:\n"
        "        name: mlflow\n"
        f"      runtime: {runtime}\n"
        f'      runtimeVersion: "{runtime_version}"  # pinned; bump deliberately\n'
        "      protocolVersion: v2\n"
        f"      storageUri: {storage_uri}\n"
        "      resources:\n"
        "        requests:\n"
        f'          cpu: "{cpu}"\n'
        f"          memory: {memory}\n"
        "        limits:\n"
        f'          cpu: "{cpu}"\n'
        f"          memory: {memory}\n"
    )


def seldon_model_manifest(
    *,
    name: str,
    model: str | None,
    storage_uri: str,
    version: str | None = None,
    min_replicas: int = 1,
    max_replicas: int = 3,
    memory: str = "2Gi",
    namespace: str = "models",
    comment: str = "",
) -> str:
    """A Seldon Core v2 ``Model`` for an MLflow model, commented like a hand-kept file (same options as above)."""
    annotations = []
    if model is not None:
        annotations.append(f"    hera-flows.io/mlflow-model: {model}")
    if version is not None:
        annotations.append(f'    hera-flows.io/mlflow-version: "{version}"')
    header = f"# {comment}\n" if comment else ""
    return (
        f"{header}"
        "# Served by Seldon Core 2 on the shared mlserver Server; the promotion workflow changes storageUri.\n"
        "apiVersion: mlops.seldon.io/v1alpha1\n"
        "kind: Model\n"
        "metadata:\n"
        f"  name: {name}\n"
        f"  namespace: {namespace}\n"
        + ("  annotations:\n" + "\n".join(annotations) + "\n" if annotations else "")
        + "spec:\n"
        f"  storageUri: {storage_uri}\n"
        "  requirements:\n"
        "  - mlflow  # the Server must support the mlflow runtime\n"
        f"  minReplicas: {min_replicas}\n"
        f"  maxReplicas: {max_replicas}\n"
        f"  memory: {memory}\n"
    )


README = """# ml-serving (GitOps)

Argo CD syncs this repository into the `models` namespace.

- `inference/` — one KServe InferenceService per served model.
- `model-cards/` — one model card per served model.

Changes arrive as pull requests, most of them opened by the promotion workflow when a model version is
promoted in the MLflow registry.
"""

CI_WORKFLOW = """name: ci
on:
  pull_request:
    paths: ["inference/**", "model-cards/**"]
jobs:
  validate:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - name: Validate manifests
        run: kubeconform -strict -summary inference/
"""


def model_card(model: str, version: str | None) -> str:
    return (
        f"# Model card: {model}\n\n"
        "## Intended use\n\nScores card transactions for fraud in real time; a human reviews every block.\n\n"
        "## Current version\n\n"
        f"- Version: {version or 'unknown'}\n"
        "- Owner: risk-ml@example.com\n\n"
        "## Metrics\n\n| metric | value |\n|---|---|\n| accuracy | 0.91 |\n| f1 | 0.74 |\n| roc_auc | 0.95 |\n"
    )


def seed_files(
    *,
    fraud_version: str | None = "6",
    fraud_storage_uri: str = DEFAULT_FRAUD_STORAGE_URI,
    churn_storage_uri: str = DEFAULT_CHURN_STORAGE_URI,
    fraud_model: str = FRAUD_MODEL,
    inference_dir: str = "inference",
    extra_files: dict[str, str] | None = None,
    omit: tuple[str, ...] = (),
    fraud_target: str = "kserve",
) -> dict[str, str]:
    """The repository's files (path -> content); ``omit`` drops paths, ``extra_files`` adds or replaces;
    ``fraud_target="seldon"`` serves the fraud model with a Seldon Core v2 Model instead of an InferenceService."""
    fraud = inference_service_manifest(
        name="fraud-detector", model=fraud_model, version=fraud_version, storage_uri=fraud_storage_uri,
        min_replicas=2, max_replicas=6, cpu="2", memory="4Gi",
        comment="Fraud detector: real-time scoring for the payments API.",
    ) if fraud_target == "kserve" else seldon_model_manifest(
        name="fraud-detector", model=fraud_model, version=fraud_version, storage_uri=fraud_storage_uri,
        min_replicas=2, max_replicas=6, memory="4Gi", comment="Fraud detector: real-time scoring for the payments API.",
    )
    files = {
        "README.md": README,
        ".github/workflows/ci.yml": CI_WORKFLOW,
        f"{inference_dir}/fraud-detector.yaml": fraud,
        f"{inference_dir}/churn-model.yaml": inference_service_manifest(
            name="churn-model", model=None, storage_uri=churn_storage_uri,
            comment="Churn model: nightly batch scoring goes through this endpoint too.",
        ),
        "model-cards/fraud-detector.md": model_card(fraud_model, fraud_version),
    }
    for path in omit:
        files.pop(path, None)
    files.update(extra_files or {})
    return files


@dataclass
class GitopsRemote:
    """A bare repository; ``url`` is what a step gets as ``--repo-url``."""

    path: Path
    branch: str = "main"

    @property
    def url(self) -> str:
        return str(self.path)

    def git(self, *args: str) -> str:
        return git(*args, cwd=self.path)

    def read(self, path: str, ref: str | None = None) -> str:
        return self.git("show", f"{ref or self.branch}:{path}")

    def files(self, ref: str | None = None) -> list[str]:
        return self.git("ls-tree", "-r", "--name-only", ref or self.branch).splitlines()

    def branches(self) -> list[str]:
        return self.git("for-each-ref", "--format=%(refname:short)", "refs/heads").splitlines()

    def head(self, ref: str | None = None) -> str:
        return self.git("rev-parse", ref or self.branch).strip()

    def commit_files(self, files: dict[str, str | None], message: str, branch: str | None = None) -> str:
        """Commit ``files`` (content, or None to delete) on ``branch`` and push it; return the new commit."""
        branch = branch or self.branch
        work = self.path.parent / f"work-{os.urandom(4).hex()}"
        git("clone", "--quiet", "--", self.url, str(work))
        if branch in self.branches():
            git("checkout", "--quiet", branch, cwd=work)
        else:
            git("checkout", "--quiet", "-b", branch, cwd=work)
        _write(work, files)
        git("add", "--all", cwd=work)
        git("commit", "--quiet", "-m", message, cwd=work)
        git("push", "--quiet", "origin", f"HEAD:refs/heads/{branch}", cwd=work)
        return git("rev-parse", "HEAD", cwd=work).strip()


def _write(root: Path, files: dict[str, str | None]) -> None:
    for relative, content in files.items():
        target = root / relative
        if content is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")


def create_gitops_remote(root: Path, files: dict[str, str], branch: str = "main") -> GitopsRemote:
    """A bare repository at ``root/gitops.git`` whose ``branch`` holds ``files`` in one commit."""
    root.mkdir(parents=True, exist_ok=True)
    bare = root / "gitops.git"
    git("init", "--quiet", "--bare", f"--initial-branch={branch}", str(bare))
    seed = root / "seed"
    git("init", "--quiet", f"--initial-branch={branch}", str(seed))
    _write(seed, files)
    git("add", "--all", cwd=seed)
    git("commit", "--quiet", "-m", "Initial GitOps layout", cwd=seed)
    git("push", "--quiet", str(bare), f"HEAD:refs/heads/{branch}", cwd=seed)
    return GitopsRemote(bare, branch)


@pytest.fixture()
def make_gitops_remote(tmp_path: Path) -> Callable[..., GitopsRemote]:
    """Factory: ``make_gitops_remote(fraud_version=None, fraud_storage_uri=..., extra_files=..., omit=...)``."""
    counter = iter(range(1000))

    def make(*, branch: str = "main", files: dict[str, str] | None = None, **options: Any) -> GitopsRemote:
        content = files if files is not None else seed_files(**options)
        return create_gitops_remote(tmp_path / f"gitops-{next(counter)}", content, branch)

    return make


@pytest.fixture()
def gitops_remote(request: pytest.FixtureRequest, make_gitops_remote: Callable[..., GitopsRemote]) -> GitopsRemote:
    """The default GitOps repository (or the one described by an indirect parameter dict)."""
    return make_gitops_remote(**getattr(request, "param", {}))
