"""The examples stay true: their events pass the generated Sensor and verify, their manifests validate."""

from __future__ import annotations

import yaml

from hera_flows.local.sensor import gjson_string, route_event
from hera_flows.steps.promotion.kserve import validate_inference_service
from hera_flows.steps.promotion.verify import verify_mlflow
from tests.conftest import ROOT

EXAMPLES = ROOT / "examples" / "promotion"


def _sensors() -> list[dict]:
    return [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "sensors").glob("*.yaml"))]


def test_example_events_reach_the_promotion_template() -> None:
    routes = {}
    for name in ("event.mlflow-alias-created.json", "event.databricks-stage-transition.json"):
        _, trigger = route_event(_sensors(), "mlflow-promotion", (EXAMPLES / name).read_text())
        routes[name] = trigger
    assert routes == {
        "event.mlflow-alias-created.json": "promote-from-mlflow",
        "event.databricks-stage-transition.json": "promote-from-databricks",
    }


def test_the_example_mlflow_event_is_signed_with_the_example_secret() -> None:
    data = (EXAMPLES / "event.mlflow-alias-created.json").read_text()
    secrets = yaml.safe_load((EXAMPLES / "secrets.example.yaml").read_text())
    timestamp = gjson_string(data, "header.X-Mlflow-Timestamp.0")
    verify_mlflow(
        secret=secrets["mlflow-webhook"]["secret"],
        body=gjson_string(data, "body"),
        signature=gjson_string(data, "header.X-Mlflow-Signature.0"),
        delivery_id=gjson_string(data, "header.X-Mlflow-Delivery-Id.0"),
        timestamp=timestamp,
        now=int(timestamp) + 10,
        tolerance_seconds=300,
    )


def test_the_example_gitops_manifests_validate() -> None:
    for path in sorted((EXAMPLES / "gitops-repo" / "inference").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            assert validate_inference_service(doc) == [], path


def test_the_example_secrets_cover_every_secret_the_generated_templates_reference() -> None:
    secrets = yaml.safe_load((EXAMPLES / "secrets.example.yaml").read_text())
    template = yaml.safe_load((ROOT / "generated/workflowtemplates/mlflow-promotion.yaml").read_text())
    referenced = set()

    def walk(node):
        if isinstance(node, dict):
            ref = node.get("secretKeyRef")
            if ref:
                referenced.add((ref["name"], ref["key"]))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(template)
    assert referenced and all(key in secrets.get(name, {}) for name, key in referenced), referenced
