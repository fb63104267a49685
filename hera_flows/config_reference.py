"""docs/configuration.md, rendered from the configuration model so the reference cannot drift from the code."""

from __future__ import annotations

import json
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from hera_flows.config import Config

HEADER = """# Configuration reference

`config/flows.yaml` is validated against this model: unknown fields are errors, and every problem is reported
as one line with its YAML line number (exit code 2). Generated from `hera_flows/config.py` by
`make docs`; a test fails when this file is out of date.

"""


def _type_name(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return f"[{annotation.__name__}](#{annotation.__name__.lower()})"
        return getattr(annotation, "__name__", str(annotation))
    args = [a for a in get_args(annotation) if a is not type(None)]
    if str(origin).endswith("Literal"):
        return " \\| ".join(json.dumps(a) for a in get_args(annotation))
    if origin in (list, tuple):
        return f"list of {_type_name(args[0])}" if args else "list"
    if origin is dict:
        return "mapping"
    if len(args) == 1:
        inner = _type_name(args[0])
        return f"{inner} (optional)" if type(None) in get_args(annotation) else inner
    metadata_type = getattr(annotation, "__origin__", None)
    return _type_name(metadata_type) if metadata_type else " \\| ".join(_type_name(a) for a in args)


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    elif isinstance(value, list):
        value = [v.model_dump(mode="json", exclude_defaults=True) if isinstance(v, BaseModel) else v for v in value]
    text = json.dumps(value, sort_keys=True)
    return f"`{text}`" if len(text) <= 60 else "see section"


def _constraints(field: FieldInfo) -> str:
    found = []
    for item in field.metadata:
        for name in ("pattern", "ge", "le", "min_length", "max_length"):
            value = getattr(item, name, None)
            if value is not None:
                found.append(f"{name} {value}")
    return ", ".join(found)


def _models(model: type[BaseModel], seen: list[type[BaseModel]]) -> None:
    if model in seen:
        return
    seen.append(model)
    for field in model.model_fields.values():
        for candidate in (field.annotation, *get_args(field.annotation)):
            for inner in (candidate, *get_args(candidate)):
                if isinstance(inner, type) and issubclass(inner, BaseModel):
                    _models(inner, seen)


def render_reference() -> str:
    models: list[type[BaseModel]] = []
    _models(Config, models)
    out = [HEADER]
    for model in models:
        out.append(f"## {model.__name__}\n\n")
        doc = (model.__doc__ or "").strip().splitlines()
        if doc and not doc[0].startswith("!!!"):
            out.append(f"{doc[0]}\n\n")
        out.append("| field | type | default | constraints |\n| --- | --- | --- | --- |\n")
        for name, field in model.model_fields.items():
            constraints = _constraints(field).replace("|", "\\|")
            out.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {constraints} |\n")
        out.append("\n")
    return "".join(out).rstrip() + "\n"


def main() -> int:
    print(render_reference(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
