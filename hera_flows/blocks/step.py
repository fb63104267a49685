"""The one way a workflow template runs our code: a restricted container calling `hera-flows step NAME`.

Event data reaches the step as ``HF_PARAM_*`` environment variables filled from template inputs (never a shell
string, never a flag), static configuration as ``--flag=value`` arguments fixed at generation time, secrets
as Secret references, and outputs as files under ``/tmp/outputs``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hera.workflows import Container, EmptyDirVolume, Env, Parameter, RetryStrategy
from hera.workflows import models as m

from hera_flows.blocks import security
from hera_flows.config import Config, Resources, SecretRef

OUTPUTS_DIR = "/tmp/outputs"
TMP_MOUNT = "/tmp"
# Argo retries a network step only when it ended with EX_TEMPFAIL (its own retries ran out) or the pod
# itself errored (evicted, node lost); a rejection (exit 1) is final.
RETRY_EXPRESSION = "lastRetry.status == 'Error' || lastRetry.exitCode == '75'"


def env_name(param: str) -> str:
    return "HF_PARAM_" + param.upper().replace("-", "_")


@dataclass(frozen=True)
class SecretEnv:
    """An environment variable filled from a Secret key."""

    env: str
    ref: SecretRef
    optional: bool = False

    def build(self) -> m.EnvVar:
        return m.EnvVar(
            name=self.env,
            value_from=m.EnvVarSource(
                secret_key_ref=m.SecretKeySelector(name=self.ref.name, key=self.ref.key, optional=self.optional)
            ),
        )


def resources(spec: Resources) -> m.ResourceRequirements:
    return m.ResourceRequirements(
        requests={"cpu": spec.requests.cpu, "memory": spec.requests.memory},
        limits={"cpu": spec.limits.cpu, "memory": spec.limits.memory},
    )


def retry_strategy(cfg: Config) -> RetryStrategy:
    policy = cfg.workflow.retry
    return RetryStrategy(
        limit=str(policy.limit),
        retry_policy="Always",
        expression=RETRY_EXPRESSION,
        backoff=m.Backoff(
            duration=f"{policy.backoff_seconds}s", factor=str(policy.factor), cap=f"{policy.max_backoff_seconds}s"
        ),
    )


def param_env(inputs: list[str]) -> list[Env]:
    return [Env(name=env_name(p), value=f"{{{{inputs.parameters.{p}}}}}") for p in inputs]


def step_template(
    cfg: Config,
    *,
    name: str,
    step: str,
    flags: Sequence[str] = (),
    inputs: Sequence[str] = (),
    outputs: Sequence[str] = (),
    secrets: Sequence[SecretEnv] = (),
    env_from_secrets: Sequence[str] = (),
    network: bool = False,
    service_account: str | None = None,
    metrics: Sequence[Any] = (),
) -> Container:
    """A Container template for `hera-flows step <step> <flags> --outputs=/tmp/outputs`.

    ``network`` steps get Argo retries with backoff; ``service_account`` (only the guard) mounts a token,
    every other step runs without one.
    """
    env: list[Env | m.EnvVar] = [*param_env(list(inputs)), *(s.build() for s in secrets)]
    return Container(
        name=name,
        image=cfg.image,
        image_pull_policy=cfg.image_pull_policy,
        command=["hera-flows"],
        args=["step", step, *flags, f"--outputs={OUTPUTS_DIR}"],
        env=env or None,
        env_from=[m.EnvFromSource(secret_ref=m.SecretEnvSource(name=s)) for s in env_from_secrets] or None,
        inputs=[Parameter(name=p) for p in inputs] or None,
        outputs=[Parameter(name=o, value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/{o}", default="")) for o in outputs]
        or None,
        volumes=[EmptyDirVolume(name="tmp", mount_path=TMP_MOUNT)],
        security_context=security.container_security_context(),
        resources=resources(cfg.workflow.resources),
        retry_strategy=retry_strategy(cfg) if network else None,
        service_account_name=service_account,
        automount_service_account_token=True if service_account else None,
        metrics=list(metrics) or None,
    )
