"""InferenceService validation against the vendored KServe v0.20.0 schema (kubectl strict semantics)."""

from __future__ import annotations

import copy
import gzip
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hera_flows.steps.promotion import kserve

ROOT = Path(__file__).resolve().parents[2]

MLFLOW_V2 = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: fraud-detector
  namespace: models-staging
  labels:
    app.kubernetes.io/part-of: fraud
    model-version: "7"
  annotations:
    serving.kserve.io/deploymentMode: RawDeployment
    hera-flows.io/mlflow-model: fraud-detector
    hera-flows.io/mlflow-version: "7"
spec:
  predictor:
    minReplicas: 1
    maxReplicas: 4
    scaleMetric: cpu
    scaleTarget: 70
    serviceAccountName: kserve-s3
    nodeSelector:
      nvidia.com/gpu.product: NVIDIA-A10G
    tolerations:
      - key: nvidia.com/gpu
        operator: Exists
        effect: NoSchedule
    model:
      modelFormat:
        name: mlflow
      protocolVersion: v2
      runtimeVersion: 1.6.1
      storageUri: s3://mlflow-artifacts/3/models/m-0a1b2c/artifacts
      resources:
        requests:
          cpu: 500m
          memory: 1Gi
          nvidia.com/gpu: 1
        limits:
          cpu: "2"
          memory: 4Gi
          nvidia.com/gpu: "1"
      env:
        - name: MLSERVER_PARALLEL_WORKERS
          value: "0"
"""

SKLEARN_V1 = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sklearn-iris
spec:
  predictor:
    model:
      modelFormat:
        name: sklearn
      storageUri: gs://kfserving-examples/models/sklearn/1.0/model
"""

TRANSFORMER_AND_CANARY = """
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: image-classifier
  creationTimestamp: null
spec:
  transformer:
    containers:
      - name: kserve-container
        image: ghcr.io/example/image-transformer:1.2.0
        args: ["--model_name", "image-classifier"]
        ports:
          - containerPort: 8080
            protocol: TCP
        readinessProbe:
          httpGet:
            path: /v1/models/image-classifier
            port: http
        resources:
          requests: {cpu: 100m, memory: 256Mi}
          limits: {cpu: 1, memory: 1Gi}
  predictor:
    canaryTrafficPercent: 10
    timeout: 60
    pytorch:
      storageUri: pvc://models/image-classifier/v3
      volumeMounts:
        - name: cache
          mountPath: /cache
    volumes:
      - name: cache
        emptyDir:
          sizeLimit: 2Gi
status:
  url: http://image-classifier.models.example.com
  someControllerField: {anything: [1, 2]}
"""


def load(text: str) -> dict:
    return yaml.safe_load(text)


def with_change(text: str, path: str | tuple[str, ...], value: object) -> dict:
    """The manifest with ``value`` set at ``path`` (dotted, or a tuple for keys holding dots)."""
    doc = copy.deepcopy(load(text))
    *parents, last = path.split(".") if isinstance(path, str) else path
    node = doc
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    node[last] = value
    return doc


@pytest.mark.parametrize(
    "manifest", [MLFLOW_V2, SKLEARN_V1, TRANSFORMER_AND_CANARY], ids=["mlflow", "sklearn", "transformer"]
)
def test_realistic_manifests_are_valid(manifest: str) -> None:
    assert kserve.validate_inference_service(load(manifest)) == []


def test_quantities_accept_integers_and_strings() -> None:
    for value in (1, "1", "500m", "2Gi", "0.5"):
        doc = with_change(MLFLOW_V2, "spec.predictor.model.resources.limits.cpu", value)
        assert kserve.validate_inference_service(doc) == [], value
    problems = kserve.validate_inference_service(
        with_change(MLFLOW_V2, "spec.predictor.model.resources.limits.cpu", "two cores")
    )
    assert problems == ["spec.predictor.model.resources.limits.cpu: 'two cores' is not a Kubernetes quantity "
                        "(e.g. 1, 500m, 2Gi)"]
    for value, shown in ((True, "the boolean true"), (0.5, "the number 0.5")):  # JSON floats are no integers
        problems = kserve.validate_inference_service(
            with_change(MLFLOW_V2, ("spec", "predictor", "model", "resources", "limits", "nvidia.com/gpu"), value)
        )
        assert problems == [f'spec.predictor.model.resources.limits["nvidia.com/gpu"]: must be an integer or a '
                            f"string, got {shown}"]


def test_storage_uri_of_wrong_type() -> None:
    doc = with_change(MLFLOW_V2, "spec.predictor.model.storageUri", 42)
    assert kserve.validate_inference_service(doc) == [
        "spec.predictor.model.storageUri: must be a string, got the number 42"
    ]


def test_unknown_fields_are_errors_like_kubectl_strict() -> None:
    doc = load(MLFLOW_V2)
    doc["spec"]["predictor"]["model"]["storageURI"] = doc["spec"]["predictor"]["model"].pop("storageUri")
    doc["spec"]["predictor"]["replicas"] = 2
    doc["specs"] = {}
    doc["metadata"]["label"] = {"a": "b"}
    assert kserve.validate_inference_service(doc) == [
        "metadata.label: unknown field",
        "spec.predictor.model.storageURI: unknown field",
        "spec.predictor.replicas: unknown field",
        "specs: unknown field",
    ]


def test_status_preserves_unknown_fields() -> None:
    doc = load(TRANSFORMER_AND_CANARY)
    assert doc["status"]["someControllerField"]
    assert kserve.validate_inference_service(doc) == []
    doc["status"]["url"] = 5  # the fields it does list are still typed
    assert kserve.validate_inference_service(doc) == ["status.url: must be a string, got the number 5"]


def test_min_replicas_as_string() -> None:
    doc = with_change(MLFLOW_V2, "spec.predictor.minReplicas", "1")
    assert kserve.validate_inference_service(doc) == [
        "spec.predictor.minReplicas: must be an integer, got the string '1'"
    ]


def test_int32_range_enum_and_required_fields() -> None:
    doc = with_change(MLFLOW_V2, "spec.predictor.maxReplicas", 2**31)
    doc["spec"]["predictor"]["scaleMetric"] = "latency"
    del doc["spec"]["predictor"]["model"]["modelFormat"]["name"]
    assert kserve.validate_inference_service(doc) == [
        "spec.predictor.maxReplicas: 2147483648 is out of range for int32 (-2147483648..2147483647)",
        "spec.predictor.model.modelFormat.name: required field is missing",
        "spec.predictor.scaleMetric: must be one of 'cpu', 'memory', 'concurrency', 'rps', got the string 'latency'",
    ]


def test_duplicate_list_map_entries() -> None:
    doc = load(MLFLOW_V2)
    doc["spec"]["predictor"]["model"]["env"].append({"name": "MLSERVER_PARALLEL_WORKERS", "value": "2"})
    doc["spec"]["predictor"]["model"]["ports"] = [{"containerPort": 8080}, {"containerPort": 8080, "protocol": "TCP"}]
    assert kserve.validate_inference_service(doc) == [
        "spec.predictor.model.env[1]: duplicate entry (name='MLSERVER_PARALLEL_WORKERS')",
        "spec.predictor.model.ports[1]: duplicate entry (containerPort=8080, protocol='TCP')",
    ]


def test_label_values_must_be_strings() -> None:
    doc = with_change(MLFLOW_V2, "metadata.labels.model-version", 7)
    assert kserve.validate_inference_service(doc) == [
        "metadata.labels.model-version: must be a string, got the number 7"
    ]


def test_null_fields_are_pruned_like_the_api_server() -> None:
    doc = with_change(SKLEARN_V1, "spec.predictor.minReplicas", None)
    assert kserve.validate_inference_service(doc) == []


def test_wrong_kind_and_api_version() -> None:
    doc = load(SKLEARN_V1)
    doc["kind"] = "InferenceServices"
    doc["apiVersion"] = "serving.kserve.io/v1alpha1"
    assert kserve.looks_like_inference_service(doc)
    assert kserve.validate_inference_service(doc) == [
        "apiVersion: must be serving.kserve.io/v1beta1, got the string 'serving.kserve.io/v1alpha1'",
        "kind: must be InferenceService, got the string 'InferenceServices'",
    ]
    deployment = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}
    assert not kserve.looks_like_inference_service(deployment)
    problems = kserve.validate_inference_service(deployment)
    assert "kind: must be InferenceService, got the string 'Deployment'" in problems


@pytest.mark.parametrize("name", ["Fraud-Detector", "fraud_detector", "7-fraud", "fraud-", "a" * 64, ""])
def test_names_must_be_dns_1123_labels_starting_with_a_letter(name: str) -> None:
    problems = kserve.validate_inference_service(with_change(SKLEARN_V1, "metadata.name", name))
    assert len(problems) == 1
    assert problems[0].startswith(f"metadata.name: {name!r} is not a valid InferenceService name")


def test_missing_name_and_non_mapping_document() -> None:
    doc = load(SKLEARN_V1)
    del doc["metadata"]["name"]
    assert kserve.validate_inference_service(doc) == ["metadata.name: required field is missing"]
    assert kserve.validate_inference_service(["not", "a", "mapping"]) == [
        "(root): an InferenceService must be a mapping, got a list"
    ]


def test_translated_schema_is_valid_json_schema_and_cached() -> None:
    validator = kserve.schema_validator()
    assert validator is kserve.schema_validator()
    type(validator).check_schema(validator.schema["properties"]["spec"]["properties"]["predictor"])  # whole: ~5 s
    assert validator.schema["properties"]["spec"]["additionalProperties"] is False
    assert validator.schema["properties"]["status"].get("additionalProperties") is None  # preserve-unknown-fields


def test_translation_of_kubernetes_extensions() -> None:
    translated = kserve.translate_schema({
        "type": "object",
        "properties": {
            "port": {"x-kubernetes-int-or-string": True},
            "codes": {"type": "array", "items": {"type": "integer"}, "x-kubernetes-list-type": "set"},
            "open": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
            "closed": {"type": "object"},
        },
    })
    assert translated["additionalProperties"] is False
    assert translated["properties"]["port"]["oneOf"] == [{"type": "integer"}, {"type": "string"}]
    assert translated["properties"]["codes"]["uniqueItems"] is True
    assert "additionalProperties" not in translated["properties"]["open"]
    assert translated["properties"]["closed"]["additionalProperties"] is False


def _vendor_script():
    spec = importlib.util.spec_from_file_location("vendor_schemas", ROOT / "tools" / "vendor_schemas.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is created
    spec.loader.exec_module(module)
    return module


def test_vendored_schema_equals_what_the_script_derives_from_shared(shared_dir: Path) -> None:
    script = _vendor_script()
    (entry,) = [e for e in script.SCHEMAS if e.target == kserve.SCHEMA_FILE]
    vendored = (ROOT / "hera_flows" / "schemas" / entry.target).read_bytes()
    assert vendored[4:8] == b"\0\0\0\0", "gzip mtime must be 0 (deterministic output)"
    assert len(vendored) < 64 * 1024
    derived = script.derive_json(entry, shared_dir / "schemas")
    assert gzip.decompress(vendored) == derived, "run: python tools/vendor_schemas.py"
    assert script.compress(derived) == script.compress(derived)
    assert gzip.decompress(script.compress(derived)) == derived


def test_steps_import_their_heavy_dependencies_lazily() -> None:
    code = (
        "import sys, hera_flows.steps.promotion.kserve, hera_flows.steps.promotion.smoke\n"
        "heavy = {'jsonschema', 'httpx', 'yaml'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
