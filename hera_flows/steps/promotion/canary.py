"""A canary step written in the form the serving target supports, as comment-preserving edits of its manifest.

The rollout policy (``patterns.promotion.rollout``) gives traffic steps such as 5 → 25 → 100 %. The promotion PR
writes the first step; the reconciler proposes each later step as a new PR while the health SLIs hold
(hera_flows/steps/promotion/reconcile.py, health.py). What a step looks like depends on the target and, for
KServe, on the InferenceService's deployment mode (annotation ``serving.kserve.io/deploymentMode``, else the
configured default; KServe v0.20's default is ``Standard``), read from the vendored v0.20 CRD:

- KServe ``Serverless`` (Knative): below 100 % the predictor serves the new artifacts with
  ``spec.predictor.canaryTrafficPercent: N`` (Knative keeps the previous revision for the rest); at 100 %
  ``canaryTrafficPercent`` is removed and the new revision takes all traffic.
- KServe ``Standard`` / ``RawDeployment`` (``canaryTrafficPercent`` does not apply there): below 100 %
  ``spec.canary: [{trafficPercent: N, predictor: <the predictor with the new artifacts>}]`` next to the unchanged
  predictor; at 100 % the predictor gets the new artifacts and ``spec.canary`` is removed.
- Seldon Core v2: below 100 % a candidate ``Model`` ``<name>-v<version>`` and an ``Experiment`` ``<name>-canary``
  (``default: <name>``, ``candidates`` weighted ``100-N`` / ``N``) are appended to the file; at 100 % the Model gets
  the new artifacts and both are removed.
- KServe ``ModelMesh``: no traffic split; the version is promoted at once (noted in the summary).

While a canary runs the model's manifest carries ``hera-flows.io/canary-version`` and
``hera-flows.io/canary-percent`` (``hera-flows.io/mlflow-version`` keeps naming the version serving the rest), so
the reconciler can tell which step is live from the repository alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from hera_flows.steps.common import StepError
from hera_flows.steps.promotion.serving_manifest import (
    SELDON,
    VERSION_ANNOTATION,
    FoundManifest,
    serving_component,
)
from hera_flows.steps.yaml_patch import (
    MISSING,
    PathKey,
    Scalar,
    append_document,
    delete_key,
    insert_block,
    load_documents,
    read_value,
    remove_document,
    set_values,
)

CANARY_VERSION_ANNOTATION = "hera-flows.io/canary-version"
CANARY_PERCENT_ANNOTATION = "hera-flows.io/canary-percent"
CANARY_OF_ANNOTATION = "hera-flows.io/canary-of"
KSERVE_CONTAINER = "kserve-container"
MODE_ANNOTATION = "serving.kserve.io/deploymentMode"
SERVERLESS, STANDARD, MODELMESH = "serverless", "standard", "modelmesh"
MODES = {"serverless": SERVERLESS, "standard": STANDARD, "rawdeployment": STANDARD, "modelmesh": MODELMESH}

Change = tuple[tuple[PathKey, ...], Scalar, str]  # (path in the model's document, value, why)


@dataclass(frozen=True)
class Rollout:
    step: int
    steps: tuple[int, ...]
    mode: str  # serverless | standard | modelmesh | seldon

    @classmethod
    def from_context(cls, context: dict[str, Any]) -> Rollout | None:
        raw = context.get("rollout")
        if not isinstance(raw, dict):
            return None
        try:
            step, steps, mode = int(raw["step"]), tuple(int(s) for s in raw["steps"]), str(raw["mode"])
        except (KeyError, TypeError, ValueError):
            raise StepError("the context's rollout must have step, steps and mode") from None
        if step not in steps or mode not in (SERVERLESS, STANDARD, MODELMESH, SELDON):
            raise StepError(f"the context's rollout step {step} / mode {mode!r} is not valid")
        return cls(step, steps, mode)


def mode_of(found: FoundManifest, default_mode: str) -> str:
    """The deployment mode a step is written for: ``seldon``, or the InferenceService's KServe mode."""
    if found.target == SELDON:
        return SELDON
    annotations = (found.document.get("metadata") or {}).get("annotations") or {}
    raw = str(annotations.get(MODE_ANNOTATION) or default_mode)
    mode = MODES.get(raw.lower())
    if mode is None:
        raise StepError(f"{found.relative}: unknown KServe deployment mode {raw!r} (annotation {MODE_ANNOTATION}); "
                        "expected Standard, RawDeployment, Serverless or ModelMesh")
    return mode


def apply(text: str, found: FoundManifest, changes: list[Change], context: dict[str, Any],
          rollout: Rollout | None) -> tuple[str, list[Change], list[str]]:
    """The manifest file's new text for this promotion: all ``changes`` at once (no rollout, the last step, or a
    mode without canaries; a canary structure left from earlier steps is removed), or the canary step. Returns the
    text, the scalar changes of the model's document to report, and lines for what else changed."""
    index = found.document_index
    version = str(context["version"])
    if rollout is None or rollout.step >= 100 or rollout.mode == MODELMESH:
        notes = []
        if rollout is not None and rollout.mode == MODELMESH and rollout.step < 100:
            notes.append("KServe ModelMesh has no traffic split: the version is promoted at once.")
        updated, _ = set_values(text, [(p, v) for p, v, _ in changes], document=index)
        updated, removed = _finish(updated, found)
        return updated, changes, notes + removed
    percent = rollout.step
    marks: list[Change] = [
        (("metadata", "annotations", CANARY_VERSION_ANNOTATION), version, f"version {version} is in canary"),
        (("metadata", "annotations", CANARY_PERCENT_ANNOTATION), str(percent), f"canary step {percent} %"),
    ]
    if rollout.mode == SERVERLESS:
        # the predictor serves the new artifacts; Knative keeps the last fully rolled-out revision for the rest
        kept = [c for c in changes if c[0] != ("metadata", "annotations", VERSION_ANNOTATION)]
        step_changes = [*kept, (("spec", "predictor", "canaryTrafficPercent"), percent,
                                f"{percent} % of the traffic to the new revision (Serverless mode)"), *marks]
        updated, _ = set_values(text, [(p, v) for p, v, _ in step_changes], document=index)
        return updated, step_changes, []
    if rollout.mode == STANDARD:
        return _standard_step(text, found, changes, marks, percent)
    return _seldon_step(text, found, changes, marks, percent, version)


def _edited(document: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    """A copy of ``document`` with ``changes`` applied as data (missing mappings created)."""
    result = copy.deepcopy(document)
    for path, value, _ in changes:
        node: Any = result
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node[key]
        node[path[-1]] = value
    return result


def _standard_step(text: str, found: FoundManifest, changes: list[Change], marks: list[Change],
                   percent: int) -> tuple[str, list[Change], list[str]]:
    index = found.document_index
    if serving_component(found.document) is None:
        raise StepError(f"{found.relative}: the InferenceService has no predictor to copy into spec.canary")
    predictor = _edited(found.document, changes)["spec"]["predictor"]
    predictor.pop("canaryTrafficPercent", None)
    # The v0.20 CRD requires a container name in a canary's model (spec.canary[].predictor.<component>.name; the
    # predictor's own is optional): KServe names the serving container kserve-container.
    component = predictor[serving_component(found.document) or "model"]
    component.setdefault("name", KSERVE_CONTAINER)
    existing = read_value(load_documents(text)[index], ("spec", "canary"))
    if isinstance(existing, list) and len(existing) == 1 and isinstance(existing[0], dict):
        updated = text
        if existing[0].get("predictor") != predictor:
            updated = delete_key(updated, ("spec", "canary"), document=index)
            updated = insert_block(updated, ("spec", "canary"), [{"trafficPercent": percent, "predictor": predictor}],
                                   document=index)
            lines = ["`spec.canary`: the canary predictor replaced by the new version's"]
        else:
            updated, _ = set_values(updated, [(("spec", "canary", 0, "trafficPercent"), percent)], document=index)
            lines = [f"`spec.canary[0].trafficPercent` → `{percent}`"]
    elif existing is MISSING:
        updated = insert_block(text, ("spec", "canary"), [{"trafficPercent": percent, "predictor": predictor}],
                               document=index)
        lines = [f"`spec.canary`: added, `trafficPercent: {percent}` and the predictor with the new artifacts "
                 "(Standard mode: the unchanged `spec.predictor` serves the rest)"]
    else:
        raise StepError(f"{found.relative}: spec.canary holds something other than one canary; edit it by hand")
    updated, _ = set_values(updated, [(p, v) for p, v, _ in marks], document=index)
    return updated, marks, lines


def candidate_name(name: str, version: str) -> str:
    return f"{name}-v{version}"[:63].rstrip("-")


def experiment_name(name: str) -> str:
    return f"{name}-canary"[:63].rstrip("-")


def _seldon_documents(text: str, found: FoundManifest) -> tuple[int | None, int | None]:
    """Indexes of this model's candidate Model and canary Experiment in the file (None when absent)."""
    name = str((found.document.get("metadata") or {}).get("name", ""))
    candidate = experiment = None
    for i, doc in enumerate(load_documents(text)):
        if not isinstance(doc, dict) or i == found.document_index:
            continue
        meta = doc.get("metadata") or {}
        if doc.get("kind") == "Model" and (meta.get("annotations") or {}).get(CANARY_OF_ANNOTATION) == name:
            candidate = i
        if doc.get("kind") == "Experiment" and meta.get("name") == experiment_name(name):
            experiment = i
    return candidate, experiment


def _seldon_step(text: str, found: FoundManifest, changes: list[Change], marks: list[Change], percent: int,
                 version: str) -> tuple[str, list[Change], list[str]]:
    name = str((found.document.get("metadata") or {}).get("name", ""))
    candidate_doc = _edited(found.document, [c for c in changes if c[0][0] == "spec"])
    meta = candidate_doc.setdefault("metadata", {})
    meta["name"] = candidate_name(name, version)
    meta["annotations"] = {CANARY_OF_ANNOTATION: name, VERSION_ANNOTATION: version}
    weights = [{"name": name, "weight": 100 - percent}, {"name": candidate_name(name, version), "weight": percent}]
    candidate, experiment = _seldon_documents(text, found)
    updated, lines = text, []
    if candidate is not None and load_documents(text)[candidate] != candidate_doc:
        updated = remove_document(updated, candidate)
        candidate = None
        candidate, experiment = _seldon_documents(updated, found)
    if candidate is None:
        updated = append_document(updated, candidate_doc,
                                  comment=f"canary of {name}, added by hera-flows; removed when it reaches 100 %")
        lines.append(f"Seldon Model `{candidate_name(name, version)}`: added, serving the new artifacts")
    if experiment is None:
        doc = {"apiVersion": "mlops.seldon.io/v1alpha1", "kind": "Experiment",
               "metadata": {"name": experiment_name(name),
                            **({"namespace": meta_ns} if (meta_ns := (found.document.get("metadata") or {}).get(
                                "namespace")) else {})},
               "spec": {"default": name, "candidates": weights}}
        updated = append_document(updated, doc, comment=f"canary split of {name}, added by hera-flows")
        lines.append(f"Seldon Experiment `{experiment_name(name)}`: added, weights {100 - percent} / {percent}")
    else:
        current = load_documents(updated)[experiment]
        candidates = (current.get("spec") or {}).get("candidates") or []
        names = [c.get("name") for c in candidates if isinstance(c, dict)]
        if names != [name, candidate_name(name, version)]:
            raise StepError(f"{found.relative}: Experiment {experiment_name(name)} does not have the candidates "
                            f"{name} and {candidate_name(name, version)}; edit it by hand")
        updated, _ = set_values(updated, [(("spec", "candidates", 0, "weight"), 100 - percent),
                                          (("spec", "candidates", 1, "weight"), percent)], document=experiment)
        lines.append(f"Seldon Experiment `{experiment_name(name)}`: weights {100 - percent} / {percent}")
    updated, _ = set_values(updated, [(p, v) for p, v, _ in marks], document=found.document_index)
    return updated, marks, lines


def _finish(text: str, found: FoundManifest) -> tuple[str, list[str]]:
    """Remove what a canary left in the manifest (after the full change was applied): the annotations, and
    ``canaryTrafficPercent`` / ``spec.canary`` / the Seldon candidate and Experiment."""
    index = found.document_index
    lines = []
    annotations = (load_documents(text)[index].get("metadata") or {}).get("annotations") or {}
    for key in (CANARY_VERSION_ANNOTATION, CANARY_PERCENT_ANNOTATION):
        if key in annotations:
            text = delete_key(text, ("metadata", "annotations", key), document=index)
    for path, what in ((("spec", "predictor", "canaryTrafficPercent"), "the new revision takes all traffic"),
                       (("spec", "canary"), "the predictor now serves the new version")):
        parent = read_value(load_documents(text)[index], path[:-1])
        if isinstance(parent, dict) and path[-1] in parent:
            text = delete_key(text, path, document=index)
            lines.append(f"`{'.'.join(str(p) for p in path)}`: removed ({what})")
    if found.target == SELDON:
        candidate, experiment = _seldon_documents(text, found)
        for position, label in sorted(((candidate, "candidate Model"), (experiment, "Experiment")),
                                      key=lambda item: -(item[0] if item[0] is not None else -1)):
            if position is not None:
                text = remove_document(text, position)
                lines.append(f"the canary's Seldon {label}: removed (the Model serves the new version)")
    return text, lines


def live_canary(document: dict[str, Any]) -> tuple[str, int] | None:
    """(version, percent) of the canary a merged manifest runs, or None."""
    annotations = (document.get("metadata") or {}).get("annotations") or {}
    version, percent = annotations.get(CANARY_VERSION_ANNOTATION), annotations.get(CANARY_PERCENT_ANNOTATION)
    if version is None or percent is None or not str(percent).isdigit():
        return None
    return str(version), int(percent)


def next_step(steps: tuple[int, ...] | list[int], percent: int) -> int | None:
    later = [s for s in steps if s > percent]
    return later[0] if later else None

