"""Promotion's webhook authentication: MLflow OSS and Databricks registry deliveries.

The shared part (the forms a Go-compacted body may have been signed in, HMAC comparison, timestamp tolerance,
strict parsing) is hera_flows/steps/webhook_signature.py.

MLflow OSS (``mlflow/webhooks/delivery.py``): ``X-MLflow-Signature: v1,<base64 HMAC-SHA256(secret,
f"{delivery_id}.{timestamp}.{body}")>`` with ``X-MLflow-Delivery-Id`` and ``X-MLflow-Timestamp`` (Unix seconds).
Databricks legacy registry webhooks: ``X-Databricks-Signature: <hex HMAC-SHA256(secret, body)>``; the body's
``event_timestamp`` (epoch milliseconds) is the only time information.
"""

from __future__ import annotations

import re
from typing import Any

from hera_flows.steps.webhook_signature import (
    MalformedBody,
    Rejected,
    candidate_bodies,
    check_timestamp,
    decoded_digest,
    hmac_sha256_matches,
    parse_body,
    utf8,
)

__all__ = ["MalformedBody", "Rejected", "verify_databricks", "verify_mlflow"]

MLFLOW_SIGNATURE_VERSION = "v1"
_MAX_DELIVERY_ID = 200
_TIMESTAMP = re.compile(r"^[0-9]{1,15}$")


def verify_mlflow(
    body: str,
    *,
    signature: str,
    delivery_id: str,
    timestamp: str,
    secret: str,
    tolerance_seconds: int,
    now: float,
) -> dict[str, Any]:
    """Authenticate an MLflow OSS delivery and return its parsed body; StepError says what is wrong."""
    if not signature:
        raise Rejected("the delivery has no X-MLflow-Signature header (is a secret set on the MLflow webhook?)")
    version, sep, encoded = signature.strip().partition(",")
    if not sep or version != MLFLOW_SIGNATURE_VERSION:
        raise Rejected(f"the X-MLflow-Signature header is malformed (expected '{MLFLOW_SIGNATURE_VERSION},<base64>')")
    expected = decoded_digest(encoded, "base64", "the X-MLflow-Signature header")
    if not delivery_id:
        raise Rejected("the delivery has no X-MLflow-Delivery-Id header")
    if len(delivery_id) > _MAX_DELIVERY_ID or not delivery_id.isprintable():
        raise Rejected("the X-MLflow-Delivery-Id header is malformed")
    if not _TIMESTAMP.match(timestamp):
        raise Rejected(f"the X-MLflow-Timestamp header {timestamp[:40]!r} is not a Unix timestamp in seconds")

    candidates = candidate_bodies(body)
    prefix = f"{delivery_id}.{timestamp}."
    if not hmac_sha256_matches(secret, candidates, lambda b: utf8(prefix + b, "delivery"), expected):
        raise Rejected(
            "the X-MLflow-Signature does not match: the delivery was not signed with the configured webhook "
            "secret, or its body, delivery id or timestamp was changed"
        )
    check_timestamp(int(timestamp), now, tolerance_seconds, what="the delivery timestamp")
    return parse_body(body)


def event_timestamp_ms(payload: dict[str, Any]) -> int:
    """A Databricks event's ``event_timestamp`` (epoch milliseconds; a number, tolerated as a digit string)."""
    value = payload.get("event_timestamp")
    if isinstance(value, str) and _TIMESTAMP.match(value):
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise Rejected("the Databricks event has no numeric event_timestamp (epoch milliseconds)")
    return value


def verify_databricks(
    body: str,
    *,
    signature: str,
    secret: str,
    tolerance_seconds: int,
    now: float,
) -> dict[str, Any]:
    """Authenticate a Databricks registry webhook (signature only when a secret is configured).

    Its EventSource endpoint already demands a bearer token, so the signature is defence in depth; the
    ``event_timestamp`` (epoch ms) is always checked against the tolerance.
    """
    if secret:
        if not signature:
            raise Rejected("the delivery has no X-Databricks-Signature header, but a signing secret is configured")
        expected = decoded_digest(signature.strip(), "hex", "the X-Databricks-Signature header")
        if not hmac_sha256_matches(secret, candidate_bodies(body), lambda b: utf8(b, "event body"), expected):
            raise Rejected(
                "the X-Databricks-Signature does not match: the delivery was not signed with the configured "
                "secret, or its body was changed"
            )
    payload = parse_body(body)
    event_ms = event_timestamp_ms(payload)
    check_timestamp(event_ms / 1000, now, tolerance_seconds, what="the event timestamp")
    return payload
