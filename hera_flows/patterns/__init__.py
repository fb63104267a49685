"""One module per pattern, each composed from the shared blocks; this registry is what `generate` renders."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hera_flows.config import Config


@dataclass
class PatternManifests:
    """Everything one pattern installs."""

    workflow_templates: list[dict[str, Any]] = field(default_factory=list)
    event_sources: list[dict[str, Any]] = field(default_factory=list)
    sensors: list[dict[str, Any]] = field(default_factory=list)
    cron_workflows: list[dict[str, Any]] = field(default_factory=list)
    # Extra ServiceAccounts/Roles/RoleBindings (and ClusterRoles) this pattern needs beyond the shared ones.
    rbac: list[dict[str, Any]] = field(default_factory=list)
    # Who may reach this pattern's EventSource pods (generated/networkpolicies.yaml).
    network_policies: list[dict[str, Any]] = field(default_factory=list)


def registry() -> dict[str, Callable[[Config], PatternManifests]]:
    """Config key -> the pattern module's ``build``, for every pattern record (hera_flows/catalog.py)."""
    from hera_flows.catalog import PATTERNS

    return {p.config_key: importlib.import_module(f"hera_flows.patterns.{p.config_key}").build for p in PATTERNS}
