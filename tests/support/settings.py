"""Editor settings and step flags as a configuration produces them, for tests that call editors or steps directly.

Step flags and editor settings have no defaults of their own (the configuration model is the only place defaults
live, hera_flows/steps/contract.py), so a test builds them the way the generator does: from a configuration (the
model's defaults plus a repository) through the pattern module's ``editor_settings``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import importlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from hera_flows import catalog
from hera_flows.config import Config, load_config
from hera_flows.steps.contract import render_flags

ROOT = Path(__file__).resolve().parents[2]
REPOSITORY = {"url": "https://github.com/acme/ml-gitops.git", "slug": "acme/ml-gitops"}


def config(**sections: Any) -> Config:
    """The configuration model's defaults with a repository; ``sections`` replace top-level keys."""
    return Config.model_validate({"repository": REPOSITORY, **sections})


def editor_settings(pattern_id: str, cfg: Config | None = None, **overrides: Any) -> dict[str, Any]:
    """The pattern editor's settings (flag dest -> value) as ``cfg`` configures them, with ``overrides``."""
    record = catalog.pattern(pattern_id)
    module = importlib.import_module(f"hera_flows.patterns.{record.config_key}")
    values = dict(module.editor_settings(cfg or config()))
    unknown = sorted(set(overrides) - set(values))
    if unknown:
        raise KeyError(f"{pattern_id} has no editor setting(s) {unknown}")
    return {**values, **overrides}


def editor_argv(pattern_id: str, cfg: Config | None = None, **overrides: Any) -> list[str]:
    """The editor settings as the flags prepare, the builtin agent and publish receive."""
    editor = importlib.import_module(catalog.pattern(pattern_id).editor)
    return render_flags(editor.SETTINGS, editor_settings(pattern_id, cfg, **overrides), where=pattern_id)


def editor_args(pattern_id: str, cfg: Config | None = None, **overrides: Any) -> argparse.Namespace:
    """The editor settings parsed as the pod parses them (what ``builtin_edit``/``writable_paths`` receive)."""
    editor = importlib.import_module(catalog.pattern(pattern_id).editor)
    parser = argparse.ArgumentParser()
    for flag in editor.SETTINGS:
        parser.add_argument(f"--{flag.name}", dest=flag.dest, type=flag.parse, required=not flag.optional)
    return parser.parse_args(editor_argv(pattern_id, cfg, **overrides))


def promotion_options(**changes: Any) -> Any:
    from hera_flows.steps.promotion import editor

    return dataclasses.replace(editor.options(editor_args("promotion")), **changes)


def triage_options(**changes: Any) -> Any:
    from hera_flows.steps.triage import editor

    return dataclasses.replace(editor.options(editor_args("triage")), **changes)


def prompt(pattern_id: str, context: dict[str, Any], allowed_paths: list[str] | None = None,
           cfg: Config | None = None, workspace: str = "/workspace", **overrides: Any) -> str:
    """The external agent's prompt as prepare renders it: the configured settings and allowed paths."""
    from pathlib import Path

    from hera_flows.steps.workspace import render

    cfg = cfg or config()
    section = getattr(cfg.patterns, catalog.pattern(pattern_id).config_key)
    allowed = list(allowed_paths) if allowed_paths is not None else list(section.allowed_paths)
    return render(pattern_id, context, allowed, editor_settings(pattern_id, cfg, **overrides), Path(workspace))


@functools.lru_cache(maxsize=8)
def _rendered(cfg_json: str) -> tuple[dict[str, Any], ...]:
    from hera_flows.generate import render

    cfg = Config.model_validate_json(cfg_json)
    documents: list[dict[str, Any]] = []
    for path, text in sorted(render(cfg).items()):
        if path.endswith(".yaml"):
            documents.extend(d for d in yaml.safe_load_all(text) if isinstance(d, dict))
    return tuple(documents)


def generated_flags(step: str, cfg: Config | None = None, *, template: str | None = None) -> list[str]:
    """The flags the generated templates pass to ``hera-flows step <step>`` (without ``--outputs``).

    ``cfg`` defaults to config/flows.yaml, the configuration ``make generate`` renders (every pattern enabled).
    A test that calls a step's ``main`` directly puts its own flags after these: argparse keeps the last value,
    so the test changes only what it names and every other flag is what ``generate`` writes for ``cfg``.
    """
    cfg = cfg or load_config(ROOT / "config" / "flows.yaml")
    for doc in _rendered(cfg.model_dump_json()):
        if template and doc.get("metadata", {}).get("name") != template:
            continue
        for _, container in step_containers(doc):
            args = container["args"]
            if args[1] == step:
                return [a for a in args[2:] if not a.startswith("--outputs=")]
    raise KeyError(f"no generated template runs `hera-flows step {step}`")


def step_containers(doc: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(template, container) for every container of a WorkflowTemplate/CronWorkflow running `hera-flows step`."""
    spec = doc.get("spec") or {}
    spec = spec.get("workflowSpec", spec)
    for template in spec.get("templates", []):
        containers = [template.get("container"), *(template.get("containerSet") or {}).get("containers", [])]
        for container in filter(None, containers):
            if (container.get("args") or [])[:1] == ["step"]:
                yield template, container
