"""Pattern 3 — training-failure triage."""

from __future__ import annotations

from hera_flows.config import Config
from hera_flows.patterns import PatternManifests


def build(cfg: Config) -> PatternManifests:
    return PatternManifests()
