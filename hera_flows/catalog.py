"""Every pattern, declared once: its id, configuration key, label, templates, steps, pod-side modules and PR
labels (its defaults, such as the allowed paths, live in the configuration model). The generator
(hera_flows/patterns/), the step table, the builtin editor, publish, review's layouts and the prompts all read
these records.

It imports nothing but the standard library, so the step image (which never imports Hera or the configuration
model) and the generator share it. Adding a pattern: a folder ``hera_flows/steps/<id>/`` (its steps, ``editor.py``,
``pr.py``, ``prompt.md``), a module ``hera_flows/patterns/<config_key>.py`` with ``build(cfg)``, a configuration
section in hera_flows/config.py, and one record in :data:`PATTERNS` (docs/architecture.md, "Adding a pattern").
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Pattern:
    id: str  # step-name prefix and the pod-side folder hera_flows/steps/<id>/
    config_key: str  # patterns.<config_key> in the configuration, and hera_flows/patterns/<config_key>.py
    label: str  # value of the hera-flows.io/pattern label and of every metric's `pattern` label
    title: str
    templates: tuple[str, ...]  # the WorkflowTemplates and CronWorkflows it generates
    steps: tuple[str, ...]  # its own step modules under hera_flows/steps/<id>/ ("guard" -> step "<id>-guard")
    pr_labels: tuple[str, ...]  # labels of its PRs and issues
    aliases: tuple[tuple[str, str], ...] = ()  # earlier step names -> current ones
    # A run whose agent changes nothing is a valid outcome (the fairness audit of a week where no card moved);
    # otherwise a coding agent that changes nothing and asks for no issue did not do its task (publish says so).
    may_change_nothing: bool = False

    @property
    def package(self) -> str:
        return f"hera_flows.steps.{self.id}"

    def step_name(self, module: str) -> str:
        return f"{self.id}-{module.replace('_', '-')}"

    @property
    def editor(self) -> str:
        """Module of the builtin editor: ``SETTINGS`` (its flags), ``builtin_edit``, ``writable_paths``."""
        return f"{self.package}.editor"

    @property
    def review_text(self) -> str:
        """"module:function" rendering its PR: (context, summary, refused, key, branch) -> (title, body[, comment])."""
        return f"{self.package}.pr:review_text"

    @property
    def prompt(self) -> str:
        """The packaged prompt template (``string.Template``), relative to hera_flows/."""
        return f"steps/{self.id}/prompt.md"


PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        id="promotion", config_key="promotion", label="promotion", title="Model promotion",
        templates=("mlflow-promotion", "promotion-reconcile"),
        steps=("guard", "context", "smoke", "record", "reconcile"),
        pr_labels=("hera-flows", "model-promotion"),
        aliases=(("guard", "promotion-guard"), ("context-mlflow", "promotion-context"), ("smoke", "promotion-smoke")),
    ),
    Pattern(
        id="drift", config_key="drift", label="drift", title="Drift remediation",
        templates=("drift-remediation", "drift-retrain", "drift-monitor"),
        steps=("guard", "context", "smoke", "monitor"),
        pr_labels=("hera-flows", "drift"),
        aliases=(("guard-drift", "drift-guard"), ("context-drift", "drift-context"), ("smoke-drift", "drift-smoke")),
    ),
    Pattern(
        id="triage", config_key="failure_triage", label="failure_triage", title="Training failure triage",
        templates=("failure-triage", "flyte-failure-triage"),
        steps=("guard", "context", "classify", "smoke", "flyte_guard", "flyte_context"),
        pr_labels=("hera-flows", "failure-triage"),
        aliases=(("guard-triage", "triage-guard"), ("context-triage", "triage-context"),
                 ("classify-triage", "triage-classify"), ("smoke-triage", "triage-smoke")),
    ),
    Pattern(
        id="fairness", config_key="fairness_audit", label="fairness-audit", title="Weekly fairness audit",
        templates=("fairness-audit",), steps=("guard", "list_models", "audit", "collect", "smoke"),
        pr_labels=("hera-flows", "fairness-audit"), may_change_nothing=True,
        aliases=(("guard-fairness", "fairness-guard"), ("smoke-fairness", "fairness-smoke")),
    ),
    Pattern(
        id="rollback", config_key="rollback", label="rollback", title="Post-promotion rollback",
        templates=("model-rollback",), steps=("guard", "context"),
        pr_labels=("hera-flows", "rollback"),
    ),
)
BY_ID = {p.id: p for p in PATTERNS}
BY_CONFIG_KEY = {p.config_key: p for p in PATTERNS}

# Steps every pattern shares (hera_flows/steps/<module>.py), and the housekeeping that comes with any pattern.
SHARED_STEPS: dict[str, str] = {
    "prepare-workspace": "hera_flows.steps.workspace",
    "agent-builtin": "hera_flows.steps.builtin_agent",
    "agent-run": "hera_flows.steps.agent_run",
    "publish": "hera_flows.steps.publish",
    "review": "hera_flows.steps.review",
    "report": "hera_flows.steps.report",
    "claims": "hera_flows.steps.claims",
    "gc-leases": "hera_flows.steps.gc",
}
MAINTENANCE_LABEL = "maintenance"


def pattern(pattern_id: str) -> Pattern:
    """The record of ``pattern_id``; a KeyError names the known ids."""
    if pattern_id not in BY_ID:
        raise KeyError(f"unknown pattern {pattern_id!r} (known: {', '.join(sorted(BY_ID))})")
    return BY_ID[pattern_id]


def step_modules() -> dict[str, str]:
    """Every step name -> its module (whose ``CONTRACT`` and ``main`` the dispatcher uses)."""
    table = dict(SHARED_STEPS)
    for p in PATTERNS:
        for module in p.steps:
            table[p.step_name(module)] = f"{p.package}.{module}"
    return table


def step_aliases() -> dict[str, str]:
    """Earlier step names (still in the templates of workflows started before an upgrade) -> current ones."""
    return {old: new for p in PATTERNS for old, new in p.aliases}
