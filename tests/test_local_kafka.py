"""The Kafka EventSource's envelope as the local runner reproduces it (hera_flows/local/kafka.py), read from
argo-events v1.9.11 ``pkg/eventsources/sources/kafka/start.go`` (``processOne``, ``genUniqueID``) and
``pkg/eventsources/events/event-data.go`` (``KafkaEventData``), and routed through the generated Sensor."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render
from hera_flows.local import kafka
from hera_flows.local.sensor import route_event

CONFIG = ("repository: {url: 'https://github.com/acme/ml-gitops'}\n"
          "patterns: {drift: {enabled: true, sources: [alertmanager, {name: ml-drift, kind: kafka, topic: ml.drift, "
          "brokers: ['kafka-0.kafka:9092', 'kafka-1.kafka:9092'], shape: alibi-detect, "
          "mapping: {vars: {model: income}}}]}}\n")


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict]:
    return {path: yaml.safe_load(text) for path, text in render(parse_config(CONFIG)).items()
            if path.startswith(("eventsources/", "sensors/"))}


def test_the_envelope_is_what_go_marshals(rendered) -> None:
    value = '{\n  "data": {"is_drift": 1, "note": "a<b & c>d"},\n  "meta": {"name": "KSDrift"}\n}'
    data, context = kafka.event_data(rendered["eventsources/drift-kafka.yaml"], "ml-drift", value=value,
                                     key="income", headers={"x-b": "2", "ce_type": "drift"}, partition=3,
                                     offset=1207, timestamp=datetime(2026, 11, 22, 6, 15, 0, 120000,
                                                                     tzinfo=timezone.utc))
    # KafkaEventData field order; the RawMessage body compacted with HTML escaped and its key order kept; the
    # headers map with sorted keys; Go's time.Time.String()
    assert data == ('{"topic":"ml.drift","key":"income","partition":3,'
                    '"body":{"data":{"is_drift":1,"note":"a\\u003cb \\u0026 c\\u003ed"},"meta":{"name":"KSDrift"}},'
                    '"timestamp":"2026-11-22 06:15:00.12 +0000 UTC","headers":{"ce_type":"drift","x-b":"2"}}')
    assert json.loads(data)["body"]["data"]["note"] == "a<b & c>d"
    # genUniqueID: eventsource:event:first broker:topic:partition:offset — stable across redeliveries
    assert context["id"] == "drift-kafka:ml-drift:kafka-0.kafka:9092:ml.drift:3:1207"
    assert context["type"] == "kafka" and context["subject"] == "ml-drift"


def test_a_value_that_is_not_json_never_reaches_a_sensor(rendered) -> None:
    with pytest.raises(kafka.NotJSON, match="the record value is not JSON"):
        kafka.event_data(rendered["eventsources/drift-kafka.yaml"], "ml-drift", value=b"\x08\x96\x01 protobuf")
    with pytest.raises(kafka.SensorError, match="has no kafka event 'other'"):
        kafka.event_data(rendered["eventsources/drift-kafka.yaml"], "other", value="{}")


def test_a_kafka_event_routes_to_its_own_trigger_with_topic_key_headers_and_id(rendered) -> None:
    data, context = kafka.event_data(rendered["eventsources/drift-kafka.yaml"], "ml-drift",
                                     value='{"data": {"is_drift": 0}}', key="k1", headers={"h": "v"}, offset=9)
    workflow, trigger = route_event([rendered["sensors/drift-remediation.yaml"]], "drift-remediation", data,
                                    event_name="ml-drift", context=context)
    assert trigger == "remediate-from-ml-drift"
    annotations = workflow["metadata"]["annotations"]
    assert json.loads(annotations["hera-flows.io/event-body"]) == {"data": {"is_drift": 0}}
    assert json.loads(annotations["hera-flows.io/event-headers"]) == {"h": "v"}
    assert annotations["hera-flows.io/event-topic"] == "ml.drift" and annotations["hera-flows.io/event-key"] == "k1"
    assert annotations["hera-flows.io/event-id"] == context["id"]
    assert {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]} == {"event-source": "ml-drift"}
