"""The agent block: one pod, three containers sharing a workspace volume — prepare -> agent -> publish.

- ``prepare`` clones the GitOps repository and writes the agent contract files (repo, prompt, context).
- ``agent`` edits files. It holds no forge token and no Kubernetes token: the builtin editor needs none, a named
  runtime (claude-code, codex: `hera-flows step agent-run` in its image) gets only its API key from one Secret key,
  and a ``command`` agent only its own credentials Secret.
- ``main`` publishes: it never runs git inside the agent's checkout; it copies the allowed changes into its own
  clone and pushes the branch. Argo reads a containerSet's outputs only from a container named ``main``.
Each container has a private /tmp so nothing the agent leaves there reaches the publish step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from hera.workflows import ContainerNode, ContainerSet, EmptyDirVolume, Env, Parameter
from hera.workflows import models as m

from hera_flows.blocks import artifacts, security
from hera_flows.blocks.step import SecretEnv, file_env, param_env, resources, retry_strategy
from hera_flows.catalog import Pattern
from hera_flows.config import Config, RepositoryConfig
from hera_flows.steps.agent_run import API_KEY_ENV
from hera_flows.steps.contract import render_flags
from hera_flows.steps.prompts import PROMPT_TEMPLATE_ENV, check_template
from hera_flows.steps.publish import CONTRACT as PUBLISH_CONTRACT

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is Python 3.11+

AGENT_TASK = "agent"
WORKSPACE = "/workspace"
OUT_DIR = f"{WORKSPACE}/out"
PUBLISH_OUTPUTS = list(PUBLISH_CONTRACT.outputs)


def forge_token(cfg: Config, *, optional: bool = False, read_only: bool = False) -> SecretEnv:
    """The forge token as ``HF_FORGE_TOKEN``; ``read_only`` steps get ``forge.read_token_secret`` when it is set."""
    ref = (cfg.forge.read_token_secret or cfg.forge.token_secret) if read_only else cfg.forge.token_secret
    return SecretEnv("HF_FORGE_TOKEN", ref, optional=optional)


class _StepFields(TypedDict, total=False):
    """The ``ContainerNode`` fields the agent pod's containers set besides the common ones."""

    env: list[Env | m.EnvVar]
    env_from: list[m.EnvFromSource] | None
    working_dir: str
    dependencies: list[str]


class _NodeFields(_StepFields, total=False):
    image: str | None  # agent.image: set whenever agent.kind is "command" (validated)
    command: list[str]
    args: list[str]
    resources: m.ResourceRequirements


def _mounts(tmp_volume: str, *, workspace: bool = True) -> list[m.VolumeMount]:
    return [
        *([m.VolumeMount(name="workspace", mount_path=WORKSPACE)] if workspace else []),
        m.VolumeMount(name=tmp_volume, mount_path="/tmp"),
    ]


@dataclass(frozen=True)
class AgentArtifacts:
    """How the agent pod's large values travel with an artifact repository: ``context`` arrives as an input
    artifact on the shared workspace volume (every container reads it there: docs/container-set-template.md), and
    ``files`` (the published files' content) leaves as one at ``files_key``, with ``files_budget_bytes`` of content
    instead of a parameter's 64 KiB."""

    files_key: str
    files_budget_bytes: int = 256 * 1024 * 1024


def agent_template(
    cfg: Config,
    pattern: Pattern,
    *,
    repo: RepositoryConfig,
    allowed_paths: list[str],
    settings: Mapping[str, Any],
    large: AgentArtifacts | None = None,
) -> ContainerSet:
    """``settings``: the pattern editor's settings (its ``SETTINGS`` flags) as configured; prepare (the prompt),
    the builtin agent and publish (the run's own files) all receive them. ``large``: the context and the files
    travel as artifacts (a pattern whose context grows with the platform, with a repository configured)."""
    import importlib

    from hera_flows.steps import step_contract

    editor = importlib.import_module(pattern.editor)
    settings_argv = render_flags(editor.SETTINGS, settings, where=f"the {pattern.id} editor's settings")
    agent = cfg.agent_for(pattern.config_key)
    template = agent.read_prompt_template()
    if template is not None:
        check_template(pattern.id, template, settings, where=f"patterns.{pattern.config_key}.agent.prompt_file")

    context_artifact = artifacts.input_file("context", directory=f"{WORKSPACE}/in") if large else None
    context_env = file_env([context_artifact]) if context_artifact else param_env(["context"])

    def node(name: str, tmp_volume: str, **fields: Unpack[_NodeFields]) -> ContainerNode:
        return ContainerNode(
            name=name,
            image_pull_policy=cfg.image_pull_policy,
            security_context=security.container_security_context(),
            # with artifacts the workspace is mounted for the whole set, where Argo's init container finds it
            volume_mounts=_mounts(tmp_volume, workspace=large is None),
            **fields,
        )

    def step_node(name: str, tmp_volume: str, step: str, flags: Mapping[str, Any], *extra: str,
                  **fields: Unpack[_StepFields]) -> ContainerNode:
        """A container of this pod that runs `hera-flows step <step>` (with the editor's settings)."""
        return node(
            name, tmp_volume, image=cfg.image, command=["hera-flows"],
            args=["step", step, *step_contract(step).argv(flags), *extra, *settings_argv],
            resources=resources(cfg.workflow.resources), **fields,
        )

    with ContainerSet(
        name=AGENT_TASK,
        # what agent.network_policy selects (agent_network_policy below); Argo puts template labels on the pod
        labels={AGENT_POD_LABEL: pattern.id},
        # Publish is idempotent (a rebuilt branch with the same tree is not pushed again; others' commits are
        # kept), so a transient publish failure (exit 75, taken from the main container) or a lost pod reruns the
        # pod. An agent that failed is not retried: main never ran, so the exit code reads -1.
        retry_strategy=retry_strategy(cfg),
        inputs=[context_artifact or Parameter(name="context"), Parameter(name="branch"), Parameter(name="title")],
        outputs=[
            *(Parameter(name=o, value_from=m.ValueFrom(path=f"{OUT_DIR}/{o}", default=""))
              for o in PUBLISH_OUTPUTS if not (large and o == "files")),
            *([artifacts.output("files", f"{OUT_DIR}/files", large.files_key)] if large else []),
        ],
        volume_mounts=[m.VolumeMount(name="workspace", mount_path=WORKSPACE)] if large else None,
        volumes=[
            EmptyDirVolume(name="workspace"),
            EmptyDirVolume(name="tmp-prepare"),
            EmptyDirVolume(name="tmp-agent"),
            EmptyDirVolume(name="tmp-publish"),
        ],
    ) as container_set:
        step_node(
            "prepare", "tmp-prepare", "prepare-workspace",
            {"pattern": pattern.id, "repo_url": repo.url, "base_branch": repo.base_branch, "workspace": WORKSPACE,
             "allowed_paths": allowed_paths, "clone_depth": agent.clone_depth, "forge": cfg.forge.kind},
            env=[*context_env, *param_env(["branch"]), forge_token(cfg, optional=True, read_only=True).build(),
                 *([Env(name=PROMPT_TEMPLATE_ENV, value=template)] if template is not None else [])],
        )
        if agent.kind == "builtin":
            step_node(
                "agent", "tmp-agent", "agent-builtin", {"pattern": pattern.id, "workspace": WORKSPACE},
                dependencies=["prepare"],
            )
        elif agent.named_runtime:
            node(
                "agent", "tmp-agent",
                image=agent.runtime_image(cfg.image),
                command=["hera-flows"],
                args=["step", "agent-run", *step_contract("agent-run").argv({
                    "runtime": agent.kind, "workspace": WORKSPACE, "model": agent.runtime_model(),
                    "allowed_paths": allowed_paths, "max_turns": agent.max_turns,
                    "timeout_seconds": agent.timeout_seconds, "max_budget_usd": agent.max_budget_usd,
                    "base_url": agent.base_url, "allow_commands": agent.allow_commands or None})],
                working_dir=f"{WORKSPACE}/repo",
                env=[
                    Env(name="HOME", value="/tmp"),
                    Env(name="HF_WORKFLOW_NAME", value="{{workflow.name}}"),
                    SecretEnv(API_KEY_ENV[agent.kind], agent.runtime_api_key()).build(),
                ],
                resources=resources(agent.resources),
                dependencies=["prepare"],
            )
        else:
            node(
                "agent", "tmp-agent",
                image=agent.image,
                command=list(agent.command),
                working_dir=f"{WORKSPACE}/repo",
                env=[
                    Env(name="HF_PROMPT_FILE", value=f"{WORKSPACE}/prompt.md"),
                    Env(name="HF_CONTEXT_FILE", value=f"{WORKSPACE}/context.json"),
                    Env(name="HF_SUMMARY_FILE", value=f"{WORKSPACE}/summary.md"),
                    Env(name="HF_ISSUE_FILE", value=f"{WORKSPACE}/issue.json"),
                    Env(name="HOME", value="/tmp"),
                ],
                env_from=[m.EnvFromSource(secret_ref=m.SecretEnvSource(name=agent.secret))]
                if agent.secret
                else None,
                resources=resources(agent.resources),
                dependencies=["prepare"],
            )
        step_node(
            "main", "tmp-publish", "publish",
            {"repo_url": repo.url, "base_branch": repo.base_branch, "workspace": WORKSPACE,
             "allowed_paths": allowed_paths, "author_name": cfg.forge.git_author_name,
             "author_email": cfg.forge.git_author_email, "forge": cfg.forge.kind, "pattern": pattern.id,
             "files_budget_bytes": large.files_budget_bytes if large else None},
            f"--outputs={OUT_DIR}",
            env=[*param_env(["branch", "title"]), *context_env, forge_token(cfg).build()] if large
            else [*param_env(["branch", "title", "context"]), forge_token(cfg).build()],
            dependencies=["agent"],
        )
    return container_set


AGENT_POD_LABEL = "hera-flows.io/agent-pod"
DNS_PORT = 53


def agent_network_policy(cfg: Config, pattern: Pattern) -> dict[str, Any] | None:
    """The optional NetworkPolicy of a pattern's agent pods (``agent.network_policy``): egress only to the cluster's
    DNS, the API server (Argo's wait container reports the pod's outputs there), the forge and the model endpoint
    CIDRs; no ingress at all. It covers the whole pod: prepare and publish
    reach the forge, the agent container the model endpoint; a CNI that enforces NetworkPolicy is needed."""
    policy = cfg.agent_for(pattern.config_key).network_policy
    if policy is None:
        return None
    ports = [{"protocol": "TCP", "port": port} for port in policy.ports]
    dns = {"to": [{"namespaceSelector": {}, "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
           "ports": [{"protocol": "UDP", "port": DNS_PORT}, {"protocol": "TCP", "port": DNS_PORT}]}
    api = {"to": [{"ipBlock": {"cidr": cidr}} for cidr in policy.api_server_cidrs],
           "ports": [{"protocol": "TCP", "port": port} for port in policy.api_server_ports]}
    egress = [dns, api, {"to": [{"ipBlock": {"cidr": cidr}} for cidr in policy.forge_cidrs], "ports": ports}]
    if policy.model_cidrs:
        egress.append({"to": [{"ipBlock": {"cidr": cidr}} for cidr in policy.model_cidrs], "ports": ports})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"hera-flows-agent-{pattern.id}-egress", "namespace": cfg.namespace,
                     "labels": dict(security.MANAGED_BY)},
        "spec": {"podSelector": {"matchLabels": {AGENT_POD_LABEL: pattern.id}},
                 "policyTypes": ["Ingress", "Egress"], "ingress": [], "egress": egress},
    }


def agent_output(name: str) -> str:
    """What the agent pod published (``PUBLISH_OUTPUTS``), as a later task reads it."""
    return f"{{{{tasks.{AGENT_TASK}.outputs.parameters.{name}}}}}"
