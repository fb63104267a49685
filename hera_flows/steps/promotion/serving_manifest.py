"""Finding the manifest that serves a model in a GitOps repository (shared by the context step, the agent and the
smoke test): a KServe ``InferenceService`` or a Seldon Core v2 ``Model``, whichever the repository holds for it.

The serving target is chosen per model from what is there: one team serves on KServe, another on Seldon, and the
promotion edits each in its own terms (hera_flows/steps/promotion/editor.py)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from hera_flows.steps.common import StepError

MODEL_ANNOTATION = "hera-flows.io/mlflow-model"
VERSION_ANNOTATION = "hera-flows.io/mlflow-version"


# KServe serves a model from spec.predictor.model, or from the older framework-specific keys.
FRAMEWORK_KEYS = ("sklearn", "xgboost", "lightgbm", "tensorflow", "pytorch", "onnx", "triton", "paddle", "pmml",
                  "huggingface")


def serving_component(document: dict[str, Any]) -> str | None:
    """The key under ``spec.predictor`` that holds the served model: ``model`` or a framework key."""
    spec = document.get("spec")
    predictor = spec.get("predictor") if isinstance(spec, dict) else None
    if not isinstance(predictor, dict):
        return None
    for key in ("model", *FRAMEWORK_KEYS):
        if isinstance(predictor.get(key), dict):
            return key
    return None


KSERVE, SELDON = "kserve", "seldon"
# (API group, kind) of the resources that serve a model, and the target each means.
SERVING_KINDS = {("serving.kserve.io", "InferenceService"): KSERVE, ("mlops.seldon.io", "Model"): SELDON}
TARGET_LABELS = {KSERVE: "KServe InferenceService", SELDON: "Seldon Model"}


def target_of(document: Any) -> str | None:
    """``kserve`` or ``seldon`` when the YAML document is a resource that serves a model, else None."""
    if not isinstance(document, dict):
        return None
    kind = str(document.get("kind", ""))
    if kind == "InferenceService":
        return KSERVE  # by its kind alone, as it always was (its apiVersion is checked by the smoke test)
    group = str(document.get("apiVersion", "")).split("/")[0]
    return SERVING_KINDS.get((group, kind))  # "Model" is a common kind name: only Seldon's counts


def storage_uri(document: dict[str, Any]) -> str | None:
    """The ``storageUri`` the manifest serves today: a Seldon Model's ``spec.storageUri``, or wherever an
    InferenceService's predictor keeps it."""
    if target_of(document) == SELDON:
        spec = document.get("spec")
        value = spec.get("storageUri") if isinstance(spec, dict) else None
        return value if isinstance(value, str) else None
    component = serving_component(document)
    value = document["spec"]["predictor"][component].get("storageUri") if component else None
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class FoundManifest:
    path: Path  # absolute
    relative: str  # relative to the repository root, with forward slashes
    document_index: int  # which YAML document of the file
    document: dict[str, Any]
    matched_by: str = "annotation"  # annotation | name
    target: str = KSERVE  # kserve | seldon

    @property
    def label(self) -> str:
        return TARGET_LABELS[self.target]


class AmbiguousManifest(StepError):
    """More than one manifest could be the model's: a promotion must never guess which one to repoint."""


def k8s_name(model_name: str) -> str:
    """The DNS-1123 name KServe would use for a model (lower case, other characters become '-')."""
    name = re.sub(r"[^a-z0-9-]+", "-", model_name.lower()).strip("-")
    return name[:63].rstrip("-")


def find_serving_manifest(repo: Path, model_name: str, inference_dir: str) -> FoundManifest | None:
    """The InferenceService or Seldon Model serving ``model_name`` under ``repo/inference_dir``, or None.

    The annotation ``hera-flows.io/mlflow-model: <registered model name>`` claims a manifest for exactly that
    model. Only a manifest without that annotation may be matched by ``metadata.name`` equal to the model's
    DNS-1123 form (``Fraud Detector`` -> ``fraud-detector``): a look-alike name (``Fraud_Detector``) can never
    take over a manifest annotated for another model. Two annotated manifests, or (with none annotated) two
    named alike, are refused as ambiguous. Files are read in sorted order, so messages are deterministic.
    """
    root = (repo / inference_dir).resolve()
    repo_root = repo.resolve()
    if not root.is_dir() or not root.is_relative_to(repo_root):
        return None
    annotated: list[FoundManifest] = []
    by_name: list[FoundManifest] = []
    wanted_name = k8s_name(model_name)
    for path in sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file()):
        if not path.resolve().is_relative_to(repo_root):
            continue  # a symlink pointing out of the repository is never read
        try:
            documents = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except (yaml.YAMLError, UnicodeDecodeError):
            continue
        for index, doc in enumerate(documents):
            target = target_of(doc)
            if target is None:
                continue
            metadata = doc.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else {}
            annotations = metadata.get("annotations")
            annotations = annotations if isinstance(annotations, dict) else {}
            relative = path.relative_to(repo_root).as_posix()
            if MODEL_ANNOTATION in annotations:
                if annotations[MODEL_ANNOTATION] == model_name:
                    annotated.append(FoundManifest(path, relative, index, doc, "annotation", target))
                continue  # claimed by the annotation for another model: never matched by name
            if metadata.get("name") == wanted_name:
                by_name.append(FoundManifest(path, relative, index, doc, "name", target))
    if len(annotated) > 1:
        raise AmbiguousManifest(
            f"{len(annotated)} serving manifests under {inference_dir}/ are annotated "
            f"'{MODEL_ANNOTATION}: {model_name}' ({_places(annotated)}); keep the annotation on one of them")
    if annotated:
        return annotated[0]
    if len(by_name) > 1:
        raise AmbiguousManifest(
            f"{len(by_name)} serving manifests under {inference_dir}/ are named {wanted_name!r} "
            f"({_places(by_name)}) and none is annotated for model {model_name!r}; annotate the one that serves "
            f"it with '{MODEL_ANNOTATION}: {model_name}'")
    return by_name[0] if by_name else None


def _places(found: list[FoundManifest]) -> str:
    return ", ".join(f"{f.relative}#{f.document_index}" if f.document_index else f.relative for f in found)
