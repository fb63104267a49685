"""Validating KServe InferenceService manifests the way the API server would, before a PR is merged.

The official v1beta1 ``openAPIV3Schema`` (KServe v0.20.0) is vendored in ``hera_flows/schemas``; the translation of
its Kubernetes structural semantics is shared with the other serving resources (hera_flows/steps/promotion/crd.py).
On top of the schema, the name must satisfy KServe's admission webhook (a DNS-1123 label that starts with a
letter).
"""

from __future__ import annotations

import re
from typing import Any

from hera_flows.steps.promotion import crd
from hera_flows.steps.promotion.crd import QUANTITY_PATTERN, translate_schema  # noqa: F401 - part of this API

KSERVE_VERSION = "v0.20.0"
SCHEMA_FILE = "kserve-v0.20.0-inferenceservice-v1beta1.schema.json.gz"
API_VERSION = "serving.kserve.io/v1beta1"
KIND = "InferenceService"

# KServe's webhook (IsvcNameFmt) and Kubernetes' DNS-1123 label limit of 63 characters.
NAME_PATTERN = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
NAME_MAX_LENGTH = 63


def looks_like_inference_service(doc: Any) -> bool:
    """Whether a YAML document is meant as an InferenceService (tolerating a mistyped kind, so it gets checked)."""
    if not isinstance(doc, dict):
        return False
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.lower().rstrip("s") == "inferenceservice":
        return True
    return kind is None and str(doc.get("apiVersion", "")).startswith("serving.kserve.io/")


def validate_inference_service(doc: Any) -> list[str]:
    """Every problem that would make the API server (or KServe's webhook) reject ``doc``, as ``path: message``.

    An empty list means the manifest is valid against the KServe v0.20.0 InferenceService v1beta1 schema.
    """
    if not isinstance(doc, dict):
        return [f"(root): an InferenceService must be a mapping, got {crd.describe_value(doc)}"]
    return crd.validate(doc, schema_file=SCHEMA_FILE, api_version=API_VERSION, kind=KIND,
                        resource="an InferenceService", name_problem=_name_problem)


def _name_problem(name: str) -> str | None:
    if NAME_PATTERN.match(name) and len(name) <= NAME_MAX_LENGTH:
        return None
    return (f"{name!r} is not a valid InferenceService name (a DNS-1123 label of at most {NAME_MAX_LENGTH} "
            "characters: lower-case letters, digits and '-', starting with a letter and ending with a letter or digit)")


def schema_validator() -> Any:
    """The jsonschema validator for the translated vendored schema, built once per process."""
    return crd.validator(SCHEMA_FILE)
