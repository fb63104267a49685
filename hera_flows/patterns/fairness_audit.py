"""Pattern 4 — weekly fairness audit."""

from __future__ import annotations

from hera_flows.config import Config
from hera_flows.patterns import PatternManifests


def build(cfg: Config) -> PatternManifests:
    return PatternManifests()
