"""`hera-flows step triage-smoke`: the WorkflowTemplates (or Kubeflow pipeline specs) a triage fix changed still
validate.

Every YAML document of ``kind: WorkflowTemplate`` among the published files (the ``files`` output of publish) is
validated against the official Argo Workflows JSON schemas v3.7.18 and v4.1.2, vendored in ``hera_flows/schemas``
by ``tools/vendor_workflow_schemas.py`` (the step image has no ../shared). Validation is strict like kubectl's
field validation: an object that lists its properties accepts no other. The step writes ``result``
(passed | failed | skipped) and a markdown ``report`` and exits 0; the report step comments it on the PR and
fails the run when the result is failed.

A Kubeflow Pipelines spec (IR YAML: ``pipelineInfo``, ``root``, ``deploymentSpec``) is checked where a triage fix
touches it and where KFP would reject it (kfp.py ``spec_problems``): every container executor has an image, memory
quantities match the KFP SDK's own pattern, retry policies have the ``PipelineTaskSpec.RetryPolicy`` types, and
every task's component and executor exist.
"""

from __future__ import annotations

import copy
import functools
import gzip
import json
from importlib import resources
from typing import Any

import yaml

from hera_flows.steps.common import log, parse_json
from hera_flows.steps.contract import Step
from hera_flows.steps.triage import kfp

SCHEMA_FILES = {
    "v3.7.18": "argo-workflows-v3.7.18-workflowtemplate.schema.json.gz",
    "v4.1.2": "argo-workflows-v4.1.2-workflowtemplate.schema.json.gz",
}
MAX_PROBLEMS = 30
INT_OR_STRING = ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", "io.k8s.apimachinery.pkg.api.resource.Quantity")


def strict(node: Any) -> Any:
    """A JSON schema with ``additionalProperties: false`` on every object that lists properties: the Argo schemas
    allow unknown fields, the API server refuses them under kubectl's strict field validation."""
    if isinstance(node, dict):
        node = {k: strict(v) for k, v in node.items()}
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        return node
    if isinstance(node, list):
        return [strict(v) for v in node]
    return node


@functools.cache
def validator(version: str) -> Any:
    from jsonschema import Draft202012Validator

    raw = resources.files("hera_flows").joinpath("schemas").joinpath(SCHEMA_FILES[version]).read_bytes()
    schema = json.loads(gzip.decompress(raw))
    definitions = strict(copy.deepcopy(schema["definitions"]))
    # The JSON schema types int-or-string fields (retry limits, quantities like ``nvidia.com/gpu: 1``) as strings;
    # the API server accepts numbers there (x-kubernetes-int-or-string), so a number must not fail the check.
    for name in INT_OR_STRING:
        if name in definitions:
            definitions[name] = {"type": ["string", "integer", "number"]}
    return Draft202012Validator({"$ref": f"#/definitions/{schema['root']}", "definitions": definitions})


def problems(document: dict[str, Any]) -> list[str]:
    found = []
    for version in SCHEMA_FILES:
        for error in sorted(validator(version).iter_errors(document), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            found.append(f"Argo {version}: {where}: {error.message[:300]}")
    return found


def check_files(files: dict[str, str]) -> tuple[str, str]:
    checked: list[str] = []
    failures: list[str] = []
    for path, text in sorted(files.items()):
        if not path.endswith((".yaml", ".yml")) or not text:
            continue
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as exc:
            failures.append(f"`{path}`: not valid YAML ({' '.join(str(exc).split())[:200]})")
            continue
        for index, doc in enumerate(documents):
            if kfp.is_pipeline_spec(doc):
                name = (doc.get("pipelineInfo") or {}).get("name", f"document {index}")
                checked.append(f"`{path}` (Kubeflow pipeline {name})")
                failures += [f"`{path}` (Kubeflow pipeline {name}): {p}" for p in kfp.spec_problems(doc)]
                continue
            if not isinstance(doc, dict) or doc.get("kind") != "WorkflowTemplate":
                continue
            name = (doc.get("metadata") or {}).get("name", f"document {index}")
            checked.append(f"`{path}` ({name})")
            failures += [f"`{path}` ({name}): {p}" for p in problems(doc)]
    if not checked and not failures:
        return "skipped", "➖ **Smoke test skipped**: the change holds no WorkflowTemplate or pipeline spec to " \
                          "validate.\n"
    if failures:
        lines = ["❌ **Smoke test failed**: the changed pipeline definition does not validate (Argo Workflows schema "
                 "or Kubeflow pipeline spec).", ""] + [f"- {f}" for f in failures[:MAX_PROBLEMS]]
        return "failed", "\n".join(lines) + "\n"
    lines = ["✅ **Smoke test passed**: the changed WorkflowTemplates validate against the Argo Workflows v3.7.18 "
             "and v4.1.2 schemas (strict fields); changed Kubeflow pipeline specs keep valid images, memory "
             "quantities, retry policies and references.", ""] + [f"- {c}" for c in checked]
    return "passed", "\n".join(lines) + "\n"


CONTRACT = Step(
    name="triage-smoke",
    entry="hera_flows.steps.triage.smoke:main",
    summary="the changed WorkflowTemplate validates against the vendored Argo schema",
    inputs=("files",),
    outputs=("result", "report"),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    raw = CONTRACT.param("files").strip() or "{}"
    files = {str(k): str(v) for k, v in parse_json(raw, "the files output of publish").items()}
    result, report = check_files(files)
    log(f"triage-smoke: {result}")
    CONTRACT.write(args.outputs, result=result, report=report)
    return 0
