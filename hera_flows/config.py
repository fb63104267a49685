"""The configuration model: `config/flows.yaml` is the one place a platform team describes its environment.

Everything is validated up front so that `make generate` either writes manifests that install, or prints one
clear line per problem (with the YAML line number) and exits 2. Unknown fields are errors: a typo must not be
silently ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` holds one human-readable line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Model):
    """A key of a Kubernetes Secret in the automation namespace."""

    name: Annotated[str, Field(pattern=K8S_NAME, max_length=253)]
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")]


class RateLimit(Model):
    """A Sensor trigger rate limit. Argo Events delays (never drops) events over it; 0 would crash the sensor."""

    requests_per_unit: Annotated[int, Field(ge=1)] = 10
    unit: Literal["Second", "Minute", "Hour"] = "Minute"


class ResourceSpec(Model):
    cpu: Annotated[str, Field(pattern=QUANTITY)]
    memory: Annotated[str, Field(pattern=QUANTITY)]


class Resources(Model):
    requests: ResourceSpec = ResourceSpec(cpu="100m", memory="256Mi")
    limits: ResourceSpec = ResourceSpec(cpu="1", memory="1Gi")


class RetryPolicy(Model):
    """Retries of network steps (exit code 75 = the step's own retries ran out); backoff doubles each time."""

    limit: Annotated[int, Field(ge=0, le=10)] = 3
    backoff_seconds: Annotated[int, Field(ge=1)] = 15
    factor: Annotated[int, Field(ge=1, le=10)] = 2
    max_backoff_seconds: Annotated[int, Field(ge=1)] = 300


class WorkflowDefaults(Model):
    active_deadline_seconds: Annotated[int, Field(ge=60)] = 3600
    ttl_seconds_after_success: Annotated[int, Field(ge=0)] = 86400
    ttl_seconds_after_failure: Annotated[int, Field(ge=0)] = 604800
    retry: RetryPolicy = RetryPolicy()
    resources: Resources = Resources()


class AgentConfig(Model):
    """Which agent edits the repository: the deterministic builtin editor or any coding-agent CLI image."""

    kind: Literal["builtin", "command"] = "builtin"
    image: str | None = None
    command: list[str] = []
    secret: Annotated[str | None, Field(pattern=K8S_NAME)] = None
    resources: Resources = Resources(
        requests=ResourceSpec(cpu="250m", memory="512Mi"), limits=ResourceSpec(cpu="2", memory="2Gi")
    )

    @model_validator(mode="after")
    def _command_needs_image(self) -> AgentConfig:
        if self.kind == "command" and (not self.image or not self.command):
            raise ValueError("agent.kind 'command' needs both 'image' and 'command'")
        return self


class ForgeConfig(Model):
    """The git forge that receives branches and pull requests."""

    kind: Literal["github"] = "github"
    api_url: Annotated[str, Field(pattern=r"^https?://")] = "https://api.github.com"
    token_secret: SecretRef = SecretRef(name="hera-flows-forge", key="token")
    git_author_name: str = "hera-flows"
    git_author_email: str = "hera-flows@users.noreply.github.com"


class RepositoryConfig(Model):
    """The GitOps repository a pattern changes."""

    url: Annotated[str, Field(min_length=1)]
    slug: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$")] | None = None
    base_branch: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]+$")] = "main"

    @model_validator(mode="after")
    def _derive_slug(self) -> RepositoryConfig:
        if self.slug is None:
            match = re.match(r"^(?:https?://[^/]+/|git@[^:]+:)(.+?)(?:\.git)?/?$", self.url)
            if not match:
                raise ValueError(f"cannot derive 'slug' (owner/name) from url {self.url!r}; set 'slug'")
            object.__setattr__(self, "slug", match.group(1))
        return self


class MlflowConfig(Model):
    tracking_uri: Annotated[str, Field(pattern=r"^https?://")] = "http://mlflow.mlflow.svc.cluster.local:5000"
    credentials_secret: Annotated[str | None, Field(pattern=K8S_NAME)] = None


class WebhookConfig(Model):
    port: Annotated[int, Field(ge=1, le=65535)] = 12000
    endpoint: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*$")]


class SmokeConfig(Model):
    """The staging inference request made after the PR is opened."""

    endpoint: Annotated[str, Field(pattern=r"^https?://")] = (
        "http://{model}-predictor.staging.svc.cluster.local"
    )
    protocol: Literal["v1", "v2"] = "v2"
    max_latency_ms: Annotated[int, Field(ge=1)] = 2000
    timeout_seconds: Annotated[int, Field(ge=1)] = 10
    payload: dict[str, Any] | None = None

    @field_validator("endpoint")
    @classmethod
    def _only_model_placeholder(cls, value: str) -> str:
        placeholders = set(re.findall(r"{([^{}]*)}", value))
        if placeholders - {"model"}:
            raise ValueError(f"only the placeholder {{model}} is allowed, found {sorted(placeholders)}")
        return value


Alias = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")]


class PromotionConfig(Model):
    """Pattern 1: a model-registry promotion becomes a PR that updates the model's InferenceService."""

    enabled: bool = True
    repository: RepositoryConfig | None = None
    aliases: Annotated[list[Alias], Field(min_length=1)] = ["champion", "production"]
    stages: Annotated[list[Literal["Production", "Staging"]], Field(min_length=1)] = ["Production"]
    webhook: WebhookConfig = WebhookConfig(endpoint="/mlflow")
    legacy_webhook: WebhookConfig = WebhookConfig(endpoint="/databricks")
    webhook_secret: SecretRef = SecretRef(name="mlflow-webhook", key="secret")
    legacy_webhook_token: SecretRef = SecretRef(name="databricks-webhook", key="token")
    legacy_signing_secret: SecretRef | None = None
    signature_tolerance_seconds: Annotated[int, Field(ge=10, le=86400)] = 300
    rate_limit: RateLimit = RateLimit(requests_per_unit=10, unit="Minute")
    inference_dir: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")] = "inference"
    model_cards_dir: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")] = "model-cards"
    allowed_paths: Annotated[list[str], Field(min_length=1)] = ["inference/**", "model-cards/**"]
    gpu_node_selector_key: str = "nvidia.com/gpu.product"
    smoke: SmokeConfig = SmokeConfig()
    active_deadline_seconds: Annotated[int, Field(ge=60)] = 1800

    @field_validator("allowed_paths")
    @classmethod
    def _relative_paths(cls, value: list[str]) -> list[str]:
        for pattern in value:
            if pattern.startswith("/") or ".." in pattern.split("/"):
                raise ValueError(f"allowed path {pattern!r} must be relative and stay inside the repository")
        return value

    @model_validator(mode="after")
    def _distinct_endpoints(self) -> PromotionConfig:
        if self.webhook.port == self.legacy_webhook.port and self.webhook.endpoint == self.legacy_webhook.endpoint:
            raise ValueError("webhook and legacy_webhook must differ in port or endpoint")
        return self


# --- Pattern 2: drift remediation (hera_flows/patterns/drift.py) -------------------------------------------


class DriftConfig(Model):
    """Pattern 2: a drift alert becomes a retraining PR (or a data-quality issue), with runaway protection."""

    enabled: bool = False
    repository: RepositoryConfig | None = None


# --- Pattern 3: training-failure triage (hera_flows/patterns/failure_triage.py) --------------------------------


class FailureTriageConfig(Model):
    """Pattern 3: a failed training workflow is classified and becomes a fix PR or an issue for its owner."""

    enabled: bool = False
    repository: RepositoryConfig | None = None


# --- Pattern 4: fairness audit (hera_flows/patterns/fairness_audit.py) ----------------------------------------


class FairnessAuditConfig(Model):
    """Pattern 4: a weekly fairness audit of every production model, one model-card refresh PR."""

    enabled: bool = False
    repository: RepositoryConfig | None = None


class Patterns(Model):
    promotion: PromotionConfig = PromotionConfig()
    drift: DriftConfig = DriftConfig()
    failure_triage: FailureTriageConfig = FailureTriageConfig()
    fairness_audit: FairnessAuditConfig = FairnessAuditConfig()


class Config(Model):
    """The whole of `config/flows.yaml`."""

    namespace: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] = "mlops-automation"
    image: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] = "ghcr.io/hera-flows/hera-flows:0.1.0"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    event_bus: Annotated[str, Field(pattern=K8S_NAME)] = "default"
    repository: RepositoryConfig | None = None
    agent: AgentConfig = AgentConfig()
    forge: ForgeConfig = ForgeConfig()
    mlflow: MlflowConfig = MlflowConfig()
    workflow: WorkflowDefaults = WorkflowDefaults()
    patterns: Patterns = Patterns()

    @model_validator(mode="after")
    def _every_enabled_pattern_has_a_repository(self) -> Config:
        for name in type(self.patterns).model_fields:
            pattern = getattr(self.patterns, name)
            if getattr(pattern, "enabled", False) and pattern.repository is None and self.repository is None:
                raise ValueError(f"pattern {name!r} needs a 'repository' (set it on the pattern or at the top level)")
        return self

    @model_validator(mode="after")
    def _replay_records_outlive_the_tolerance(self) -> Config:
        # Replay records are owned by their Workflow and garbage-collected with it: the workflow must be kept
        # longer than a signature stays acceptable, or a replay inside the window would pass.
        tolerance = self.patterns.promotion.signature_tolerance_seconds
        kept = min(self.workflow.ttl_seconds_after_success, self.workflow.ttl_seconds_after_failure)
        if self.patterns.promotion.enabled and kept < tolerance:
            raise ValueError(
                f"workflow TTLs ({kept}s) must be at least patterns.promotion.signature_tolerance_seconds "
                f"({tolerance}s): replay records are deleted with their workflow"
            )
        return self

    def repository_for(self, pattern: str) -> RepositoryConfig:
        """The pattern's own repository, or the top-level default."""
        repo = getattr(self.patterns, pattern).repository or self.repository
        assert repo is not None  # guaranteed by validation
        return repo


def load_config(path: str | Path) -> Config:
    """Load and validate a configuration file; raise ConfigError with one line per problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the configuration: {exc.strerror or exc}"]) from None
    return parse_config(text, str(path))


def parse_config(text: str, source: str = "<config>") -> Config:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([f"{source}{where}: not valid YAML: {problem}"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the configuration must be a mapping of settings, not {type(data).__name__}"])
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([_describe(error, node, source) for error in exc.errors()]) from None


def _describe(error: dict[str, Any], node: yaml.Node | None, source: str) -> str:
    loc = [part for part in error["loc"] if not isinstance(part, str) or not part.startswith("function-")]
    line = _line_of(node, loc)
    where = f"{source}:{line}" if line else source
    field = ".".join(str(part) for part in loc) or "(top level)"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; see docs/configuration.md)"
    elif error["type"] not in ("missing",) and "input" in error and not isinstance(error["input"], (dict, list)):
        message = f"{message} (got {error['input']!r})"
    return f"{where}: {field}: {message}"


def _line_of(node: yaml.Node | None, loc: list[Any]) -> int | None:
    """The 1-based line of the YAML node at ``loc``, or of its deepest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line = key.start_mark.line + 1
                    node = value
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line
