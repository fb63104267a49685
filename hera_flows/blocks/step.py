"""The one way a workflow template runs our code: a restricted container calling `hera-flows step NAME`.

What a step receives is its contract (hera_flows/steps/contract.py), declared next to the step and read here:
event data as ``HF_PARAM_*`` environment variables filled from the contract's inputs (never a shell string, never
a flag), configuration as the contract's ``--flag=value`` arguments built from the configuration at generation time
(a missing or unknown flag fails `generate`), secrets as Secret references, and the contract's outputs as files
under ``/tmp/outputs``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hera.workflows import Container, EmptyDirVolume, Env, Parameter, RetryStrategy
from hera.workflows import models as m

from hera_flows.blocks import security
from hera_flows.config import Config, Resources, SecretRef
from hera_flows.steps.contract import env_name, file_env_name

OUTPUTS_DIR = "/tmp/outputs"
TMP_MOUNT = "/tmp"
# Argo retries a network step only when it ended with EX_TEMPFAIL (its own retries ran out) or the pod
# itself errored (evicted, node lost); a rejection (exit 1) is final.
RETRY_EXPRESSION = "lastRetry.status == 'Error' || lastRetry.exitCode == '75'"


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
        requests={"cpu": m.Quantity(spec.requests.cpu), "memory": m.Quantity(spec.requests.memory)},
        limits={"cpu": m.Quantity(spec.limits.cpu), "memory": m.Quantity(spec.limits.memory)},
    )


def retry_strategy(cfg: Config) -> RetryStrategy:
    policy = cfg.workflow.retry
    return RetryStrategy(
        limit=str(policy.limit),
        retry_policy="Always",
        expression=RETRY_EXPRESSION,
        backoff=m.Backoff(
            duration=f"{policy.backoff_seconds}s",
            factor=m.IntOrString(str(policy.factor)),
            cap=f"{policy.max_backoff_seconds}s",
        ),
    )


def param_env(inputs: list[str]) -> list[Env]:
    return [Env(name=env_name(p), value=f"{{{{inputs.parameters.{p}}}}}") for p in inputs]


def file_env(artifacts: Sequence[m.Artifact]) -> list[Env]:
    """``HF_FILE_<NAME>``: where each input artifact lies in the pod (a fixed path, never event data)."""
    return [Env(name=file_env_name(a.name), value=a.path) for a in artifacts if a.path]


def step_template(
    cfg: Config,
    *,
    name: str,
    step: str,
    flags: Mapping[str, Any] | None = None,
    secrets: Sequence[SecretEnv] = (),
    env_from_secrets: Sequence[str] = (),
    network: bool = False,
    service_account: str | None = None,
    metrics: Sequence[Any] = (),
    artifact_inputs: Sequence[m.Artifact] = (),
    artifact_outputs: Sequence[m.Artifact] = (),
    omit: Sequence[str] = (),
) -> Container:
    """A Container template for `hera-flows step <step> <flags> --outputs=/tmp/outputs`, its inputs and outputs
    those of the step's contract and its flags built from ``flags`` (flag dest -> configured value).

    ``network`` steps get Argo retries with backoff; ``service_account`` (guards, the claims steps, triage's
    context, gc) mounts a token, every other step runs without one. ``artifact_inputs`` / ``artifact_outputs``
    (hera_flows/blocks/artifacts.py) replace the contract's parameters of the same names: the step reads and
    writes the same files either way. ``omit``: contract inputs and outputs this wiring does not use (an unset
    input reads as empty in the pod).
    """
    from hera_flows.steps import step_contract

    spec = step_contract(step)
    by_artifact = {a.name for a in artifact_inputs} | {a.name for a in artifact_outputs}
    unknown = sorted(by_artifact - set(spec.inputs) - set(spec.outputs) - set(spec.directories))
    if unknown:
        raise ValueError(f"step {spec.name}: no input or output named {', '.join(unknown)}")
    inputs = [p for p in spec.inputs if p not in {a.name for a in artifact_inputs} and p not in omit]
    outputs = [o for o in spec.outputs if o not in {a.name for a in artifact_outputs} and o not in omit]
    env: list[Env | m.EnvVar] = [*param_env(inputs), *file_env(artifact_inputs), *(s.build() for s in secrets)]
    return Container(
        name=name,
        image=cfg.image,
        image_pull_policy=cfg.image_pull_policy,
        command=["hera-flows"],
        args=["step", spec.name, *spec.argv(flags), f"--outputs={OUTPUTS_DIR}"],
        env=env or None,
        env_from=[m.EnvFromSource(secret_ref=m.SecretEnvSource(name=s)) for s in env_from_secrets] or None,
        inputs=[*(Parameter(name=p) for p in inputs), *artifact_inputs] or None,
        outputs=[*(Parameter(name=o, value_from=m.ValueFrom(path=f"{OUTPUTS_DIR}/{o}", default="")) for o in outputs),
                 *artifact_outputs] or None,
        volumes=[EmptyDirVolume(name="tmp", mount_path=TMP_MOUNT)],
        security_context=security.container_security_context(),
        resources=resources(cfg.workflow.resources),
        retry_strategy=retry_strategy(cfg) if network else None,
        service_account_name=service_account,
        automount_service_account_token=True if service_account else None,
        metrics=list(metrics) or None,
    )
