"""Validating custom resources the way the API server would, against their vendored CRD ``openAPIV3Schema``.

The official schemas (KServe's InferenceService, Seldon Core v2's Model and Experiment) are vendored in
``hera_flows/schemas`` by ``tools/vendor_schemas.py``. A CRD schema is a Kubernetes *structural* schema, which plain
JSON Schema reads differently, so it is translated once per process before ``jsonschema`` validates against it:

- ``x-kubernetes-int-or-string`` accepts an integer or a string (quantities: ``1`` and ``"1"``, ``"500m"``);
- an object that does not say ``x-kubernetes-preserve-unknown-fields`` accepts only the fields it lists:
  the API server prunes the others, and kubectl's strict field validation (the default) rejects them;
- ``format: int32`` / ``int64`` are range checks; list types ``set`` and ``map`` forbid duplicate entries;
- ``null`` values of map fields are pruned, as the API server does for fields that are not ``nullable``;
- a CRD leaves ``metadata`` open (the API server validates ObjectMeta itself), so the common ObjectMeta
  fields are spelled out here; each resource module adds its own name rule (hera_flows/steps/promotion/kserve.py,
  seldon.py).
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from importlib import resources
from typing import Any

QUANTITY_PATTERN = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$", re.IGNORECASE)

_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}
_OBJECT_META: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string"},
        "generateName": {"type": "string"},
        "namespace": {"type": "string", "maxLength": 63, "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["apiVersion", "kind", "name", "uid"],
                "properties": {
                    "apiVersion": {"type": "string"},
                    "kind": {"type": "string"},
                    "name": {"type": "string"},
                    "uid": {"type": "string"},
                    "controller": {"type": "boolean"},
                    "blockOwnerDeletion": {"type": "boolean"},
                },
            },
        },
        "uid": {"type": "string"},
        "resourceVersion": {"type": "string"},
        "generation": {"type": "integer", "format": "int64"},
        "creationTimestamp": {"type": "string", "format": "date-time"},
        "deletionTimestamp": {"type": "string", "format": "date-time"},
        "deletionGracePeriodSeconds": {"type": "integer", "format": "int64"},
        "managedFields": {"type": "array", "items": {"type": "object"}},
        "selfLink": {"type": "string"},
    },
}



def validate(doc: Any, *, schema_file: str, api_version: str, kind: str, resource: str,
             name_problem: Any = None) -> list[str]:
    """Every problem that would make the API server reject ``doc`` as ``api_version``/``kind`` (``path: message``);
    ``resource`` names the resource in messages (e.g. "an InferenceService"); ``name_problem(name)`` is the
    resource's own rule for ``metadata.name`` (a message, or None when the name is fine)."""
    if not isinstance(doc, dict):
        return [f"(root): {resource} must be a mapping, got {describe_value(doc)}"]
    problems: list[str] = []
    if doc.get("apiVersion") != api_version:
        problems.append(f"apiVersion: must be {api_version}, got {describe_value(doc.get('apiVersion'))}")
    if doc.get("kind") != kind:
        problems.append(f"kind: must be {kind}, got {describe_value(doc.get('kind'))}")
    metadata = doc.get("metadata")
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if name is None:
        problems.append("metadata.name: required field is missing")
    elif isinstance(name, str) and name_problem is not None and (problem := name_problem(name)):
        problems.append(f"metadata.name: {problem}")
    found: set[str] = set()
    for error in validator(schema_file).iter_errors(_prune_nulls(doc)):
        found.update(_messages(error))
    problems.extend(sorted(found))
    return problems


@functools.cache
def validator(schema_file: str) -> Any:
    """The jsonschema validator for a vendored schema (translated), built once per process and file."""
    from jsonschema import Draft202012Validator, FormatChecker, ValidationError, validators

    raw = resources.files("hera_flows").joinpath("schemas").joinpath(schema_file).read_bytes()
    schema = translate_schema(json.loads(gzip.decompress(raw)))
    schema["properties"]["metadata"] = _OBJECT_META

    def list_map_keys(validator: Any, keys: list[str], instance: Any, node: dict[str, Any]) -> Any:
        if not validator.is_type(instance, "array"):
            return
        item_fields = (node.get("items") or {}).get("properties") or {}
        seen: set[str] = set()
        for index, item in enumerate(instance):
            if not isinstance(item, dict):
                continue
            identity = {k: item.get(k, (item_fields.get(k) or {}).get("default")) for k in keys}
            token = json.dumps(identity, sort_keys=True)
            if token in seen:
                described = ", ".join(f"{k}={v!r}" for k, v in identity.items())
                yield ValidationError(f"duplicate entry ({described})", path=[index])
            seen.add(token)

    checker = FormatChecker(formats=())
    for fmt, (low, high) in _INT_RANGES.items():
        checker.checks(fmt)(functools.partial(_in_range, low=low, high=high))
    checker.checks("date-time")(lambda value: not isinstance(value, str) or bool(_RFC3339.match(value)))

    cls = validators.extend(Draft202012Validator, {"x-kubernetes-list-map-keys": list_map_keys})
    return cls(schema, format_checker=checker)


def _in_range(value: Any, *, low: int, high: int) -> bool:
    return not isinstance(value, int) or isinstance(value, bool) or low <= value <= high


def translate_schema(node: Any) -> Any:
    """Kubernetes structural-schema semantics expressed in plain JSON Schema (see the module docstring)."""
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if "properties" in out:
        out["properties"] = {key: translate_schema(value) for key, value in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = translate_schema(out["items"])
    if isinstance(out.get("additionalProperties"), dict):
        out["additionalProperties"] = translate_schema(out["additionalProperties"])
    for combinator in ("anyOf", "oneOf", "allOf"):
        if combinator in out:
            out[combinator] = [translate_schema(sub) for sub in out[combinator]]
    if out.get("x-kubernetes-int-or-string") and not ("anyOf" in out or "oneOf" in out):
        out["oneOf"] = [{"type": "integer"}, {"type": "string"}]
    if out.get("x-kubernetes-list-type") == "set":
        out["uniqueItems"] = True
    is_object = out.get("type") == "object" or "properties" in out
    if is_object and "additionalProperties" not in out and not out.get("x-kubernetes-preserve-unknown-fields"):
        out["additionalProperties"] = False
    return out


def _prune_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _prune_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_prune_nulls(v) for v in value]
    return value


def _messages(error: Any) -> list[str]:
    """Readable ``path: message`` lines for one jsonschema error (kubectl-like wording)."""
    path = list(error.absolute_path)
    where = _format_path(path)
    schema, instance, keyword = error.schema, error.instance, error.validator
    if keyword == "additionalProperties" and error.validator_value is False and isinstance(instance, dict):
        known = schema.get("properties") or {}
        return [f"{_format_path([*path, key])}: unknown field" for key in instance if key not in known]
    if keyword == "required" and isinstance(instance, dict):
        return [
            f"{_format_path([*path, key])}: required field is missing"
            for key in error.validator_value
            if key not in instance
        ]
    if keyword == "type":
        return [f"{where}: must be {_article(error.validator_value)}, got {describe_value(instance)}"]
    if keyword in ("anyOf", "oneOf") and schema.get("x-kubernetes-int-or-string"):
        return [f"{where}: must be an integer or a string, got {describe_value(instance)}"]
    if keyword == "pattern":
        if error.validator_value == QUANTITY_PATTERN:
            return [f"{where}: {instance!r} is not a Kubernetes quantity (e.g. 1, 500m, 2Gi)"]
        return [f"{where}: {instance!r} does not match {error.validator_value}"]
    if keyword == "format":
        fmt = error.validator_value
        if fmt in _INT_RANGES:
            low, high = _INT_RANGES[fmt]
            return [f"{where}: {instance} is out of range for {fmt} ({low}..{high})"]
        return [f"{where}: {instance!r} is not a valid {fmt}"]
    if keyword == "enum":
        allowed = ", ".join(repr(v) for v in error.validator_value)
        return [f"{where}: must be one of {allowed}, got {describe_value(instance)}"]
    return [f"{where}: {error.message[:300]}"]


def _format_path(path: list[Any]) -> str:
    text = ""
    for token in path:
        if isinstance(token, int):
            text += f"[{token}]"
        elif re.fullmatch(r"[A-Za-z0-9_-]+", str(token)):
            text += f".{token}" if text else str(token)
        else:
            text += f"[{json.dumps(str(token))}]"
    return text or "(root)"


def _article(json_type: Any) -> str:
    if isinstance(json_type, list):
        return " or ".join(_article(t) for t in json_type)
    return {"integer": "an integer", "object": "a mapping", "array": "a list"}.get(json_type, f"a {json_type}")


def describe_value(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        shown = value if len(value) <= 60 else value[:57] + "..."
        return f"the string {shown!r}"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__
