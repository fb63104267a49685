"""Seldon Core v2 serving resources a promotion edits: ``Model`` and ``Experiment`` (``mlops.seldon.io/v1alpha1``).

A ``Model`` serves one artifact (``spec.storageUri``) on a Server; an ``Experiment`` splits the traffic of its
``default`` model between ``candidates[{name, weight}]`` (weights are relative) and can ``mirror`` a percentage to
another model. Both are validated here against the vendored Seldon Core v2.10.2 CRDs (hera_flows/steps/promotion/
crd.py translates their structural schemas), plus the name rule every Kubernetes object name and Seldon model
name (a Kafka topic part and an inference path segment) satisfies: a DNS-1123 label.
"""

from __future__ import annotations

import re
from typing import Any

from hera_flows.steps.promotion import crd

SELDON_VERSION = "v2.10.2"
API_VERSION = "mlops.seldon.io/v1alpha1"
GROUP = "mlops.seldon.io"
SCHEMA_FILES = {
    "Model": "seldon-core-v2.10.2-model-v1alpha1.schema.json.gz",
    "Experiment": "seldon-core-v2.10.2-experiment-v1alpha1.schema.json.gz",
}
NAME_PATTERN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX_LENGTH = 63
# The header Seldon Core 2's mesh routes an inference request by (the path alone does not select the model).
MODEL_HEADER = "Seldon-Model"


def seldon_kind(doc: Any) -> str | None:
    """``Model`` or ``Experiment`` when ``doc`` is meant as one of them (a mistyped kind of that group included, so
    it gets checked), else None."""
    if not isinstance(doc, dict) or not str(doc.get("apiVersion", "")).startswith(GROUP + "/"):
        return None
    kind = str(doc.get("kind", ""))
    for known in SCHEMA_FILES:
        if kind.lower().rstrip("s") == known.lower():
            return known
    return kind or None


def validate(doc: Any) -> list[str]:
    """Every problem that would make the API server reject ``doc`` (a Seldon Model or Experiment)."""
    kind = seldon_kind(doc)
    if kind not in SCHEMA_FILES:
        return [f"kind: must be one of {', '.join(SCHEMA_FILES)} for {API_VERSION}, got "
                f"{crd.describe_value(doc.get('kind') if isinstance(doc, dict) else doc)}"]
    problems = crd.validate(doc, schema_file=SCHEMA_FILES[kind], api_version=API_VERSION, kind=kind,
                            resource=f"a Seldon {kind}", name_problem=_name_problem)
    if kind == "Experiment":
        problems.extend(_experiment_problems(doc))
    return problems


def _name_problem(name: str) -> str | None:
    if NAME_PATTERN.match(name) and len(name) <= NAME_MAX_LENGTH:
        return None
    return (f"{name!r} is not a valid Seldon resource name (a DNS-1123 label of at most {NAME_MAX_LENGTH} "
            "characters: lower-case letters, digits and '-')")


def _experiment_problems(doc: dict[str, Any]) -> list[str]:
    """What the schema cannot say and Seldon's scheduler refuses: no candidate, a negative weight, all weights 0,
    a candidate named twice, a default that is not a candidate."""
    spec = _spec(doc)
    candidates = [c for c in spec.get("candidates") or [] if isinstance(c, dict)]
    weights: list[int] = [c["weight"] for c in candidates if isinstance(c.get("weight"), int)]
    names = [c.get("name") for c in candidates]
    problems = []
    if any(w < 0 for w in weights):
        problems.append("spec.candidates: weights must not be negative")
    if weights and not any(w > 0 for w in weights):
        problems.append("spec.candidates: at least one weight must be positive")
    if len(set(names)) != len(names):
        problems.append("spec.candidates: a model is named twice")
    default = spec.get("default")
    if default is not None and default not in names:
        problems.append(f"spec.default: {default!r} is not one of the candidates")
    return problems


def experiment_weights(doc: dict[str, Any]) -> dict[str, int]:
    """``{candidate: weight}`` of an Experiment (its entries that have both)."""
    spec = _spec(doc)
    return {str(c["name"]): int(c["weight"]) for c in spec.get("candidates") or []
            if isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("weight"), int)}


def _spec(doc: dict[str, Any]) -> dict[str, Any]:
    spec = doc.get("spec")
    return spec if isinstance(spec, dict) else {}
