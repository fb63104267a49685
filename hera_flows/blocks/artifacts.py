"""Large step results as Argo artifacts in the configured artifact repository (``artifacts`` in the configuration).

Argo passes a pod its whole template, inputs included, in one environment variable (``ARGO_TEMPLATE``), and Linux
caps one environment string at 128 KiB; output parameters also travel through the Kubernetes API. So a value
that grows with the platform (the fairness audit's per-model results, the context built from them, the cards a
refresh publishes) travels as an artifact when a repository is configured, and only small summaries stay
parameters. Nothing here changes what a step does: an input that arrives as an artifact is announced to the step
in ``HF_FILE_<NAME>`` (the path Argo downloaded it to) and ``Step.param`` reads it; an output is the same file in
``/tmp/outputs`` either way, declared as an artifact instead of a parameter.

The objects are **key-only artifacts** (only ``s3.key``; bucket, endpoint and credentials come from the
repository Argo resolves: the workflow's ``artifactRepositoryRef``, else the namespace's default) under
``<key_prefix>/<workflow name>/...``, stored as they are (``archive: none``), so a fan-in reads a whole prefix as
a folder (Argo's S3 driver downloads every object under a key that is not an object itself). See
docs/upstream-facts.md#workflows-artifacts for the upstream behaviour this relies on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hera.workflows import Parameter
from hera.workflows import models as m

from hera_flows.config import Config

INPUTS_DIR = "/tmp/inputs"
ARTIFACT_GC_SA = "hera-flows-artifact-gc"
# What Argo's artifact GC pod does with the API (`argoexec artifact delete`): it lists and watches its
# WorkflowArtifactGCTasks and patches their status with each deletion's result; Argo's own minimal Role for it
# (manifests/quick-start/base/artifactgc-role.yaml). docs/upstream-facts.md#workflows-artifacts.
ARTIFACT_GC_RULES: list[dict[str, Any]] = [
    {"apiGroups": ["argoproj.io"], "resources": ["workflowartifactgctasks"], "verbs": ["list", "watch"]},
    {"apiGroups": ["argoproj.io"], "resources": ["workflowartifactgctasks/status"], "verbs": ["patch"]},
]
DEFAULT_REPOSITORY_ANNOTATION = "workflows.argoproj.io/default-artifact-repository"


def enabled(cfg: Config) -> bool:
    return cfg.artifacts is not None


def repository_ref(cfg: Config) -> m.ArtifactRepositoryRef | None:
    """The workflow's ``artifactRepositoryRef``; None for Argo's default repository (or no artifacts at all)."""
    if cfg.artifacts is None or cfg.artifacts.repository == "default":
        return None
    repo = cfg.artifacts.repository
    return m.ArtifactRepositoryRef(config_map=repo.config_map, key=repo.key)


def artifact_gc(cfg: Config) -> m.WorkflowLevelArtifactGC | None:
    """The workflow's ``artifactGC``: a run's output objects are deleted when its Workflow is (the TTL), by a pod of
    Argo's own (restricted security context) running as ARTIFACT_GC_SA. ``forceFinalizerRemoval``: a deletion that
    fails (no delete permission, bucket unreachable) leaves the objects to the bucket's lifecycle rule instead of
    keeping the Workflow forever behind its finalizer; the Workflow gets an ``ArtifactGCError`` condition and an
    ``ArtifactGCFailed`` Event saying why."""
    if cfg.artifacts is None or cfg.artifacts.gc == "never":
        return None
    return m.WorkflowLevelArtifactGC(strategy="OnWorkflowDeletion", service_account_name=ARTIFACT_GC_SA,
                                     force_finalizer_removal=True)


def gc_rbac_documents(cfg: Config) -> list[dict[str, Any]]:
    """ARTIFACT_GC_SA and its Role, when the artifact GC is on. Its pods mount the token (Argo sets
    ``automountServiceAccountToken: true`` on them: they report through the API); nothing else runs as it."""
    from hera_flows.blocks import security

    if artifact_gc(cfg) is None:
        return []
    return [
        security.service_account_document(ARTIFACT_GC_SA, cfg.namespace),
        *security.role_documents(ARTIFACT_GC_SA, cfg.namespace, list(ARTIFACT_GC_RULES),
                                 service_account=ARTIFACT_GC_SA, service_account_namespace=cfg.namespace),
    ]


def repository_documents(cfg: Config) -> list[dict[str, Any]]:
    """The ConfigMap holding the configured S3 repository (Argo's artifact-repository format), when hera-flows
    describes the bucket; empty when the ConfigMap is the platform's own (or Argo's default is used)."""
    from hera_flows.blocks import security

    if cfg.artifacts is None or cfg.artifacts.repository == "default" or cfg.artifacts.repository.s3 is None:
        return []
    repo = cfg.artifacts.repository
    s3 = repo.s3
    assert s3 is not None
    spec: dict[str, Any] = {"endpoint": s3.endpoint, "bucket": s3.bucket}
    if s3.region:
        spec["region"] = s3.region
    if s3.insecure:
        spec["insecure"] = True
    if s3.use_sdk_creds:
        spec["useSDKCreds"] = True
    else:
        assert s3.access_key_secret is not None and s3.secret_key_secret is not None
        spec["accessKeySecret"] = {"name": s3.access_key_secret.name, "key": s3.access_key_secret.key}
        spec["secretKeySecret"] = {"name": s3.secret_key_secret.name, "key": s3.secret_key_secret.key}
    # Objects an output artifact without its own key would get (none of ours: every one has a key) stay under the
    # same prefix, so one lifecycle rule covers everything hera-flows writes.
    spec["keyFormat"] = f"{cfg.artifacts.key_prefix}/{{{{workflow.name}}}}/{{{{pod.name}}}}"
    import yaml

    return [{
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": repo.config_map, "namespace": cfg.namespace, "labels": dict(security.MANAGED_BY)},
        "data": {repo.key: yaml.safe_dump({"s3": spec}, sort_keys=False)},
    }]


def key(cfg: Config, *parts: str) -> str:
    """An object key under the run's own prefix: ``<key_prefix>/{{workflow.name}}/<parts>``."""
    assert cfg.artifacts is not None
    return "/".join([cfg.artifacts.key_prefix, "{{workflow.name}}", *parts])


def output(name: str, path: str, object_key: str, *, folder: bool = False) -> m.Artifact:
    """An output artifact stored as is at ``object_key``: a file, or (``folder``) a folder as one object per file
    under ``object_key/``. A folder's key ends with ``/`` because Argo's artifact GC deletes the objects under a
    key only then (without it, it deletes the one object named by the key, which a folder does not have); saving
    and loading are the same either way (docs/upstream-facts.md#workflows-artifacts)."""
    key = object_key.rstrip("/") + "/" if folder else object_key
    return m.Artifact(name=name, path=path, archive=m.ArchiveStrategy(none=m.NoneStrategy()), s3=m.S3Artifact(key=key))


def input_file(name: str, *, object_key: str | None = None, optional: bool = False,
               directory: str = INPUTS_DIR) -> m.Artifact:
    """An input artifact at ``<directory>/<name>``: from the task's ``from`` argument, or from ``object_key`` (a
    key-only location: an object, or a prefix whose objects arrive as a folder)."""
    return m.Artifact(name=name, path=f"{directory}/{name}", optional=optional or None,
                      archive=m.ArchiveStrategy(none=m.NoneStrategy()),
                      s3=m.S3Artifact(key=object_key) if object_key else None)


def from_task(name: str, task: str, artifact: str | None = None) -> m.Artifact:
    """A task argument: ``name`` is the artifact ``artifact`` (default: the same name) of the finished ``task``."""
    return m.Artifact(name=name, from_=f"{{{{tasks.{task}.outputs.artifacts.{artifact or name}}}}}")


def arguments(template: Any, values: Mapping[str, str]) -> list[Parameter | m.Artifact]:
    """A task's arguments for ``template``: each value goes where the template declares it — a parameter, or an
    input artifact, in which case the value must be a ``{{tasks.T.outputs.parameters.N}}`` reference and becomes
    ``from: {{tasks.T.outputs.artifacts.N}}`` (the producing template declares ``N`` as an artifact too: both
    sides are generated from the same configuration)."""
    import re

    inputs = getattr(template, "inputs", None) or []
    artifact_names = {i.name for i in inputs if isinstance(i, m.Artifact)}
    out: list[Parameter | m.Artifact] = []
    for name, value in values.items():
        if name not in artifact_names:
            out.append(Parameter(name=name, value=value))
            continue
        match = re.fullmatch(r"\{\{tasks\.([A-Za-z0-9-]+)\.outputs\.parameters\.([A-Za-z0-9_-]+)\}\}", value)
        if match is None:
            raise ValueError(f"input artifact {name!r} of {getattr(template, 'name', '?')} needs a task output, "
                             f"not {value!r}")
        out.append(from_task(name, match.group(1), match.group(2)))
    return out


def split(names: Sequence[str], large: Sequence[str], cfg: Config) -> tuple[list[str], list[str]]:
    """(parameters, artifacts) among ``names``: the ``large`` ones travel as artifacts when a repository is set."""
    if cfg.artifacts is None:
        return list(names), []
    return [n for n in names if n not in large], [n for n in names if n in large]
