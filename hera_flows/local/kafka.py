"""What an Argo Events ``kafka`` EventSource delivers, reproduced from its source for local runs and tests.

``pkg/eventsources/sources/kafka/start.go`` (v1.9.11, ``Consumer.processOne``) and ``events.KafkaEventData``:

- the event data is ``{"topic", "key", "partition", "body", "timestamp", "headers", ["metadata"]}`` in that order,
  as Go's ``json.Marshal`` writes it: compact, ``<``, ``>`` and ``&`` escaped;
- with ``jsonBody: true`` the body is the record's value as a ``json.RawMessage``, compacted on the way (a value
  that is not JSON fails to marshal: the EventSource logs "failed to marshal the event data, rejecting the
  event" and counts it in ``argo_events_events_processing_failed_total``; no Sensor sees it);
- ``headers`` maps each record header to its value (one string each; a repeated header keeps the last);
- ``timestamp`` is Go's ``time.Time.String()`` of the record's timestamp;
- the event context's ``id`` is ``<eventsource>:<event>:<first broker>:<topic>:<partition>:<offset>``
  (``genUniqueID``), so a record redelivered after a consumer restart keeps its id.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from hera_flows.local.sensor import SensorError, event_context
from hera_flows.local.standins.go_json import go_compact
from hera_flows.local.substitution import go_json


class NotJSON(SensorError):
    """The record's value is not JSON: the EventSource (jsonBody) drops it before any Sensor sees it."""


def _go_time(moment: datetime) -> str:
    """``time.Time.String()`` of a UTC time: ``2026-11-22 06:15:00.123 +0000 UTC`` (trailing zeros dropped)."""
    text = moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f").rstrip("0").rstrip(".")
    return f"{text} +0000 UTC"


def _compact(value: str | bytes) -> str:
    """The value as Go marshals a ``json.RawMessage``: compacted, HTML characters escaped, nothing else changed."""
    try:
        return go_compact(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise NotJSON("the record value is not JSON: the Kafka EventSource (jsonBody) drops it "
                      "(failed to marshal the event data)") from None


def event_data(event_source: dict[str, Any], event_name: str, *, value: str | bytes, key: str = "",
               headers: dict[str, str] | None = None, partition: int = 0, offset: int = 0,
               timestamp: datetime | None = None) -> tuple[str, dict[str, str]]:
    """The event data and event context the EventSource would publish for one record of ``event_name``'s topic."""
    spec = ((event_source.get("spec") or {}).get("kafka") or {}).get(event_name)
    if spec is None:
        raise SensorError(f"the EventSource {event_source.get('metadata', {}).get('name')} has no kafka event "
                          f"{event_name!r}")
    if not spec.get("jsonBody"):
        raise SensorError(f"kafka event {event_name}: without jsonBody the body is base64 bytes; hera-flows sets "
                          "jsonBody: true")
    body = _compact(value)
    moment = timestamp or datetime.now(timezone.utc)
    parts = [f'"topic":{go_json(spec["topic"])}', f'"key":{go_json(key)}', f'"partition":{int(partition)}',
             f'"body":{body}', f'"timestamp":{go_json(_go_time(moment))}',
             f'"headers":{go_json(dict(headers or {}))}']
    if spec.get("metadata"):
        parts.append(f'"metadata":{go_json(spec["metadata"])}')
    data = "{" + ",".join(parts) + "}"
    context = event_context(moment)
    broker = str(spec["url"]).split(",")[0]
    context.update(id=f"{event_source['metadata']['name']}:{event_name}:{broker}:{spec['topic']}:{int(partition)}:"
                      f"{int(offset)}", type="kafka", source=str(event_source["metadata"]["name"]),
                   subject=event_name)
    return data, context
