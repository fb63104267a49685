"""The agent block: one pod, three containers sharing a workspace volume — prepare -> agent -> publish.

- ``prepare`` clones the GitOps repository and writes the agent contract files (repo, prompt, context).
- ``agent`` edits files. It holds no forge token and no Kubernetes token: the builtin editor needs none, and
  an external coding agent gets only its own credentials Secret.
- ``main`` publishes: it never runs git inside the agent's checkout; it copies the allowed changes into its own
  clone and pushes the branch. Argo reads a containerSet's outputs only from a container named ``main``.
Each container has a private /tmp so nothing the agent leaves there reaches the publish step.
"""

from __future__ import annotations

from hera.workflows import ContainerNode, ContainerSet, EmptyDirVolume, Env, Parameter
from hera.workflows import models as m

from hera_flows.blocks import security
from hera_flows.blocks.step import SecretEnv, param_env, resources, retry_strategy
from hera_flows.config import Config, RepositoryConfig

AGENT_TASK = "agent"
WORKSPACE = "/workspace"
OUT_DIR = f"{WORKSPACE}/out"
PUBLISH_OUTPUTS = ["branch", "changed", "commit", "files", "refused", "summary", "issue", "changes", "blocked",
                   "update"]


def forge_token(cfg: Config, *, optional: bool = False, read_only: bool = False) -> SecretEnv:
    """The forge token as ``HF_FORGE_TOKEN``; ``read_only`` steps get ``forge.read_token_secret`` when it is set."""
    ref = (cfg.forge.read_token_secret or cfg.forge.token_secret) if read_only else cfg.forge.token_secret
    return SecretEnv("HF_FORGE_TOKEN", ref, optional=optional)


def _mounts(tmp_volume: str) -> list[m.VolumeMount]:
    return [
        m.VolumeMount(name="workspace", mount_path=WORKSPACE),
        m.VolumeMount(name=tmp_volume, mount_path="/tmp"),
    ]


def agent_template(
    cfg: Config,
    pattern: str,
    *,
    repo: RepositoryConfig,
    allowed_paths: list[str],
    builtin_flags: list[str],
) -> ContainerSet:
    allowed = ",".join(allowed_paths)

    def node(name: str, tmp_volume: str, **fields: object) -> ContainerNode:
        return ContainerNode(
            name=name,
            image_pull_policy=cfg.image_pull_policy,
            security_context=security.container_security_context(),
            volume_mounts=_mounts(tmp_volume),
            **fields,
        )

    def step_node(name: str, tmp_volume: str, step: str, flags: list[str], **fields: object) -> ContainerNode:
        """A container of this pod that runs `hera-flows step <step>` from the step image."""
        return node(
            name, tmp_volume, image=cfg.image, command=["hera-flows"], args=["step", step, *flags],
            resources=resources(cfg.workflow.resources), **fields,
        )

    with ContainerSet(
        name=AGENT_TASK,
        # Publish is idempotent (a rebuilt branch with the same tree is not pushed again; others' commits are
        # kept), so a transient publish failure (exit 75, taken from the main container) or a lost pod reruns the
        # pod. An agent that failed is not retried: main never ran, so the exit code reads -1.
        retry_strategy=retry_strategy(cfg),
        inputs=[Parameter(name="context"), Parameter(name="branch"), Parameter(name="title")],
        outputs=[
            Parameter(name=o, value_from=m.ValueFrom(path=f"{OUT_DIR}/{o}", default="")) for o in PUBLISH_OUTPUTS
        ],
        volumes=[
            EmptyDirVolume(name="workspace"),
            EmptyDirVolume(name="tmp-prepare"),
            EmptyDirVolume(name="tmp-agent"),
            EmptyDirVolume(name="tmp-publish"),
        ],
    ) as container_set:
        step_node(
            "prepare", "tmp-prepare", "prepare-workspace",
            [f"--pattern={pattern}", f"--repo-url={repo.url}", f"--base-branch={repo.base_branch}",
             f"--workspace={WORKSPACE}", f"--allowed-paths={allowed}", f"--forge={cfg.forge.kind}"],
            env=[*param_env(["context", "branch"]), forge_token(cfg, optional=True, read_only=True).build()],
        )
        if cfg.agent.kind == "builtin":
            step_node(
                "agent", "tmp-agent", "agent-builtin",
                [f"--pattern={pattern}", f"--workspace={WORKSPACE}", *builtin_flags],
                dependencies=["prepare"],
            )
        else:
            node(
                "agent", "tmp-agent",
                image=cfg.agent.image,
                command=list(cfg.agent.command),
                working_dir=f"{WORKSPACE}/repo",
                env=[
                    Env(name="HF_PROMPT_FILE", value=f"{WORKSPACE}/prompt.md"),
                    Env(name="HF_CONTEXT_FILE", value=f"{WORKSPACE}/context.json"),
                    Env(name="HF_SUMMARY_FILE", value=f"{WORKSPACE}/summary.md"),
                    Env(name="HF_ISSUE_FILE", value=f"{WORKSPACE}/issue.json"),
                    Env(name="HOME", value="/tmp"),
                ],
                env_from=[m.EnvFromSource(secret_ref=m.SecretEnvSource(name=cfg.agent.secret))]
                if cfg.agent.secret
                else None,
                resources=resources(cfg.agent.resources),
                dependencies=["prepare"],
            )
        step_node(
            "main", "tmp-publish", "publish",
            [f"--repo-url={repo.url}", f"--base-branch={repo.base_branch}", f"--workspace={WORKSPACE}",
             f"--allowed-paths={allowed}", f"--author-name={cfg.forge.git_author_name}",
             f"--author-email={cfg.forge.git_author_email}", f"--forge={cfg.forge.kind}", f"--outputs={OUT_DIR}",
             # the run's own files are computed with the editor's settings, from the pristine base checkout
             f"--pattern={pattern}", *builtin_flags],
            env=[*param_env(["branch", "title", "context"]), forge_token(cfg).build()],
            dependencies=["agent"],
        )
    return container_set


def agent_output(name: str) -> str:
    """What the agent pod published (``PUBLISH_OUTPUTS``), as a later task reads it."""
    return f"{{{{tasks.{AGENT_TASK}.outputs.parameters.{name}}}}}"
