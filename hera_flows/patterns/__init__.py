"""One module per pattern, each composed from the shared blocks; this registry is what `generate` renders."""

from __future__ import annotations

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


def registry() -> dict[str, Callable[[Config], PatternManifests]]:
    from hera_flows.patterns import promotion

    return {"promotion": promotion.build}
