"""The builtin promotion editor: point the model's InferenceService at the promoted version, record it in the
model card, and explain the change in /workspace/summary.md.

Only the fields a promotion decides are touched, each with a surgical text edit (``yaml_patch``), so the PR
diff shows exactly what changed and the team's comments and layout survive. Deployment fields (runtime
version, replicas, GPU, CPU, memory) change only when the model version carries the corresponding tag; an
absent tag leaves the manifest as the team wrote it. The summary compares against the base commit of the
checkout when there is one, so running the editor twice gives the same files and the same summary.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hera_flows.steps import model_cards as model_card
from hera_flows.steps.common import StepError
from hera_flows.steps.contract import Flag
from hera_flows.steps.markdown import inline_code, table_cell
from hera_flows.steps.promotion import canary
from hera_flows.steps.promotion.deployment_tags import parse_deployment_tags
from hera_flows.steps.promotion.serving_manifest import (
    MODEL_ANNOTATION,
    SELDON,
    VERSION_ANNOTATION,
    find_serving_manifest,
    serving_component,
)
from hera_flows.steps.yaml_patch import (
    MISSING,
    FieldChange,
    PathKey,
    Scalar,
    format_path,
    load_documents,
    read_value,
    same_data,
)

GPU_RESOURCE = "nvidia.com/gpu"
LABEL_KEY = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                       r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


@dataclass(frozen=True)
class PromotionOptions:
    inference_dir: str
    model_cards_dir: str
    gpu_node_selector_key: str


@dataclass(frozen=True)
class Edit:
    path: tuple[PathKey, ...]
    value: Scalar
    why: str


@dataclass
class PromotionResult:
    manifest: str  # relative path of the InferenceService file
    changes: list[tuple[FieldChange, str]]  # against the base commit, with the reason
    unchanged: list[Edit]  # fields the promotion sets that already had the right value
    card: str  # relative path of the model card
    card_action: str  # created | added | updated | unchanged
    notes: list[str] = field(default_factory=list)
    target_label: str = "InferenceService"
    extra: list[str] = field(default_factory=list)  # changes that are not one field (canary blocks, documents)
    step: int = 100  # the canary step this change writes (100: all traffic)
    summary: str = ""


# The pattern's settings the editor, publish (writable paths) and the prompt read: flags of agent-builtin,
# publish and prepare-workspace, filled by the generator from patterns.promotion (hera_flows/steps/contract.py).
# Names the prompt template mentions that the code defines (hera_flows/steps/prompts.py substitutes them).
PROMPT_CONSTANTS = {"gpu_resource": GPU_RESOURCE, "model_annotation": MODEL_ANNOTATION,
                    "version_annotation": VERSION_ANNOTATION}

SETTINGS = (
    Flag("inference-dir", "folder of the InferenceService manifests"),
    Flag("model-cards-dir", "folder of the model cards"),
    Flag("gpu-node-selector-key", "node label that selects the GPU type of the deployment tags"),
)


def options(settings: argparse.Namespace) -> PromotionOptions:
    return PromotionOptions(settings.inference_dir, settings.model_cards_dir, settings.gpu_node_selector_key)


def builtin_edit(repo: Path, context: dict[str, Any], settings: argparse.Namespace) -> str:
    """Entry point for `agent-builtin --pattern=promotion`: edit, return the summary."""
    return promote(repo, context, options(settings)).summary


def writable_paths(repo: Path, context: dict[str, Any], settings: argparse.Namespace) -> list[str]:
    """A promotion may change the model's own InferenceService (found as the editor finds it) and model card."""
    options_ = options(settings)
    model = _text(context, "model")
    found = find_serving_manifest(repo, model, options_.inference_dir)
    card = model_card.card_path(repo, options_.model_cards_dir, model).relative_to(repo).as_posix()
    return [card] + ([found.relative] if found is not None else [])


def promote(repo: Path, context: dict[str, Any], options: PromotionOptions) -> PromotionResult:
    """Edit the InferenceService and the model card in ``repo``; return what changed and the summary."""
    model, version = _text(context, "model"), _text(context, "version")
    _text(context, "alias")
    if not re.fullmatch(r"[0-9A-Za-z._-]{1,64}", version):
        raise StepError(f"context version {version!r} is not a model registry version")
    for name, value in (("inference-dir", options.inference_dir), ("model-cards-dir", options.model_cards_dir)):
        if value.startswith("/") or ".." in value.split("/"):
            raise StepError(f"--{name}={value!r} must be a relative folder inside the repository")
    if not LABEL_KEY.match(options.gpu_node_selector_key):
        raise StepError(f"--gpu-node-selector-key={options.gpu_node_selector_key!r} is not a Kubernetes label key")

    found = find_serving_manifest(repo, model, options.inference_dir)
    if found is None:
        raise StepError(
            f"no InferenceService or Seldon Model for model {model!r} under {options.inference_dir}/ (searched for the "
            "annotation "
            f"{MODEL_ANNOTATION}: {model} or metadata.name {model!r}'s DNS form)"
        )
    if found.path.is_symlink():
        raise StepError(f"{found.relative} is a symbolic link; the builtin agent edits regular files only")
    planner = plan_seldon_edits if found.target == SELDON else plan_edits
    edits, notes = planner(found.document, context, options)

    card = model_card.card_path(repo, options.model_cards_dir, model)
    card_rel = card.relative_to(repo).as_posix()
    # Baselines first (the base commit, or the files as found): what the summary reports changes against.
    manifest_base = _baseline(repo, found.relative)
    card_base = _baseline(repo, card_rel)

    # The manifest: one surgical edit per field. The card: this version's entry added, or replaced in place.
    # Both are computed before either is written, so a failure leaves the checkout as it was.
    current = found.path.read_bytes().decode("utf-8")
    rollout = canary.Rollout.from_context(context)
    updated, reported, extra = canary.apply(current, found, [(e.path, e.value, e.why) for e in edits], context,
                                            rollout)
    edits = [Edit(path, value, why) for path, value, why in reported]
    entry = model_card.render_entry(context)
    existing = card.read_bytes().decode("utf-8") if card.is_file() else None
    new_card = model_card.upsert_entry(existing, model, version, entry)
    base_doc = _document(manifest_base if manifest_base is not None else current, found.document_index)
    changes, unchanged = [], []
    for edit in edits:
        old = read_value(base_doc, edit.path)
        if old is not MISSING and same_data(old, edit.value):
            unchanged.append(edit)
        else:
            changes.append((FieldChange(edit.path, old, edit.value), edit.why))

    if updated != current:
        found.path.write_bytes(updated.encode("utf-8"))
    if new_card != existing:
        card.parent.mkdir(parents=True, exist_ok=True)
        card.write_bytes(new_card.encode("utf-8"))
    card_action = _card_action(card_base, version, entry)

    result = PromotionResult(found.relative, changes, unchanged, card_rel, card_action, notes,
                             "Seldon Model" if found.target == SELDON else "InferenceService", extra,
                             rollout.step if rollout is not None and rollout.mode != canary.MODELMESH else 100)
    result.summary = render_summary(context, result)
    return result


def plan_edits(
    document: dict[str, Any], context: dict[str, Any], options: PromotionOptions
) -> tuple[list[Edit], list[str]]:
    """The fields this promotion sets, in a fixed order, and notes about tags that were ignored."""
    model, version, storage_uri, source, deployment, sources = _facts(context)

    def _from_tags(name: str) -> str:
        return from_tags(name, sources)

    predictor = ((document.get("spec") or {}).get("predictor")) or {}
    component = serving_component(document)
    if component is None:
        raise StepError(
            "the InferenceService has neither spec.predictor.model nor a framework predictor (sklearn, xgboost, ...); "
            "the builtin agent cannot set its storageUri"
        )
    base = ("spec", "predictor", component)
    edits = [Edit((*base, "storageUri"), storage_uri,
                  f"the artifacts of version {version} (source {inline_code(source)})")]
    notes: list[str] = []

    runtime_version = deployment["runtime_version"]
    if runtime_version is not None:
        edits.append(Edit((*base, "runtimeVersion"), runtime_version, _from_tags("runtime_version")))

    for name, key in (("replica_min", "minReplicas"), ("replica_max", "maxReplicas")):
        if deployment[name] is not None:
            edits.append(Edit(("spec", "predictor", key), deployment[name], _from_tags(name)))

    resources = predictor[component].get("resources") if isinstance(predictor[component], dict) else None
    resources = resources if isinstance(resources, dict) else {}
    requests = resources.get("requests") if isinstance(resources.get("requests"), dict) else None
    limits = resources.get("limits") if isinstance(resources.get("limits"), dict) else None
    gpu_type, gpu_count = deployment["gpu_type"], deployment["gpu_count"]
    if gpu_type is not None:
        count = gpu_count or 1
        why = f"{_from_tags('gpu_type')} ({count} GPU{'s' if count > 1 else ''} of type {gpu_type})"
        edits.append(Edit((*base, "resources", "limits", GPU_RESOURCE), count, why))
        if requests is not None:
            edits.append(Edit((*base, "resources", "requests", GPU_RESOURCE), count,
                              why + "; GPU requests must equal limits"))
        edits.append(Edit(("spec", "predictor", "nodeSelector", options.gpu_node_selector_key), gpu_type,
                          f"schedule on the GPU type in {_from_tags('gpu_type')}"))
    elif gpu_count is not None:
        notes.append("The gpu_count tag is set without gpu_type, so GPU resources were left unchanged.")

    for name in ("cpu", "memory"):
        value = deployment[name]
        if value is None:
            continue
        edits.append(Edit((*base, "resources", "requests", name), value, _from_tags(name)))
        if limits is not None and name in limits:
            edits.append(Edit((*base, "resources", "limits", name), value,
                              f"{_from_tags(name)} (the manifest already limits {name})"))

    edits.append(Edit(("metadata", "annotations", MODEL_ANNOTATION), model, "the registered model this serves"))
    edits.append(Edit(("metadata", "annotations", VERSION_ANNOTATION), version, "the registered version this serves"))
    return edits, notes


def _facts(context: dict[str, Any]) -> tuple[str, str, str, str, dict[str, Any], dict[str, Any]]:
    """(model, version, storage URI, its source, deployment tags, their sources) of the promoted version. The
    context step validated the tags already; the context reached us through a parameter, so they are checked again
    with the same rules rather than trusted."""
    model, version = _text(context, "model"), _text(context, "version")
    model_version = context.get("model_version") or {}
    storage_uri = model_version.get("storage_uri")
    if not isinstance(storage_uri, str) or not storage_uri.strip():
        raise StepError("the context has no model_version.storage_uri to deploy")
    deployment = parse_deployment_tags(context.get("deployment") or {})
    raw_sources = context.get("deployment_sources")
    sources: dict[str, Any] = raw_sources if isinstance(raw_sources, dict) else {}
    return model, version, storage_uri, str(model_version.get("source") or storage_uri), deployment, sources


def plan_seldon_edits(
    document: dict[str, Any], context: dict[str, Any], options: PromotionOptions
) -> tuple[list[Edit], list[str]]:
    """A Seldon Core v2 ``Model``: ``spec.storageUri``, replicas and memory from the deployment tags, the version
    annotations. The Model's Server decides the runtime, GPUs and CPU, so those tags are noted, not applied."""
    model, version, storage_uri, source, deployment, sources = _facts(context)
    edits = [Edit(("spec", "storageUri"), storage_uri,
                  f"the artifacts of version {version} (source {inline_code(source)})")]
    for name, key in (("replica_min", "minReplicas"), ("replica_max", "maxReplicas")):
        if deployment[name] is not None:
            edits.append(Edit(("spec", key), deployment[name], from_tags(name, sources)))
    if deployment["memory"] is not None:
        edits.append(Edit(("spec", "memory"), deployment["memory"], from_tags("memory", sources)))
    ignored = [name for name in ("runtime_version", "gpu_type", "gpu_count", "cpu") if deployment[name] is not None]
    notes = [f"The tag(s) {', '.join(inline_code(n) for n in ignored)} do not apply to a Seldon Model (its Server "
             "decides the runtime, GPUs and CPU) and were left out."] if ignored else []
    edits.append(Edit(("metadata", "annotations", MODEL_ANNOTATION), model, "the registered model this serves"))
    edits.append(Edit(("metadata", "annotations", VERSION_ANNOTATION), version, "the registered version this serves"))
    return edits, notes


def render_summary(context: dict[str, Any], result: PromotionResult) -> str:
    code = inline_code
    model, version, alias = context["model"], context["version"], context["alias"]
    previous = (context.get("serving") or {}).get("current_version")
    lines = [
        f"# Promote {code(model)} version {table_cell(version)} to {code(alias)}",
        "",
        f"The model registry gave version {code(version)} of {code(model)} the alias {code(alias)}"
        + (f" (the InferenceService served version {code(previous)})." if previous else "."),
        f"This change points the model's {result.target_label} at the new version and records the promotion in the "
        "model card. Written by the builtin hera-flows agent (deterministic, no LLM).",
        "",
        "## Changes",
        "",
    ]
    if result.step < 100:
        lines[2:2] = [f"This is canary step {result.step} %: the rest of the traffic stays on the serving version; "
                      "the next step is proposed only while the health SLIs hold.", ""]
    for change, why in result.changes:
        old = "(absent)" if change.old is MISSING else code(_show(change.old))
        lines.append(f"- {code(result.manifest)} {code(change.dotted)}: {old} → {code(_show(change.new))} — {why}.")
    lines += [f"- {code(result.manifest)}: {line}." for line in result.extra]
    card_text = {
        "created": "created, with the entry for this version",
        "added": "added the entry for this version",
        "updated": "replaced the entry for this version",
        "unchanged": "the entry for this version was already up to date",
    }[result.card_action]
    lines.append(f"- {code(result.card)}: {card_text}.")
    if result.unchanged:
        lines += ["", "Already as required (left untouched):", ""]
        lines += [f"- {code(format_path(e.path))} = {code(_show(e.value))}" for e in result.unchanged]
    # No metrics table here: the PR's own "Metrics" section shows it (pr.py), once.
    if result.notes:
        lines += ["", "## Notes", ""] + [f"- {note}" for note in result.notes]
    return "\n".join(lines) + "\n"


# --- helpers --------------------------------------------------------------------------------------------------


def from_tags(name: str, sources: dict[str, Any]) -> str:
    """Why a field changed: the tag, and whose tags it came from (the model version's or its run's)."""
    source = sources.get(name)
    whose = "the model version's tags" if source in (None, "model version") else \
        f"the tags of {inline_code(str(source))}"
    return f"`deployment.{name}` from {whose}"


def _text(context: dict[str, Any], key: str) -> str:
    value = context.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value:
        raise StepError(f"the context has no {key!r}")
    return value


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _document(text: str, index: int) -> Any:
    documents = load_documents(text)
    return documents[index] if index < len(documents) else None


def _baseline(repo: Path, relative: str) -> str | None:
    """The file at the checkout's base commit (None: not there), or the working tree's file when ``repo`` is not a
    git checkout. Comparing with the base keeps the summary the same when the editor runs a second time."""
    from hera_flows.steps.gitrepo import run_git

    path = repo / relative
    if (repo / ".git").exists():
        try:
            if run_git(["rev-parse", "--verify", "--quiet", "HEAD"], cwd=repo, check=False).returncode == 0:
                shown = run_git(["show", f"HEAD:{relative}"], cwd=repo, check=False)
                return shown.stdout if shown.returncode == 0 else None
        except (OSError, UnicodeDecodeError):
            pass
    return path.read_bytes().decode("utf-8") if path.is_file() else None


def _card_action(base: str | None, version: str, entry: str) -> str:
    if base is None:
        return "created"
    start, end = model_card.start_marker(version), model_card.end_marker(version)
    begin = base.find(start)
    if begin < 0:
        return "added"
    finish = base.find(end, begin)
    old_entry = base[begin:finish + len(end)] + "\n" if finish >= 0 else ""
    return "unchanged" if old_entry == entry else "updated"
