"""The configuration model: `config/flows.yaml` is the one place a platform team describes its environment.

Everything is validated up front so that `make generate` either writes manifests that install, or prints one
clear line per problem (with the YAML line number) and exits 2. Unknown fields are errors: a typo must not be
silently ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

if TYPE_CHECKING:
    from pydantic_core import ErrorDetails

DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
K8S_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti)?$"
CRON_5_FIELDS = r"^\S+( \S+){4}$"


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


AgentKind = Literal["builtin", "claude-code", "codex", "command"]
# The named runtimes hera-flows knows how to run headless (hera_flows/steps/agent_runtimes.py): the model, the
# Secret key of the API key and the image each gets when the configuration does not say.
RUNTIME_DEFAULTS: dict[str, dict[str, str]] = {
    "claude-code": {"model": "claude-sonnet-4-5", "api_key": "ANTHROPIC_API_KEY", "image": "agent-claude-code"},
    "codex": {"model": "gpt-5.5", "api_key": "OPENAI_API_KEY", "image": "agent-codex"},
}
# The read-only commands an agent may be allowed (agent.allow_commands): git subcommands that only read history.
# Whatever runs, runs as the CLI's user and could read its key (docs/agents.md); hence no env, cat or shell here.
READ_ONLY_COMMANDS = ("git log", "git show", "git diff", "git blame", "git status", "git ls-files")
_COMMAND = r"^git (log|show|diff|blame|status|ls-files)$"


def _cidr(value: str) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_network(value, strict=True))
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a CIDR ({exc})") from None


class AgentNetworkPolicy(Model):
    """An optional NetworkPolicy for the agent pods: egress only to DNS, the forge and the model endpoint."""

    api_server_cidrs: Annotated[list[Annotated[str, AfterValidator(_cidr)]], Field(min_length=1, description=(
        "the Kubernetes API server's addresses (`kubectl get endpoints kubernetes -n default`): Argo's wait "
        "container in the same pod reports the outputs through it"))]
    api_server_ports: Annotated[list[Annotated[int, Field(ge=1, le=65535)]], Field(
        default=[443, 6443], min_length=1, description="TCP ports of the API server's endpoints")]
    forge_cidrs: Annotated[list[Annotated[str, AfterValidator(_cidr)]], Field(min_length=1, description=(
        "CIDRs of the git forge (clone and push, over 443); e.g. GitHub's published ranges or your GHES address"))]
    model_cidrs: Annotated[list[Annotated[str, AfterValidator(_cidr)]], Field(default=[], description=(
        "CIDRs of the model endpoint (the provider's API or the gateway named by base_url, over 443)"))]
    ports: Annotated[list[Annotated[int, Field(ge=1, le=65535)]], Field(
        default=[443], min_length=1, description="TCP ports allowed to those CIDRs")]


class AgentConfig(Model):
    """Which agent edits the repository: the builtin editor, a named coding-agent runtime, or any CLI image.

    ``claude-code`` and ``codex`` run the real CLI headless through `hera-flows step agent-run`, confined to reading
    the checkout and editing the pattern's allowed paths (docs/agents.md); ``command`` runs any image as given.
    """

    kind: Annotated[AgentKind, Field(description=(
        "builtin: the deterministic editor (no LLM). claude-code / codex: the named CLI, headless, with hera-flows' "
        "permission flags and limits. command: your own image and command (the agent contract, docs/agents.md)"))
    ] = "builtin"
    image: Annotated[str | None, Field(pattern=r"^\S+$", description=(
        "the agent container's image. Named runtimes default to the image built from images/agent-<kind>/ next to "
        "`image` (its name with -agent-<kind> appended, same tag)"))] = None
    command: list[str] = []
    secret: Annotated[str | None, Field(pattern=K8S_NAME, description=(
        "kind command only: a Secret whose keys all become the agent's environment"))] = None
    model: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@-]*$", description=(
        "the model name the runtime asks for (default: claude-sonnet-4-5 for claude-code, gpt-5.5 for codex)"))] = None
    api_key_secret: SecretRef | None = Field(default=None, description=(
        "the Secret key holding the runtime's API key (default: Secret hera-flows-agent, key ANTHROPIC_API_KEY for "
        "claude-code, OPENAI_API_KEY for codex); it reaches only the agent container"))
    base_url: Annotated[str | None, Field(pattern=r"^https?://\S+$", description=(
        "an API base URL for a gateway (LiteLLM, Bedrock or Vertex proxies, an internal proxy); unset: the "
        "provider's own endpoint"))] = None
    max_turns: Annotated[int, Field(ge=1, le=500, description=(
        "model round trips before the run is stopped (claude-code: --max-turns; codex: counted by agent-run)"))] = 30
    timeout_seconds: Annotated[int, Field(ge=30, le=86400, description="wall-clock limit of the CLI run")] = 900
    max_budget_usd: Annotated[float | None, Field(gt=0, description=(
        "claude-code only: the spend limit (--max-budget-usd); codex has no budget flag"))] = None
    allow_commands: Annotated[list[Annotated[str, Field(pattern=_COMMAND)]], Field(description=(
        "claude-code only: read-only git commands the agent may run, any of: git log, git show, git diff, git blame, "
        "git status, git ls-files (each allows that command with any arguments); empty: no shell at all"))] = []
    prompt_file: Annotated[str | None, Field(min_length=1, description=(
        "a prompt template of your own for this pattern (set it under patterns.<name>.agent), a path relative to "
        "the directory `hera-flows generate` runs in; hera-flows appends the untrusted-data section itself"))] = None
    network_policy: AgentNetworkPolicy | None = None
    resources: Resources = Resources(
        requests=ResourceSpec(cpu="250m", memory="512Mi"), limits=ResourceSpec(cpu="2", memory="2Gi")
    )
    clone_depth: Annotated[int, Field(ge=0, description="commits of history the agent's checkout holds (for its "
                                                        "git log); 0 clones everything")] = 50

    @model_validator(mode="after")
    def _fits_the_kind(self) -> AgentConfig:
        if self.kind == "command" and (not self.image or not self.command):
            raise ValueError("agent.kind 'command' needs both 'image' and 'command'")
        if self.kind != "command" and (self.command or self.secret):
            raise ValueError(f"agent 'command' and 'secret' are for kind 'command', not {self.kind!r} (a named "
                             "runtime reads its key from api_key_secret)")
        if self.max_budget_usd is not None and self.kind != "claude-code":
            raise ValueError(f"agent.max_budget_usd is supported by claude-code only, not {self.kind!r}")
        if self.allow_commands and self.kind != "claude-code":
            raise ValueError(f"agent.allow_commands needs kind claude-code (it enforces a command allow-list); "
                             f"{self.kind!r} cannot")
        return self

    @property
    def named_runtime(self) -> bool:
        return self.kind in RUNTIME_DEFAULTS

    def runtime_model(self) -> str:
        return self.model or RUNTIME_DEFAULTS[self.kind]["model"]

    def runtime_api_key(self) -> SecretRef:
        return self.api_key_secret or SecretRef(name="hera-flows-agent", key=RUNTIME_DEFAULTS[self.kind]["api_key"])

    def runtime_image(self, step_image: str) -> str:
        """The image of the agent container: the configured one, or the named runtime's next to the step image."""
        if self.image:
            return self.image
        name, _, tag = step_image.rpartition(":")
        if not name or "/" in tag:
            name, tag = step_image, "latest"
        return f"{name}-{RUNTIME_DEFAULTS[self.kind]['image']}:{tag}"

    def read_prompt_template(self) -> str | None:
        """The user's prompt template, read at generate time (None: the packaged one)."""
        if self.prompt_file is None:
            return None
        try:
            return Path(self.prompt_file).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"agent.prompt_file {self.prompt_file!r} cannot be read: {exc}"]) from None


AGENT_OVERRIDE = Field(default=None, description=(
    "this pattern's own agent settings, over the top-level `agent` (only the fields given here; e.g. another model "
    "or prompt_file). A different `kind` starts from that runtime's defaults"))


def agent_for(top: AgentConfig, override: dict[str, Any] | None) -> AgentConfig:
    """A pattern's agent: its own ``agent`` section's fields over the top-level ones (only the fields it sets)."""
    if not override:
        return top
    merged = {**top.model_dump(exclude_unset=True), **override}
    if override.get("kind", top.kind) != top.kind:
        # a different runtime: the top level's runtime-specific choices do not carry over
        for name in ("image", "model", "api_key_secret", "base_url", "command", "secret", "max_budget_usd",
                     "allow_commands"):
            if name not in override:
                merged.pop(name, None)
    return AgentConfig.model_validate(merged)


FORGE_API_URLS = {"github": "https://api.github.com", "gitlab": "https://gitlab.com/api/v4"}


class ForgeConfig(Model):
    """The git forge: `github` (default api_url https://api.github.com) or `gitlab` (https://gitlab.com/api/v4).

    Set ``api_url`` for GitHub Enterprise Server (https://HOST/api/v3) or self-managed GitLab (https://HOST/api/v4).
    GitLab merge requests play the part of pull requests; a GitLab ``slug`` may hold subgroups (group/sub/name).
    Token scopes and how each forge keeps one PR per branch and one issue per key: docs/forges.md.
    """

    kind: Annotated[Literal["github", "gitlab"], Field(
        description="github (github.com or GitHub Enterprise Server) or gitlab (gitlab.com or self-managed); "
        "selects the API client of the review/report steps and the git username of the clone and push")] = "github"
    api_url: Annotated[str, Field(pattern=r"^https?://", description=(
        "REST API root. When not set: https://api.github.com for github, https://gitlab.com/api/v4 for gitlab; "
        "GitHub Enterprise Server: https://HOST/api/v3, self-managed GitLab: https://HOST/api/v4"))] = (
        FORGE_API_URLS["github"]
    )
    token_secret: SecretRef = SecretRef(name="hera-flows-forge", key="token")
    read_token_secret: SecretRef | None = Field(default=None, description=(
        "a read-only token for the steps that only read the forge or the repository (context clones, prepare, the "
        "drift guard's count of open PRs); unset: token_secret. With it, no step that holds a Kubernetes token "
        "holds a forge write token"))
    git_author_name: str = "hera-flows"
    git_author_email: str = "hera-flows@users.noreply.github.com"

    @model_validator(mode="after")
    def _api_url_of_the_kind(self) -> ForgeConfig:
        if "api_url" not in self.model_fields_set:
            object.__setattr__(self, "api_url", FORGE_API_URLS[self.kind])
        elif self.kind == "github" and re.search(r"/api/v4/?$", self.api_url):
            raise ValueError(f"forge.api_url {self.api_url!r} looks like GitLab's API: set forge.kind: gitlab")
        return self


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


LabelKey = Annotated[str, Field(pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                                          r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$", max_length=316)]
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$", max_length=63)]


class NetworkSource(Model):
    """Who may connect to a webhook port (a NetworkPolicy peer): a namespace, optionally with pod labels, or a CIDR.

    Give ``namespace`` (optionally with ``pod_labels``) for an in-cluster sender, ``cidr`` for one outside."""

    namespace: Annotated[str | None, Field(pattern=DNS_LABEL, max_length=63)] = None
    pod_labels: dict[LabelKey, LabelValue] = Field(default_factory=dict, description="only pods with these labels "
                                                   "in `namespace` (e.g. {app: mlflow})")
    cidr: Annotated[str | None, Field(pattern=r"^[0-9a-fA-F.:]+/[0-9]{1,3}$")] = None

    @model_validator(mode="after")
    def _one_kind(self) -> NetworkSource:
        if (self.namespace is None) == (self.cidr is None):
            raise ValueError("give either namespace (with optional pod_labels) or cidr")
        if self.pod_labels and self.namespace is None:
            raise ValueError("pod_labels needs a namespace")
        return self


class WebhookConfig(Model):
    port: Annotated[int, Field(ge=1, le=65535)] = 12000
    endpoint: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*$")]


class ServedVersionCheck(Model):
    """After the request, staging must answer with the promoted version (hera_flows/steps/promotion/served_version.py):
    the V2 response's ``model_version`` or the V2 model metadata's ``versions``, polled while staging rolls out."""

    enabled: bool = Field(True, description="check which version staging serves (a V1 endpoint reports none)")
    format: Annotated[str, Field(pattern=r"^[^\s`|]*\{version\}[^\s`|]*$", max_length=64, description=(
        "what the serving runtime reports for registry version N, {version} being N (e.g. v{version})"))] = \
        "{version}"
    wait_seconds: Annotated[int, Field(ge=0, le=3600, description=(
        "how long staging may keep answering with another version before the smoke test fails"))] = 120
    required: bool = Field(False, description=(
        "fail the smoke test when the endpoint reports no version at all (default: reported as not verifiable)"))


class SmokeConfig(Model):
    """The staging inference request made after the PR is opened."""

    endpoint: Annotated[str, Field(pattern=r"^https?://")] = (
        "http://{model}-predictor.staging.svc.cluster.local"
    )
    protocol: Literal["v1", "v2"] = "v2"
    max_latency_ms: Annotated[int, Field(ge=1)] = 2000
    timeout_seconds: Annotated[int, Field(ge=1)] = 10
    payload: dict[str, Any] | None = None
    served_version: ServedVersionCheck = ServedVersionCheck()

    @field_validator("endpoint")
    @classmethod
    def _only_model_placeholder(cls, value: str) -> str:
        placeholders = set(re.findall(r"{([^{}]*)}", value))
        if placeholders - {"model"}:
            raise ValueError(f"only the placeholder {{model}} is allowed, found {sorted(placeholders)}")
        return value


Alias = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$")]


def _inside_the_repository(value: list[str]) -> list[str]:
    for pattern in value:
        if pattern.startswith("/") or ".." in pattern.split("/"):
            raise ValueError(f"allowed path {pattern!r} must be relative and stay inside the repository")
    return value


# The globs a pattern's publish step may push (everything else the agent touched is refused and reported).
AllowedPaths = Annotated[list[str], Field(min_length=1), AfterValidator(_inside_the_repository)]


class PromotionModelCard(Model):
    """What the model-card entry and the PR compare beyond the logged metrics (hera_flows/steps/promotion/
    evaluation.py). The evaluation set, its label and sensitive columns are the fairness audit's
    (``patterns.fairness_audit.evaluation`` and the ``fairness.*`` tags), so a team logs and describes it once."""

    evaluate: bool = Field(True, description=(
        "measure accuracy, calibration and fairness of the promoted and the serving version on their evaluation "
        "sets (a version without one is noted, never a failure)"))
    score_column: Annotated[str, Field(min_length=1, max_length=256, description=(
        "the evaluation set's column of predicted probabilities (calibration needs them; tag "
        "evaluation.score_column overrides it per version)"))] = "score"
    calibration_bins: Annotated[int, Field(ge=2, le=100, description=(
        "equal-width bins of the expected calibration error"))] = 10


class HealthSli(Model):
    """One service-level indicator of the canary health gate: an instant PromQL query ({model} and {namespace}
    are replaced) that must return one sample no greater than ``max``."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,40}$")]
    query: Annotated[str, Field(min_length=1, max_length=2000)]
    max: float


DEFAULT_HEALTH = [
    HealthSli(name="error_ratio", query='model:request_error_ratio:rate5m{model="{model}"}', max=0.001),
    HealthSli(name="latency_p99", query='model:request_latency_seconds:p99_5m{model="{model}"}', max=0.2),
]


class PromotionRollout(Model):
    """A canary rollout (hera_flows/steps/promotion/canary.py): the promotion PR writes the first step, the
    reconciler proposes each later step after ``dwell_seconds`` only while every health SLI holds."""

    enabled: bool = Field(False, description="roll promotions out in steps instead of all at once")
    steps: Annotated[list[Annotated[int, Field(ge=1, le=100)]], Field(min_length=1, description=(
        "traffic percentages of the new version, increasing, ending at 100"))] = [5, 25, 100]
    dwell_seconds: Annotated[int, Field(ge=0, description=(
        "how long a merged step must have served before the next one is proposed"))] = 3600
    prometheus_url: Annotated[str, Field(pattern=r"^https?://\S+$", description=(
        "the Prometheus HTTP API the health SLIs are read from"))] = "http://prometheus-operated.monitoring.svc:9090"
    health: Annotated[list[HealthSli], Field(min_length=1, description=(
        "SLIs that must all hold for the next step (defaults: error ratio <= 0.1 %, p99 latency <= 200 ms, read "
        "from recording rules; docs/patterns/promotion.md)"))] = DEFAULT_HEALTH
    kserve_default_mode: Literal["Standard", "RawDeployment", "Serverless"] = Field("Standard", description=(
        "the deployment mode of an InferenceService without the serving.kserve.io/deploymentMode annotation "
        "(KServe v0.20's default is Standard)"))

    @field_validator("steps")
    @classmethod
    def _increasing_to_100(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:], strict=False)) or value[-1] != 100:
            raise ValueError(f"steps must increase and end at 100, got {value}")
        return value


class PromotionReconcile(Model):
    """The ``promotion-reconcile`` CronWorkflow (hera_flows/steps/promotion/reconcile.py): starts the promotions whose
    webhook was lost and writes merged / rolled-back back to the registry's version tags."""

    enabled: bool = True
    schedules: Annotated[list[Annotated[str, Field(pattern=CRON_5_FIELDS)]], Field(min_length=1)] = ["*/15 * * * *"]
    max_submissions: Annotated[int, Field(ge=0, le=100, description=(
        "promotions one reconcile starts at most (0: only report and tag)"))] = 5
    active_deadline_seconds: Annotated[int, Field(ge=60)] = 900


class PromotionConfig(Model):
    """Pattern 1: a model-registry promotion becomes a PR that updates the model's InferenceService."""

    enabled: bool = True
    repository: RepositoryConfig | None = None
    agent: dict[str, Any] | None = AGENT_OVERRIDE
    aliases: Annotated[list[Alias], Field(min_length=1)] = ["champion", "production"]
    stages: Annotated[list[Literal["Production", "Staging"]], Field(min_length=1)] = ["Production"]
    webhook: WebhookConfig = WebhookConfig(endpoint="/mlflow")
    legacy_webhook: WebhookConfig = WebhookConfig(port=12001, endpoint="/databricks")
    webhook_sources: list[NetworkSource] = Field(default=[NetworkSource(namespace="mlflow")], description=(
        "who may reach the /mlflow port: a NetworkPolicy on the mlflow EventSource pods admits only these senders "
        "there (OSS MLflow cannot send a bearer token, so its endpoint is open to anyone who can connect; the "
        "guard verifies the signature). Empty: no NetworkPolicy. The legacy (bearer-authenticated) port and the "
        "metrics port stay open."))
    webhook_secret: SecretRef = SecretRef(name="mlflow-webhook", key="secret")
    legacy_webhook_token: SecretRef = SecretRef(name="databricks-webhook", key="token")
    legacy_signing_secret: SecretRef | None = None
    signature_tolerance_seconds: Annotated[int, Field(ge=10, le=86400)] = 300
    rate_limit: RateLimit = RateLimit(requests_per_unit=10, unit="Minute")
    inference_dir: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")] = "inference"
    model_cards_dir: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")] = "model-cards"
    allowed_paths: AllowedPaths = ["inference/**", "model-cards/**"]
    gpu_node_selector_key: str = "nvidia.com/gpu.product"
    smoke: SmokeConfig = SmokeConfig()
    model_card: PromotionModelCard = PromotionModelCard()
    reconcile: PromotionReconcile = PromotionReconcile()
    rollout: PromotionRollout = PromotionRollout()
    active_deadline_seconds: Annotated[int, Field(ge=60)] = 1800

    @model_validator(mode="after")
    def _distinct_endpoints(self) -> PromotionConfig:
        if self.webhook.port == self.legacy_webhook.port and self.webhook.endpoint == self.legacy_webhook.endpoint:
            raise ValueError("webhook and legacy_webhook must differ in port or endpoint")
        if self.webhook_sources and self.webhook.port == self.legacy_webhook.port:
            raise ValueError(f"legacy_webhook.port must differ from webhook.port ({self.webhook.port}) while "
                             "webhook_sources restricts who may reach the MLflow port (a NetworkPolicy admits by "
                             "port, not by path); set webhook_sources: [] to share one port without a policy")
        return self


# --- Bring-your-own event shapes (hera_flows/steps/event_mapping.py), shared by the patterns that map events -----


class EventMapping(Model):
    """Where each field is in an event: expressions of hera-flows' small, safe expression language
    (docs/patterns/drift.md#mapping). Given on a source, it overrides that source's shape field by field."""

    match: Annotated[str | None, Field(max_length=1000, description=(
        "the delivery has this shape at all when this is true (else it is reported as unmappable)"))] = None
    each: Annotated[str | None, Field(max_length=1000, description=(
        "a list in the event: one record per element (read as `item`, its position as `index`)"))] = None
    when: Annotated[str | None, Field(max_length=1000, description=(
        "records for which this is false are not firing (e.g. resolved alerts): listed, never remediated"))] = None
    fields: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")],
                 Annotated[str, Field(max_length=1000)] | None] = Field(default_factory=dict, description=(
        "field name -> expression; null removes a field of the shape"))
    vars: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")], Any] = Field(
        default_factory=dict, description="constants the expressions read as `vars.NAME` (e.g. feature names)")

    def spec(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


HeaderName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,127}$")]


class WebhookSignature(Model):
    """HMAC-SHA256 signatures a sender puts on each delivery (e.g. Arize AX webhooks), verified by the guard on the
    body as Argo Events delivers it; the delivery id is deduplicated, so a retried attempt is not remediated twice.
    The header names are the sender's: copy them from its webhook settings."""

    secret: SecretRef = Field(description="the signing secret shared with the sender")
    header: HeaderName = Field(description="the header holding the signature")
    encoding: Literal["hex", "base64"] = "hex"
    prefix: Annotated[str, Field(max_length=20, pattern=r"^[A-Za-z0-9=,._-]*$", description=(
        "text before the signature in the header, removed before comparing (e.g. sha256=)"))] = ""
    signed: Literal["body", "timestamp.body", "id.timestamp.body"] = Field(default="body", description=(
        "what was signed: the raw body, or the timestamp and/or delivery id joined to it with '.'"))
    id_header: HeaderName = Field(description="the header holding the delivery's event id (deduplicated)")
    attempt_header: HeaderName | None = Field(default=None, description=(
        "the header holding the delivery attempt number (recorded with a duplicate)"))
    timestamp_header: HeaderName | None = Field(default=None, description=(
        "the header holding the signing time (Unix seconds), checked against tolerance_seconds"))
    tolerance_seconds: Annotated[int, Field(ge=10, le=86400)] = 300
    dedupe_seconds: Annotated[int, Field(ge=60, le=30 * 86400, description=(
        "how long a delivery id is remembered (longer than the sender retries)"))] = 86400

    @model_validator(mode="after")
    def _has_what_it_signs(self) -> WebhookSignature:
        if "timestamp" in self.signed and not self.timestamp_header:
            raise ValueError(f"signed: {self.signed} needs timestamp_header")
        return self


# --- Pattern 2: drift remediation (hera_flows/patterns/drift.py) -------------------------------------------


DriftSourceName = Literal["alertmanager", "evidently", "arize", "whylabs", "fiddler", "nannyml"]
DriftShape = Literal["alertmanager", "evidently", "arize", "whylabs", "fiddler", "nannyml", "alibi-detect",
                     "seldon-v2", "custom"]
DriftParamSource = Literal["model", "feature", "severity", "metric", "metric-value", "threshold", "source", "id",
                           "event"]
Severity = Literal["critical", "high", "medium", "warning", "low", "info"]
_DRIFT_PATH = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"


class KafkaTLS(Model):
    """TLS to the Kafka brokers: Secret references only (the Kafka EventSource mounts them)."""

    ca_cert: SecretRef | None = None
    client_cert: SecretRef | None = None
    client_key: SecretRef | None = None

    @model_validator(mode="after")
    def _pair(self) -> KafkaTLS:
        # pkg/apis/events/v1alpha1 ValidateTLSConfig (argoproj/argo-events): an empty tls is refused
        if self.ca_cert is None and self.client_cert is None and self.client_key is None:
            raise ValueError("tls needs a CA certificate, a client certificate and key, or both")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together (mutual TLS)")
        return self


class KafkaSASL(Model):
    """SASL authentication to the Kafka brokers (user and password from Secrets)."""

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    user: SecretRef
    password: SecretRef


class DriftSource(Model):
    """One drift source: a webhook endpoint (`/drift/<name>`) or a Kafka topic, with the shape of what it sends and
    an optional mapping over that shape (docs/patterns/drift.md#mapping)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?$", description=(
        "the endpoint (`<endpoint_prefix>/<name>`) or Kafka event name; also the `event-source` parameter"))]
    kind: Literal["webhook", "kafka"] = "webhook"
    shape: DriftShape | None = Field(default=None, description=(
        "the default mapping: a named tool's, alibi-detect (its predict() dict), seldon-v2 (a V2 inference "
        "response) or custom (no default: give every field); unset: the shape named like the source"))
    mapping: EventMapping | None = None
    severities: dict[Annotated[str, Field(min_length=1, max_length=40)], Severity] = Field(
        default_factory=dict, description="the tool's own severity words -> ours (case-insensitive)")
    signature: WebhookSignature | None = Field(default=None, description="webhook only: verify HMAC signatures")
    # kind kafka
    topic: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$")] = None
    brokers: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+:[0-9]{1,5}$")]] = Field(
        default_factory=list, description="kafka only: bootstrap brokers, host:port")
    consumer_group: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]{1,249}$", description=(
        "kafka only: the consumer group (offsets are committed once the event is on the event bus)"))] = \
        "hera-flows-drift"
    start_from_oldest: bool = Field(default=False, description=(
        "kafka only: a new consumer group starts at the oldest record (else at the newest)"))
    tls: KafkaTLS | None = None
    sasl: KafkaSASL | None = None
    kafka_version: Annotated[str | None, Field(pattern=r"^[0-9]+(\.[0-9]+){1,3}$", description=(
        "kafka only: the brokers' Kafka version (Argo Events assumes 1.0.0)"))] = None

    @model_validator(mode="after")
    def _fits_the_kind(self) -> DriftSource:
        if self.kind == "kafka":
            if not self.topic or not self.brokers:
                raise ValueError(f"drift source {self.name!r}: kind kafka needs topic and brokers")
            if self.signature is not None:
                raise ValueError(f"drift source {self.name!r}: signature is for webhook sources (Kafka records are "
                                 "authenticated by the brokers: tls, sasl)")
        elif self.topic or self.brokers or self.tls or self.sasl or self.kafka_version or self.start_from_oldest:
            raise ValueError(f"drift source {self.name!r}: topic, brokers, tls, sasl, kafka_version and "
                             "start_from_oldest are for kind kafka")
        from hera_flows.steps.drift.normalise import compile_mapping
        from hera_flows.steps.event_mapping import MappingError

        if self.shape is None and self.effective_shape == "custom" and self.mapping is None:
            tools = ", ".join(get_args(DriftSourceName))
            raise ValueError(f"drift source {self.name!r} is not a named tool ({tools}): give its shape "
                             "(alibi-detect, seldon-v2, custom, ...) and a mapping")

        try:
            compile_mapping(self.effective_mapping())
        except MappingError as exc:
            raise ValueError(f"drift source {self.name!r}: mapping: {exc}") from None
        return self

    @property
    def effective_shape(self) -> str:
        if self.shape is not None:
            return self.shape
        return self.name if self.name in get_args(DriftShape) else "custom"

    def effective_mapping(self) -> dict[str, Any]:
        """The shape's default mapping with this source's ``mapping`` over it."""
        from hera_flows.steps.drift.normalise import mapping_spec

        return mapping_spec(self.effective_shape, self.mapping.spec() if self.mapping else None)


class DriftWebhook(Model):
    """The `drift` EventSource: one bearer-authenticated endpoint per webhook source, ``<prefix>/<source>``."""

    port: Annotated[int, Field(ge=1, le=65535)] = 12000
    endpoint_prefix: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*[A-Za-z0-9._-]$")] = "/drift"
    sources: Annotated[list[DriftSourceName] | None, Field(min_length=1, description=(
        "the older spelling of patterns.drift.sources for webhook tools (names only); use that instead"))] = None
    auth_secret: SecretRef = Field(default=SecretRef(name="drift-webhook", key="token"),
                                   description="bearer token every sender must present (EventSource authSecret)")


class DriftRetrain(Model):
    """``mode: retrain``: the team's own training WorkflowTemplate runs after the guard, via ``templateRef``."""

    workflow_template: Annotated[str, Field(pattern=K8S_NAME, max_length=253)] = "train"
    template: Annotated[str, Field(pattern=K8S_NAME, max_length=63,
                                   description="the template inside it to run (usually its entrypoint)")] = "main"
    parameters: Annotated[dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,63}$")], DriftParamSource], Field(
        description="the team template's input parameter -> the drift event field it receives")] = {
        "model": "model", "feature": "feature"}


class DriftMonitor(Model):
    """The `drift-monitor` CronWorkflow: an Evidently DataDriftPreset report, one event per drifted column."""

    enabled: bool = True
    schedules: Annotated[list[Annotated[str, Field(pattern=r"^\S+( \S+){4}$")]], Field(min_length=1)] = ["0 6 * * *"]
    model: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
                                description="the model the monitored features belong to")] = "fraud-detector"
    reference: Annotated[str, Field(min_length=1, description="reference dataset: a path/URL readable by pandas "
                                    "(csv or parquet) or runs:/<run>/<artifact> / models:/ MLflow artifact")] = \
        "s3://ml-data/fraud-detector/reference.parquet"
    current: Annotated[str, Field(min_length=1, description="current window, same forms as reference")] = \
        "s3://ml-data/fraud-detector/current.parquet"
    columns: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9._:-]{0,127}$")]] = Field(
        default=[], description="columns to compare ([] = every column present in both)")
    max_rows: Annotated[int, Field(ge=100, description="larger windows are sampled down to this many rows")] = 200_000
    seed: int = Field(default=42, description="sampling seed: the same data gives the same report")
    severity: Literal["critical", "high", "medium", "warning", "low", "info"] = "high"
    event_url: Annotated[str | None, Field(pattern=r"^https?://", description="where events are posted (default: "
                                           "the EventSource's evidently endpoint)")] = None
    active_deadline_seconds: Annotated[int, Field(ge=60)] = 1800


def _source_object(value: Any) -> Any:
    """A source given by name is that named tool's webhook source."""
    return {"name": value} if isinstance(value, str) else value


class DriftConfig(Model):
    """Pattern 2: a drift alert becomes a retraining PR (or a data-quality issue), with runaway protection."""

    enabled: bool = False
    repository: RepositoryConfig | None = None
    agent: dict[str, Any] | None = AGENT_OVERRIDE
    mode: Literal["pr", "retrain"] = Field(default="pr", description="pr: agent proposes a retraining PR (or a "
                                           "data-quality issue); retrain: run the team's training template directly")
    sources: Annotated[list[Annotated[DriftSource, BeforeValidator(_source_object)]], Field(
        min_length=1, validate_default=True, description=(
            "where drift events come from: a named tool (its endpoint with its default mapping) or a source "
            "object (a webhook or Kafka topic, its shape and mapping)"))] = [
        "alertmanager", "evidently", "arize", "whylabs", "fiddler", "nannyml"]  # type: ignore[list-item]
    webhook: DriftWebhook = DriftWebhook()
    severities: Annotated[list[Severity], Field(
        min_length=1, description="only these (normalised) severities are remediated (the guard filters; other "
                                  "events end as skipped-filter runs with the reason)")] = ["high", "critical"]
    rate_limit: RateLimit = Field(default=RateLimit(requests_per_unit=20, unit="Hour"),
                                  description="per source endpoint; delays (never drops) events above it")
    cooldown_seconds: Annotated[int, Field(ge=60, description="at most one remediation per (model, feature) in this "
                                           "window; later events are skipped (Succeeded, reason recorded)")] = 21600
    max_open_prs_per_model: Annotated[int, Field(ge=1, le=100, description="at most this many open drift PRs per "
                                                 "model (they all edit its params file); past it a key is skipped "
                                                 "without starting its cooldown")] = 3
    max_open_prs: Annotated[int, Field(ge=1, le=1000, description="global ceiling of open drift PRs; past it events "
                                       "are recorded and skipped")] = 10
    max_keys_per_run: Annotated[int, Field(ge=1, le=200, description=(
        "keys (model, feature) one delivery remediates at most; the rest are recorded and wait for the next "
        "delivery (Alertmanager re-notifies every repeat_interval)"))] = 20
    parallelism: Annotated[int, Field(ge=1, le=100, description=(
        "pods of one drift run at once (its keys' remediations; one per model at a time whatever this says)"))] = 5
    branch_prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")] = "drift"
    pipelines_dir: Annotated[str, Field(pattern=_DRIFT_PATH, description="pipelines/<model>/<params_file> holds "
                                        "the model's training parameters")] = "pipelines"
    params_file: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+\.ya?ml$")] = "params.yaml"
    serving_alias: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,255}$", description="MLflow alias of the version "
                                        "serving in production (its metrics go into the context)")] = "champion"
    min_window_days: Annotated[int, Field(ge=1, description="the agent never shortens a training window below "
                                          "this")] = 7
    git_log_limit: Annotated[int, Field(ge=1, le=200)] = 20
    allowed_paths: AllowedPaths = ["pipelines/**"]
    retrain: DriftRetrain = DriftRetrain()
    monitor: DriftMonitor = DriftMonitor()
    active_deadline_seconds: Annotated[int, Field(ge=60)] = 1800

    @model_validator(mode="before")
    @classmethod
    def _older_spelling(cls, data: Any) -> Any:
        """``webhook.sources`` (names only) is the older spelling of ``sources``."""
        webhook = data.get("webhook") if isinstance(data, dict) else None
        if isinstance(webhook, dict) and webhook.get("sources") is not None:
            if "sources" in data:
                raise ValueError("set patterns.drift.sources only: webhook.sources is its older spelling")
            webhook = dict(webhook)
            data = {**data, "sources": webhook.pop("sources"), "webhook": webhook}
        return data

    @model_validator(mode="after")
    def _sources_are_distinct(self) -> DriftConfig:
        names = [s.name for s in self.all_sources()]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"drift source names must be unique: {', '.join(twice)}")
        return self

    def all_sources(self) -> list[DriftSource]:
        """Every source as an object (a named tool becomes a webhook source with its default mapping)."""
        return list(self.sources)


# --- Pattern 3: training-failure triage (hera_flows/patterns/failure_triage.py) --------------------------------


RepoPath = Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")]


# How much log the triage context carries. Through a parameter the whole context stays within 96 KiB (Argo keeps
# parameters in the workflow object and hands them to the next pod in one environment string); through an artifact
# repository it is an object, bounded by what a reader (or a coding agent reading context.json) can use
# (docs/patterns/failure-triage.md, "Bounded logs").
PARAMETER_TAIL_LINES, ARTIFACT_TAIL_LINES = 200, 2000
PARAMETER_MAX_TAIL_LINES, ARTIFACT_MAX_TAIL_LINES = 5000, 100_000
PARAMETER_KEEP_BYTES, ARTIFACT_KEEP_BYTES = 16 * 1024, 256 * 1024
PARAMETER_MAX_KEEP_BYTES, ARTIFACT_MAX_KEEP_BYTES = 256 * 1024, 16 * 1024 * 1024
PARAMETER_CONTEXT_BYTES, ARTIFACT_CONTEXT_BYTES = 96 * 1024, 4 * 1024 * 1024
ARTIFACT_MAX_CONTEXT_BYTES = 64 * 1024 * 1024


class TriageLogs(Model):
    """How much of a failing container's log the context step reads (a training log can be many GB)."""

    tail_lines: Annotated[int | None, Field(ge=1, le=ARTIFACT_MAX_TAIL_LINES, description=(
        "lines requested from the end of the log (read_namespaced_pod_log tail_lines); unset: "
        f"{PARAMETER_TAIL_LINES} without an artifact repository (at most {PARAMETER_MAX_TAIL_LINES}), "
        f"{ARTIFACT_TAIL_LINES} with one (`artifacts`)"))] = None
    limit_bytes: Annotated[int, Field(ge=1024, le=16 * 1024 * 1024, description="hard cap on bytes transferred per "
                                      "container (limit_bytes, and enforced while streaming)")] = 1024 * 1024
    keep_bytes: Annotated[int | None, Field(ge=512, le=ARTIFACT_MAX_KEEP_BYTES, description=(
        "bytes of the tail kept per container (the end of what was read); unset: "
        f"{PARAMETER_KEEP_BYTES // 1024} KiB without an artifact repository (at most "
        f"{PARAMETER_MAX_KEEP_BYTES // 1024} KiB), {ARTIFACT_KEEP_BYTES // 1024} KiB with one"))] = None
    context_bytes: Annotated[int | None, Field(ge=16 * 1024, le=ARTIFACT_MAX_CONTEXT_BYTES, description=(
        "the whole context (log tails shortened from their start until it fits); unset: "
        f"{PARAMETER_CONTEXT_BYTES // 1024} KiB without an artifact repository (also its most: the context is a "
        f"parameter), {ARTIFACT_CONTEXT_BYTES // 1024 // 1024} MiB with one"))] = None
    max_pods: Annotated[int, Field(ge=1, le=20, description="failing pods inspected per workflow")] = 5

    def bounds(self, artifacts: bool) -> tuple[int, int, int]:
        """(tail lines, kept bytes per container, context bytes) as configured, or the transport's defaults."""
        if artifacts:
            defaults = (ARTIFACT_TAIL_LINES, ARTIFACT_KEEP_BYTES, ARTIFACT_CONTEXT_BYTES)
        else:
            defaults = (PARAMETER_TAIL_LINES, PARAMETER_KEEP_BYTES, PARAMETER_CONTEXT_BYTES)
        given = (self.tail_lines, self.keep_bytes, self.context_bytes)
        lines, keep, context = (g if g is not None else d for g, d in zip(given, defaults, strict=True))
        return lines, keep, context

    def parameter_problems(self) -> list[str]:
        """What does not fit the parameter path (no artifact repository), each naming its bound."""
        too_big = [("tail_lines", self.tail_lines, PARAMETER_MAX_TAIL_LINES, ""),
                   ("keep_bytes", self.keep_bytes, PARAMETER_MAX_KEEP_BYTES, " (256 KiB)"),
                   ("context_bytes", self.context_bytes, PARAMETER_CONTEXT_BYTES, " (96 KiB)")]
        return [f"{name} {value} is more than {most}{unit}" for name, value, most, unit in too_big
                if value is not None and value > most]


class TriageFixes(Model):
    """The clear-cut fixes the builtin agent may apply to the pipeline's WorkflowTemplate."""

    memory_factor: Annotated[float, Field(gt=1, le=4, description="OOM: memory limit (and request) x factor")] = 1.5
    memory_cap: Annotated[str, Field(pattern=QUANTITY, description="OOM: never raise a memory limit above this; at "
                                     "the cap an issue is opened instead")] = "64Gi"
    images: Annotated[dict[str, str], Field(description="image-pull: image repository (without tag/digest) -> the "
                                            "known-good reference (tag or @sha256 digest) to pin it to")] = {}
    retry: RetryPolicy = Field(default=RetryPolicy(limit=3, backoff_seconds=30, factor=2, max_backoff_seconds=600),
                               description="infrastructure flakes, reclaimed nodes, network flakes: the retryStrategy "
                                           "added to the failing template")
    shm_size_limit: Annotated[str, Field(pattern=QUANTITY, description="shared memory (/dev/shm, 64Mi in a pod by "
                                         "default) ran out: sizeLimit of the memory-backed emptyDir mounted there; it "
                                         "counts against the container's memory limit")] = "1Gi"


class TriageKubeflow(Model):
    """Kubeflow Pipelines v2 runs: KFP's API server creates them as Argo Workflows with its own labels and no
    WorkflowTemplate; they are recognised by the ``pipeline/runid`` label, need no opt-in label, and a fix goes
    to the compiled pipeline spec (IR YAML) under ``pipelines_dir``."""

    enabled: bool = Field(default=False, description="watch KFP runs (label pipeline/runid) in the watched "
                          "namespaces, with no opt-in label")
    ui_url: Annotated[str | None, Field(pattern=r"^https?://[^\s{}]+$", description="the KFP UI, for a link to "
                                        "the run in PRs and issues (e.g. https://kubeflow.example.com/pipeline)")] = \
        None


class TriageFlyte(Model):
    """Flyte (not on Argo): FlyteAdmin's workflow-execution cloud events, delivered to a bearer-authenticated
    webhook (CloudEvents HTTP binary mode, e.g. by a Kafka/NATS-to-HTTP bridge), reach the same classifier."""

    enabled: bool = False
    webhook: WebhookConfig = WebhookConfig(port=12000, endpoint="/flyte")
    auth_secret: SecretRef = Field(default=SecretRef(name="flyte-webhook", key="token"),
                                   description="bearer token the sender must present (EventSource authSecret)")
    projects: list[Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63)]] = Field(
        default=[], description="only these Flyte projects are triaged ([] = every project)")
    console_url: Annotated[str | None, Field(pattern=r"^https?://[^\s{}]+$", description="FlyteConsole, for a "
                                             "link to the execution (e.g. https://flyte.example.com/console)")] = None


class FailureTriageConfig(Model):
    """Pattern 3: a failed training workflow is classified and becomes a fix PR or an issue for its owner."""

    enabled: bool = False
    repository: RepositoryConfig | None = None
    agent: dict[str, Any] | None = AGENT_OVERRIDE
    namespaces: Annotated[list[Annotated[str, Field(pattern=DNS_LABEL, max_length=63)]], Field(
        min_length=1, description="namespaces whose workflows are watched (one Role per namespace, no cluster "
                                  "access)")] = ["ml-training"]
    opt_in_labels: Annotated[dict[LabelKey, LabelValue], Field(
        description="workflows must carry all these labels to be triaged; {} watches every workflow")] = {
        "mlops.hera-flows/triage": "enabled"}
    image_pull_grace_seconds: Annotated[int, Field(ge=60, le=86400, description="a Running workflow whose pod node "
                                                   "has been in image-pull back-off this long is triaged")] = 600
    max_event_age_seconds: Annotated[int, Field(ge=60, description="failures that finished longer ago are skipped "
                                                "(an EventSource restart re-lists every Failed workflow)")] = 21600
    owner_annotation: Annotated[LabelKey, Field(description="label or annotation of the failed workflow (or its "
                                                "WorkflowTemplate) naming the owner to tag in issues")] = \
        "mlops.hera-flows/owner"
    pipelines_dir: Annotated[RepoPath, Field(description="folder of the repository holding the WorkflowTemplate "
                                             "YAML files, found by metadata.name")] = "pipelines"
    allowed_paths: AllowedPaths = ["pipelines/**"]
    owners: dict[Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(/[a-z0-9]([-a-z0-9]*[a-z0-9])?)?$",
                                      max_length=127)],
                  Annotated[str, Field(min_length=1, max_length=100)]] = Field(
        default={}, description="who to tag when the run names no owner (owner_annotation): a namespace (Argo and "
                                "KFP runs), a Flyte `project/domain` or `project` -> a GitHub user or org/team")
    kubeflow: TriageKubeflow = TriageKubeflow()
    flyte: TriageFlyte = TriageFlyte()
    logs: TriageLogs = TriageLogs()
    fixes: TriageFixes = TriageFixes()
    rate_limit: RateLimit = RateLimit(requests_per_unit=5, unit="Minute")
    active_deadline_seconds: Annotated[int, Field(ge=60)] = 1800


# --- Pattern 4: fairness audit (hera_flows/patterns/fairness_audit.py) ----------------------------------------


COLUMN = Annotated[str, Field(min_length=1, max_length=256)]
REPO_PATH = r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$"


# How many models the fairness audit fans out over: through parameters every result reaches the fan-in inside one
# environment string (Linux: 128 KiB), so the parameter path stays small; through an artifact repository the
# results are objects and the workflow holds one node per pod of `models_per_pod` models (docs/patterns/
# fairness-audit.md, "Limits", has the measured numbers). The default stays under the measured 75 typical results
# (3 attributes, one intersection: ~1.7 KB each) with a margin; smaller results fit more, up to the maximum.
PARAMETER_DEFAULT_MODELS = 60
PARAMETER_MAX_MODELS = 1000
ARTIFACT_DEFAULT_MODELS = 10_000
ARTIFACT_MAX_MODELS = 100_000


class FairnessEvaluation(Model):
    """How the audit finds and reads each model's evaluation data. MLflow tags on the model version (or, failing
    that, on the registered model) override these defaults per model: ``fairness.dataset``,
    ``fairness.label_column``, ``fairness.prediction_column``, ``fairness.sensitive_attributes`` (comma-separated)."""

    dataset: str = Field(
        "evaluation/eval.parquet",
        description="Default dataset when a model has no `fairness.dataset` tag: a path relative to the model "
        "version's run artifacts (or any absolute path / URI). Parquet or CSV.",
    )
    label_column: COLUMN = "label"
    prediction_column: str = Field(
        "", description="Column with precomputed predictions; empty: load the model (mlflow pyfunc) and predict."
    )
    positive_label: Annotated[str, Field(min_length=1)] = "1"
    threshold: Annotated[float, Field(ge=0, le=1, description="Scores (floats) at or above it are positive.")] = 0.5
    sensitive_attributes: Annotated[list[COLUMN], Field(min_length=1)] = ["sex", "race", "age_group"]
    intersections: list[Annotated[list[COLUMN], Field(min_length=2, max_length=2)]] = Field(
        [], description="Pairs of attributes audited together, e.g. [[sex, race]]."
    )
    min_group_count: Annotated[int, Field(ge=0)] = Field(
        30, description="Groups with fewer rows are flagged as small and left out of the disparities."
    )


class FairnessAuditConfig(Model):
    """Pattern 4: a weekly fairness audit of every production model, one model-card refresh PR."""

    enabled: bool = False
    repository: RepositoryConfig | None = None
    agent: dict[str, Any] | None = AGENT_OVERRIDE
    schedule: Annotated[str, Field(pattern=CRON_5_FIELDS)] = Field(
        "0 6 * * 1", description="Cron schedule of the calendar EventSource (default Mondays 06:00)."
    )
    timezone: str = "UTC"
    rate_limit: RateLimit = RateLimit(requests_per_unit=1, unit="Hour")
    aliases: list[Alias] = Field(
        ["production"], description="A registered model whose alias is one of these is audited (that version)."
    )
    stages: list[Literal["Production", "Staging"]] = Field(
        [], description="Legacy registry stages: the latest version in one of these stages is audited too."
    )
    parallelism: Annotated[int, Field(ge=1, le=500)] = Field(
        10, description="How many audit pods run at once (the workflow's `parallelism`)."
    )
    max_models: Annotated[int | None, Field(ge=1, le=ARTIFACT_MAX_MODELS)] = Field(
        None, description=(
            "Refuse to audit more production models in one run. Unset: the transport's own limit, "
            f"{PARAMETER_DEFAULT_MODELS} without an artifact repository (every result reaches the fan-in in one "
            f"parameter; at most {PARAMETER_MAX_MODELS}), {ARTIFACT_DEFAULT_MODELS} with one (`artifacts`)."))
    models_per_pod: Annotated[int, Field(ge=1, le=1000)] = Field(
        50, description="With an artifact repository: models one audit pod audits in turn (the fan-out runs "
        "ceil(models / models_per_pod) pods, so 5,000 models are 100 workflow nodes, not 5,000)."
    )
    evaluation: FairnessEvaluation = FairnessEvaluation()
    model_cards_dir: Annotated[str, Field(pattern=REPO_PATH)] = "model-cards"
    policy_file: Annotated[str, Field(pattern=REPO_PATH)] = Field(
        "model-cards/POLICY.md", description="Thresholds: YAML front matter of a markdown file, or a .yaml file."
    )
    allowed_paths: AllowedPaths = ["model-cards/**"]
    branch_prefix: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9._/-]*[a-z0-9]$")] = "model-card-refresh"
    audit_resources: Resources = Resources(
        requests=ResourceSpec(cpu="500m", memory="1Gi"), limits=ResourceSpec(cpu="2", memory="4Gi")
    )
    active_deadline_seconds: Annotated[int, Field(ge=60)] = 7200

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA time zone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _selects_something(self) -> FairnessAuditConfig:
        if not self.aliases and not self.stages:
            raise ValueError("set at least one of 'aliases' or 'stages': otherwise no model is ever audited")
        return self

    def model_limit(self, artifacts: bool) -> int:
        """The most models one run audits: ``max_models``, or the transport's default."""
        if self.max_models is not None:
            return self.max_models
        return ARTIFACT_DEFAULT_MODELS if artifacts else PARAMETER_DEFAULT_MODELS


# --- Pattern 5: post-promotion rollback (hera_flows/patterns/rollback.py) -------------------------------------


class RollbackWebhook(Model):
    """The `rollback` EventSource: one bearer-authenticated Alertmanager endpoint."""

    port: Annotated[int, Field(ge=1, le=65535)] = 12000
    endpoint: Annotated[str, Field(pattern=r"^/[A-Za-z0-9._/-]*$")] = "/rollback/alertmanager"
    auth_secret: SecretRef = Field(default=SecretRef(name="rollback-webhook", key="token"),
                                   description="bearer token Alertmanager presents (EventSource authSecret)")


class RollbackConfig(Model):
    """Pattern 5 (opt-in): a production SLI alert soon after a promotion merged becomes a revert PR of it. It edits
    the promotion's repository (``patterns.promotion``'s, and its inference_dir / model_cards_dir)."""

    enabled: bool = False
    agent: dict[str, Any] | None = AGENT_OVERRIDE
    webhook: RollbackWebhook = RollbackWebhook()
    severities: Annotated[list[Literal["critical", "high", "medium", "warning", "low", "info"]], Field(
        min_length=1, description="alert severities (labels.severity, the drift pattern's words) that roll back")] = [
        "critical", "high"]
    window_seconds: Annotated[int, Field(ge=60, description=(
        "an alert this long after the promotion merged at most is blamed on it; a later one rolls nothing back"))] = \
        86400
    cooldown_seconds: Annotated[int, Field(ge=60, description=(
        "at most one rollback per model in this window (besides never two of one promotion)"))] = 3600
    rate_limit: RateLimit = Field(default=RateLimit(requests_per_unit=5, unit="Hour"),
                                  description="the Sensor's trigger; delays (never drops) deliveries above it")
    allowed_paths: AllowedPaths = ["inference/**", "model-cards/**"]
    active_deadline_seconds: Annotated[int, Field(ge=60)] = 1800

    @property
    def repository(self) -> RepositoryConfig | None:
        return None  # the promotion's (Config.repository_for)


class Patterns(Model):
    promotion: PromotionConfig = PromotionConfig()
    drift: DriftConfig = DriftConfig()
    failure_triage: FailureTriageConfig = FailureTriageConfig()
    fairness_audit: FairnessAuditConfig = FairnessAuditConfig()
    rollback: RollbackConfig = RollbackConfig()


# --- Maintenance (hera_flows/blocks/gc.py) -------------------------------------------------------------------


class LeaseGcConfig(Model):
    """The `hera-flows-gc` CronWorkflow: deletes the guards' Lease records (cooldowns, week claims) once expired."""

    enabled: bool = Field(True, description="generate the CronWorkflow (whenever any pattern is enabled)")
    schedule: Annotated[str, Field(pattern=CRON_5_FIELDS)] = Field(
        "17 3 * * *", description="Cron schedule of the clean-up (default daily 03:17)")
    grace_seconds: Annotated[int, Field(ge=0)] = Field(
        86400, description="how long past its expiry (time + leaseDurationSeconds) a record is kept before deletion")
    active_deadline_seconds: Annotated[int, Field(ge=60)] = 900


class MaintenanceConfig(Model):
    """Housekeeping that runs next to the patterns."""

    lease_gc: LeaseGcConfig = LeaseGcConfig()


# --- Artifacts (hera_flows/blocks/artifacts.py) ----------------------------------------------------------------


class S3Repository(Model):
    """An S3-compatible bucket (AWS S3, GCS through its S3 interoperability endpoint, MinIO, SeaweedFS) that
    hera-flows writes into the ConfigMap it generates, in Argo's artifact-repository format."""

    endpoint: Annotated[str, Field(pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$", description=(
        "host[:port] without a scheme, e.g. s3.amazonaws.com, storage.googleapis.com or minio.minio.svc:9000"))]
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    region: Annotated[str | None, Field(pattern=r"^[a-z0-9-]+$")] = None
    insecure: bool = Field(False, description="plain http (a MinIO inside the cluster without TLS)")
    access_key_secret: SecretRef | None = None
    secret_key_secret: SecretRef | None = None
    use_sdk_creds: bool = Field(False, description=(
        "credentials from the environment (IRSA, workload identity) instead of the two Secrets"))

    @model_validator(mode="after")
    def _credentials(self) -> S3Repository:
        keys = (self.access_key_secret is None, self.secret_key_secret is None)
        if keys[0] != keys[1]:
            raise ValueError("give both access_key_secret and secret_key_secret, or neither")
        if self.use_sdk_creds == (not keys[0]):
            raise ValueError("give either access_key_secret + secret_key_secret or use_sdk_creds: true")
        return self


class ArtifactRepository(Model):
    """Argo's ``artifactRepositoryRef``: a key of a ConfigMap in the workflows' namespace holding the repository.
    With ``s3`` hera-flows generates that ConfigMap (generated/artifact-repository.yaml); without it the ConfigMap
    must exist already (your platform's)."""

    config_map: Annotated[str, Field(pattern=K8S_NAME, max_length=253)] = "hera-flows-artifacts"
    key: Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$")] = "s3"
    s3: S3Repository | None = None


class ArtifactsConfig(Model):
    """Where large step results travel (the fairness audit's per-model results, its context and published
    cards; the triage context with its log tails; each drift key's context). Without this section they travel as
    Argo parameters, with the limits documented per pattern."""

    repository: ArtifactRepository | Literal["default"] = Field(description=(
        "`default`: Argo's default repository (the namespace's artifact-repositories ConfigMap, else the "
        "controller's artifactRepository); or a ConfigMap reference, optionally with the S3 bucket to generate it"))
    key_prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$", description=(
        "objects go to <key_prefix>/<workflow name>/...; a bucket lifecycle rule on this prefix catches what the "
        "artifact GC could not delete"))] = "hera-flows"
    gc: Literal["on-workflow-deletion", "never"] = Field(default="on-workflow-deletion", description=(
        "`on-workflow-deletion`: Argo's artifact GC deletes a run's objects when its Workflow is deleted (the "
        "workflow TTL), as the ServiceAccount hera-flows-artifact-gc, which needs delete access to the bucket; "
        "`never`: objects stay until a bucket lifecycle rule removes them"))


class Config(Model):
    """The whole of `config/flows.yaml`, with any overlays merged over it (`--config` repeated: examples/overlay/).
    """

    namespace: Annotated[str, Field(pattern=DNS_LABEL, max_length=63)] = "mlops-automation"
    image: Annotated[str, Field(min_length=1, pattern=r"^\S+$")] = "ghcr.io/hera-flows/hera-flows:0.1.0"
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    image_pull_secrets: Annotated[list[Annotated[str, Field(pattern=K8S_NAME, max_length=253)]], Field(
        description="Secrets (type kubernetes.io/dockerconfigjson, in `namespace`) for a private registry: set as "
        "imagePullSecrets on every pod hera-flows defines (workflow and cron pods, EventSource and Sensor pods)"
    )] = []
    event_bus: Annotated[str, Field(pattern=K8S_NAME)] = "default"
    repository: RepositoryConfig | None = None
    agent: AgentConfig = AgentConfig()
    forge: ForgeConfig = ForgeConfig()
    mlflow: MlflowConfig = MlflowConfig()
    workflow: WorkflowDefaults = WorkflowDefaults()
    patterns: Patterns = Patterns()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    artifacts: ArtifactsConfig | None = Field(None, description=(
        "an artifact repository for large results (docs/artifacts.md); unset: everything travels as parameters"))

    @model_validator(mode="after")
    def _every_enabled_pattern_has_a_repository(self) -> Config:
        for name in type(self.patterns).model_fields:
            pattern = getattr(self.patterns, name)
            own = self.patterns.promotion.repository if name == "rollback" else pattern.repository
            if getattr(pattern, "enabled", False) and own is None and self.repository is None:
                where = "patterns.promotion (whose repository it reverts)" if name == "rollback" else "the pattern"
                raise ValueError(f"pattern {name!r} needs a 'repository' (set it on {where} or at the top level)")
        return self

    @model_validator(mode="after")
    def _slugs_fit_the_forge(self) -> Config:
        # GitLab projects may sit in subgroups (group/subgroup/name); a GitHub repository is always owner/name.
        if self.forge.kind == "github":
            repos = [self.repository, *(getattr(self.patterns, n).repository for n in type(self.patterns).model_fields)]
            for repo in repos:
                if repo is not None and repo.slug is not None and repo.slug.count("/") != 1:
                    raise ValueError(f"repository slug {repo.slug!r} is not owner/name, as GitHub requires "
                                     "(group/subgroup/name needs forge.kind: gitlab)")
        return self

    @model_validator(mode="after")
    def _forge_api_fits_the_kind(self) -> Config:
        # The layering trap: the base sets api_url for GitHub, an overlay switches only forge.kind to gitlab.
        if self.forge.kind == "gitlab" and self.forge.api_url.rstrip("/") == FORGE_API_URLS["github"]:
            raise ValueError("forge.api_url is GitHub's API but forge.kind is gitlab: set forge.api_url too "
                             "(https://gitlab.com/api/v4 or https://HOST/api/v4)")
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

    @model_validator(mode="after")
    def _triage_records_outlive_the_event_window(self) -> Config:
        # The per-uid dedupe Lease belongs to the triage workflow: it must live as long as a failure is accepted.
        triage = self.patterns.failure_triage
        kept = min(self.workflow.ttl_seconds_after_success, self.workflow.ttl_seconds_after_failure)
        if triage.enabled and kept < triage.max_event_age_seconds:
            raise ValueError(
                f"workflow TTLs ({kept}s) must be at least patterns.failure_triage.max_event_age_seconds "
                f"({triage.max_event_age_seconds}s): the dedupe records are deleted with their workflow"
            )
        return self

    @model_validator(mode="after")
    def _every_pattern_agent_is_valid(self) -> Config:
        for name in type(self.patterns).model_fields:
            try:
                self.agent_for(name)
            except ValidationError as exc:
                problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'agent'}: {e['msg']}" for e in exc.errors())
                raise ValueError(f"patterns.{name}.agent (over the top-level agent): {problems}") from None
        return self

    @model_validator(mode="after")
    def _triage_logs_fit_their_transport(self) -> Config:
        problems = self.patterns.failure_triage.logs.parameter_problems() if self.artifacts is None else []
        if problems:
            raise ValueError(
                f"patterns.failure_triage.logs: {'; '.join(problems)}: without an artifact repository the triage "
                "context travels as a parameter (at most 96 KiB); configure `artifacts.repository` "
                "(docs/artifacts.md) for larger log tails")
        return self

    @model_validator(mode="after")
    def _fairness_fits_its_transport(self) -> Config:
        fairness = self.patterns.fairness_audit
        if self.artifacts is None and (fairness.max_models or 0) > PARAMETER_MAX_MODELS:
            raise ValueError(
                f"patterns.fairness_audit.max_models {fairness.max_models} needs an artifact repository: without "
                f"one every result reaches the fan-in in one parameter (at most {PARAMETER_MAX_MODELS} models); "
                "configure `artifacts.repository` (docs/artifacts.md)")
        return self

    def agent_for(self, pattern: str) -> AgentConfig:
        """The agent a pattern (its config key) runs: its own ``agent`` section over the top-level one."""
        return agent_for(self.agent, getattr(self.patterns, pattern).agent)

    def repository_for(self, pattern: str) -> RepositoryConfig:
        """The pattern's own repository, or the top-level default (rollback: the promotion's, which it reverts)."""
        if pattern == "rollback":
            pattern = "promotion"
        repo = getattr(self.patterns, pattern).repository or self.repository
        assert repo is not None  # guaranteed by validation
        return repo


def load_config(*paths: str | Path) -> Config:
    """Load and validate one configuration file, or several layered ones (``config/flows.yaml`` then e.g. an
    environment overlay): each later file deep-merges over the ones before it. Raise ConfigError with one line
    per problem, naming the file and line that set the offending value."""
    if not paths:
        raise ConfigError(["no configuration file given"])
    layers: list[tuple[str, str]] = []
    for path in map(Path, paths):
        try:
            layers.append((path.read_text(encoding="utf-8"), str(path)))
        except OSError as exc:
            raise ConfigError([f"{path}: cannot read the configuration: {exc.strerror or exc}"]) from None
        except UnicodeDecodeError:
            raise ConfigError([f"{path}: cannot read the configuration: not UTF-8 text"]) from None
    return parse_layers(layers)


def parse_config(text: str, source: str = "<config>") -> Config:
    return parse_layers([(text, source)])


def parse_layers(layers: list[tuple[str, str]]) -> Config:
    """Validate the deep merge of ``(text, source)`` layers, later over earlier: mappings merge key by key;
    lists, scalars and null replace what was there (a list is one setting: an overlay that sets
    ``aliases: [production]`` means exactly that list, not an addition to the base's)."""
    parsed = [(*_read_yaml(text, source), source) for text, source in layers]
    data: dict[str, Any] = {}
    for _, layer, _ in parsed:
        data = merge_layers(data, layer)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        nodes = [(node, source) for node, _, source in parsed]
        raise ConfigError([_describe(error, nodes) for error in exc.errors()]) from None


def merge_layers(base: Any, overlay: Any) -> Any:
    """``overlay`` over ``base``: mappings merge recursively, anything else (lists, scalars, null) replaces."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge_layers(base[key], value) if key in base else value
        return merged
    return overlay


def _read_yaml(text: str, source: str) -> tuple[yaml.Node | None, dict[str, Any]]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = getattr(exc, "position", None)  # a ReaderError (a forbidden character) has no mark
        line = (mark.line + 1 if mark is not None
                else text.count("\n", 0, position) + 1 if position is not None else None)
        where = f":{line}" if line is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{source}{where}: not valid YAML: {problem}"]) from None
    except RecursionError:
        raise ConfigError([f"{source}: not valid YAML: nested too deeply"]) from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: the configuration must be a mapping of settings, not {type(data).__name__}"])
    return node, data


def _describe(error: ErrorDetails, layers: list[tuple[yaml.Node | None, str]]) -> str:
    loc = [part for part in error["loc"] if not isinstance(part, str) or not part.startswith("function-")]
    where = _locate(layers, loc)
    # a key with a newline or control character is shown quoted: one problem stays one line
    field = ".".join(str(part) if str(part).isprintable() else repr(part) for part in loc) or "(top level)"
    message = error["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if error["type"] == "extra_forbidden":
        message = "unknown field (check the spelling; see docs/configuration.md)"
    elif error["type"] not in ("missing",) and "input" in error and not isinstance(error["input"], (dict, list)):
        message = f"{message} (got {error['input']!r})"
    return f"{where}: {field}: {message}"


def _locate(layers: list[tuple[yaml.Node | None, str]], loc: list[Any]) -> str:
    """``file:line`` of the value at ``loc``: the layer that reaches deepest along ``loc`` set it (the last such
    layer, since later layers win). A whole-configuration problem in a layered config names every file."""
    best: tuple[int, str, int | None] = (-1, layers[-1][1], None)
    for node, source in layers:
        depth, line = _match(node, loc)
        if depth >= best[0]:
            best = (depth, source, line)
    depth, source, line = best
    if depth <= 0 and len(layers) > 1:
        return " + ".join(source for _, source in layers)
    return f"{source}:{line}" if line else source


def _match(node: yaml.Node | None, loc: list[Any]) -> tuple[int, int | None]:
    """How many parts of ``loc`` exist in the YAML ``node`` (-1: empty document), and the 1-based line of the
    deepest one found."""
    if node is None:
        return -1, None
    line = node.start_mark.line + 1
    for depth, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == part:
                    line = key.start_mark.line + 1
                    node = value
                    break
            else:
                return depth, line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return depth, line
    return len(loc), line
