"""Webhook signature verification on bodies as Argo Events delivers them (Go-compacted, HTML-escaped)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from pathlib import Path
from typing import Any

import pytest

from hera_flows.steps import webhook_signature
from hera_flows.steps.common import StepError
from hera_flows.steps.event_data import canonical_header
from hera_flows.steps.promotion import verify
from tests.support.go_json import argo_delivered, argo_event_data, go_compact

TOLERANCE = 300
SECRET = "s3cr3t-for-tests"


@pytest.fixture(scope="module")
def mlflow_sign():
    """MLflow's own signing function (mlflow/webhooks/delivery.py), so the tests sign exactly as MLflow does."""
    from mlflow.webhooks.delivery import _generate_hmac_signature

    return _generate_hmac_signature


def mlflow_delivery(mlflow_sign, payload: dict[str, Any], *, secret: str = SECRET, delivery_id: str = "d-1",
                    timestamp: str = "1795373934") -> dict[str, str]:
    """A request as MLflow sends it: body = json.dumps(payload) (as in _send_webhook_request), signed headers."""
    body = json.dumps(payload)
    return {
        "body": body,
        "headers": {
            "Content-Type": "application/json",
            "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": timestamp,
            "X-MLflow-Signature": mlflow_sign(secret, delivery_id, timestamp, body),
        },
    }


def check(delivered: dict[str, str], *, secret: str = SECRET, now: float | None = None) -> dict[str, Any]:
    return verify.verify_mlflow(
        delivered["event-body"],
        signature=delivered["signature"],
        delivery_id=delivered["delivery-id"],
        timestamp=delivered["timestamp"],
        secret=secret,
        tolerance_seconds=TOLERANCE,
        now=float(delivered["timestamp"]) + 5 if now is None else now,
    )


# --- the captured fixtures ---------------------------------------------------------------------------------


def _oss_fixtures(fixtures_dir: Path) -> list[Path]:
    return sorted((fixtures_dir / "mlflow-oss").glob("*.json"))


def test_every_mlflow_fixture_verifies_after_argo_events(fixtures_dir: Path) -> None:
    files = _oss_fixtures(fixtures_dir)
    assert len(files) >= 4
    for path in files:
        fixture = json.loads(path.read_text(encoding="utf-8"))
        delivered = argo_delivered(fixture["headers"], fixture["body"])
        assert delivered["event-body"] != fixture["body"], "Go compaction should have changed the bytes"
        assert check(delivered) == json.loads(fixture["body"]), path.name


def test_every_catalog_delivery_verifies_after_argo_events(fixtures_dir: Path) -> None:
    catalog = fixtures_dir / "mlflow-oss" / "catalog"
    index = json.loads((catalog / "deliveries.json").read_text(encoding="utf-8"))
    assert index["signing_secret"] == "example-webhook-secret"
    assert len(index["deliveries"]) >= 20
    for entry in index["deliveries"]:
        raw = (catalog / entry["file"]).read_bytes()  # byte for byte what MLflow signed
        headers = [tuple(pair) for pair in entry["headers"]]
        delivered = argo_delivered(headers, raw)
        assert delivered["event-body"].encode("utf-8") != raw
        payload = check(delivered, secret=index["signing_secret"])
        assert f"{payload['entity']}.{payload['action']}" == entry["event"], entry["file"]
        # the same delivery without Argo Events in between (e.g. replayed from a capture) verifies too
        direct = dict(delivered, **{"event-body": raw.decode("utf-8")})
        assert check(direct, secret=index["signing_secret"]) == payload


def test_budget_policy_numbers_survive(fixtures_dir: Path, mlflow_sign) -> None:
    body = (fixtures_dir / "mlflow-oss" / "catalog" / "budget_policy.exceeded.json").read_text(encoding="utf-8")
    signature = mlflow_sign(SECRET, "bp-1", "1795373934", body)
    headers = {"X-MLflow-Delivery-Id": "bp-1", "X-MLflow-Timestamp": "1795373934", "X-MLflow-Signature": signature}
    delivered = argo_delivered(headers, body)
    assert '"budget_amount":100.0' in delivered["event-body"]
    assert check(delivered)["data"]["current_spend"] == 105.5


# --- bodies MLflow could sign --------------------------------------------------------------------------------

TRICKY_PAYLOADS: list[dict[str, Any]] = [
    {"entity": "model_version_alias", "action": "created",
     "data": {"name": "<script>alert('x')</script>&amp;", "alias": "a>b<c&d", "version": "7"}},
    {"entity": "model_version", "action": "created",
     "data": {"name": "modèle-é", "description": "😀 emoji, 漢字 CJK, Ελληνικά", "tags": {"ключ": "значение"}}},
    {"entity": "x", "action": "y", "data": {"nested": {"a": [1, [2, [3, {"b": None}]], {}], "c": [], "d": {}},
                                            "t": True, "f": False}},
    {"entity": "x", "action": "y", "data": {"numbers": [1e-7, 1.0, -0.5, 0, -0, 12345678901234567890, 1e300,
                                                        2.5e-308, 3.141592653589793]}},
    {"entity": "x", "action": "y", "data": {"path": "C:\\models\\new\\t", "literal": "\\u003c is not <",
                                            "quotes": "\"quoted\" 'single'", "slash": "a/b</c"}},
    {"entity": "x", "action": "y", "data": {"lines": "line\u2028separator\u2029paragraph", "ctrl": "\x01\x1f\t\n\r\b\f",
                                            "del": "\x7f", "surrogates": "\U0001f600\U00020000"}},
    {"entity": "x", "action": "y", "data": {" spaced key ": " value , with : separators ", "": ""}},
]


@pytest.mark.parametrize("payload", TRICKY_PAYLOADS, ids=range(len(TRICKY_PAYLOADS)))
def test_tricky_bodies_verify_after_argo_events(mlflow_sign, payload: dict[str, Any]) -> None:
    request = mlflow_delivery(mlflow_sign, payload)
    delivered = argo_delivered(request["headers"], request["body"])
    assert check(delivered) == json.loads(request["body"])


def test_html_and_line_separators_are_what_go_escapes(mlflow_sign) -> None:
    request = mlflow_delivery(mlflow_sign, TRICKY_PAYLOADS[0])
    delivered = argo_delivered(request["headers"], request["body"])
    assert "\\u003cscript\\u003e" in delivered["event-body"] and "<" not in delivered["event-body"]
    assert webhook_signature.mlflow_signed_form(delivered["event-body"]) == request["body"]
    raw_separator = '{"a":"x\u2028y<"}'  # a sender that does not escape non-ASCII
    assert go_compact(raw_separator) == '{"a":"x\\u2028y\\u003c"}'
    assert webhook_signature.go_inverse_form(go_compact(raw_separator)) == raw_separator


def _random_string(rng: random.Random) -> str:
    alphabet = list("abc XYZ019<>&\\\"/:,{}[]") + ["\u2028", "\u2029", "é", "😀", "漢", "\x00", "\x1f", "\n", "\\u003c"]
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    kind = rng.randint(0, 7 if depth < 4 else 4)
    if kind == 0:
        return _random_string(rng)
    if kind == 1:
        return rng.choice([0, -1, 7, 10**20, -(10**15)])
    if kind == 2:
        return rng.choice([0.1, -0.5, 1.0, 1e-7, 1e21, 2.5e-10, -3.75, 1 / 3])
    if kind == 3:
        return rng.choice([True, False, None])
    if kind == 4:
        return _random_string(rng)
    if kind in (5, 6):
        return {_random_string(rng): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]


def test_reconstruction_is_exact_for_random_documents() -> None:
    rng = random.Random(20261122)
    for _ in range(500):
        document = {"data": _random_value(rng)}
        signed = json.dumps(document)  # what MLflow signs
        assert webhook_signature.mlflow_signed_form(go_compact(signed)) == signed
        assert webhook_signature.mlflow_signed_form(signed) == signed  # idempotent on an unmodified body


# --- tampering and malformed headers --------------------------------------------------------------------------


@pytest.fixture
def genuine(fixtures_dir: Path) -> dict[str, str]:
    fixture = json.loads((fixtures_dir / "mlflow-oss" / "model_version_alias_created.json").read_text())
    delivered = argo_delivered(fixture["headers"], fixture["body"])
    check(delivered)  # the untouched delivery passes
    return delivered


def test_any_changed_character_in_the_body_fails(genuine: dict[str, str]) -> None:
    body = genuine["event-body"]
    for i, ch in enumerate(body):
        for replacement in {"x", "0", " ", ch.swapcase()} - {ch}:
            tampered = dict(genuine, **{"event-body": body[:i] + replacement + body[i + 1 :]})
            with pytest.raises(StepError):
                check(tampered)


@pytest.mark.parametrize(
    ("old", "new"),
    [('"alias":"champion"', '"alias":"production"'), ('"version":"1"', '"version":"2"'),
     ('"name":"fraud-detector"', '"name":"fraud-detectorx"'), ('"action":"created"', '"action":"deleted"')],
)
def test_changed_fields_fail(genuine: dict[str, str], old: str, new: str) -> None:
    assert old in genuine["event-body"]
    tampered = dict(genuine, **{"event-body": genuine["event-body"].replace(old, new)})
    with pytest.raises(StepError, match="does not match"):
        check(tampered)


def test_changed_delivery_id_or_timestamp_fails(genuine: dict[str, str]) -> None:
    delivery_id = genuine["delivery-id"]
    with pytest.raises(StepError, match="does not match"):
        check(dict(genuine, **{"delivery-id": delivery_id[:-1] + ("0" if delivery_id[-1] != "0" else "1")}))
    with pytest.raises(StepError, match="does not match"):
        check(dict(genuine, timestamp=str(int(genuine["timestamp"]) + 1)))


def test_signature_from_another_secret_fails(genuine: dict[str, str]) -> None:
    with pytest.raises(StepError, match="does not match"):
        check(genuine, secret="another-secret")


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda s: s[:-4], "malformed"),  # truncated
        (lambda s: s[: len("v1,") + 20], "malformed"),
        (lambda s: "v0," + s[3:], "malformed"),
        (lambda s: s[3:], "malformed"),  # no version prefix
        (lambda s: "v1," + base64.b64encode(b"x" * 32).decode(), "does not match"),
        (lambda s: "v1,!!!notbase64!!!", "malformed"),
        (lambda s: "", "no X-MLflow-Signature"),
    ],
)
def test_bad_signature_headers_fail(genuine: dict[str, str], mangle, message: str) -> None:
    with pytest.raises(StepError, match=message):
        check(dict(genuine, signature=mangle(genuine["signature"])))


def test_timestamp_tolerance_past_and_future(genuine: dict[str, str]) -> None:
    ts = int(genuine["timestamp"])
    check(genuine, now=ts + TOLERANCE)
    check(genuine, now=ts - TOLERANCE)
    with pytest.raises(StepError, match="old, beyond the 300 s tolerance"):
        check(genuine, now=ts + TOLERANCE + 1)
    with pytest.raises(StepError, match="in the future"):
        check(genuine, now=ts - TOLERANCE - 1)


@pytest.mark.parametrize("timestamp", ["", "abc", "1.5", "-5", "1795373934 ", "１２３", "9" * 40])
def test_non_numeric_timestamp_fails(genuine: dict[str, str], timestamp: str) -> None:
    with pytest.raises(StepError, match="X-MLflow-Timestamp"):
        check(dict(genuine, timestamp=timestamp), now=1795373934)


def test_missing_delivery_id_fails(genuine: dict[str, str]) -> None:
    with pytest.raises(StepError, match="X-MLflow-Delivery-Id"):
        check(dict(genuine, **{"delivery-id": ""}))


def test_malformed_bodies_are_refused(mlflow_sign) -> None:
    for body in ['{"a":1,"a":2}', '{"a":NaN}', "[1,2]", '{"a":"unterminated', '{"a":"\\x"}']:
        headers = {"X-MLflow-Delivery-Id": "d", "X-MLflow-Timestamp": "100",
                   "X-MLflow-Signature": mlflow_sign(SECRET, "d", "100", body)}
        delivered = {"event-body": body, "signature": headers["X-MLflow-Signature"], "delivery-id": "d",
                     "timestamp": "100"}
        with pytest.raises(StepError):
            check(delivered, now=100)


# --- Databricks -----------------------------------------------------------------------------------------------


def databricks_sign(secret: str, body: str) -> str:
    return hmac.new(secret.encode(), body.encode(), hashlib.sha256).hexdigest()


@pytest.fixture
def databricks_payload(fixtures_dir: Path) -> dict[str, Any]:
    payload = json.loads((fixtures_dir / "databricks-registry" / "model_version_transitioned_stage.json").read_text())
    payload["text"] += " <b>&</b>"  # something Go escapes
    return payload


@pytest.mark.parametrize("style", ["compact", "python"])
def test_databricks_signature_verifies_after_argo_events(databricks_payload: dict[str, Any], style: str) -> None:
    body = json.dumps(databricks_payload, separators=(",", ":") if style == "compact" else None, ensure_ascii=False)
    headers = {"Content-Type": "application/json", "X-Databricks-Signature": databricks_sign("db-secret", body),
               "Authorization": "Bearer t0ken"}
    delivered = argo_delivered(headers, body)
    now = databricks_payload["event_timestamp"] / 1000 + 10
    result = verify.verify_databricks(delivered["event-body"], signature=delivered["databricks-signature"],
                                      secret="db-secret", tolerance_seconds=TOLERANCE, now=now)
    assert result == databricks_payload
    with pytest.raises(StepError, match="does not match"):
        verify.verify_databricks(delivered["event-body"].replace('"7"', '"8"'),
                                 signature=delivered["databricks-signature"], secret="db-secret",
                                 tolerance_seconds=TOLERANCE, now=now)
    with pytest.raises(StepError, match="no X-Databricks-Signature"):
        verify.verify_databricks(delivered["event-body"], signature="", secret="db-secret",
                                 tolerance_seconds=TOLERANCE, now=now)
    with pytest.raises(StepError, match="malformed"):
        verify.verify_databricks(delivered["event-body"], signature="zz" + delivered["databricks-signature"][2:],
                                 secret="db-secret", tolerance_seconds=TOLERANCE, now=now)


def test_databricks_timestamp_is_checked_without_a_secret(databricks_payload: dict[str, Any]) -> None:
    body = go_compact(json.dumps(databricks_payload))
    event_seconds = databricks_payload["event_timestamp"] / 1000
    assert verify.verify_databricks(body, signature="", secret="", tolerance_seconds=TOLERANCE,
                                    now=event_seconds + 1)["version"] == "7"
    with pytest.raises(StepError, match="tolerance"):
        verify.verify_databricks(body, signature="", secret="", tolerance_seconds=TOLERANCE,
                                 now=event_seconds + TOLERANCE + 1)
    broken = go_compact(json.dumps(dict(databricks_payload, event_timestamp="yesterday")))
    with pytest.raises(StepError, match="event_timestamp"):
        verify.verify_databricks(broken, signature="", secret="", tolerance_seconds=TOLERANCE, now=event_seconds)


# --- the Go emulation itself ------------------------------------------------------------------------------------


def test_go_emulation_matches_documented_go_behaviour() -> None:
    # json.Marshal(struct{Header http.Header; Body *json.RawMessage}) on a Go 1.22 toolchain gives exactly this:
    data = argo_event_data(
        [("x-mlflow-signature", "v1,a+b/c="), ("X-MLFLOW-DELIVERY-ID", "<id>"), ("Host", "h"), ("accept", "a"),
         ("Accept", "b")],
        b'{ "k" : [ 1 , 2.50 , "<&>" ] ,\n "u": "\\u00e9 \xe2\x80\xa8" }',
    )
    assert data == (
        '{"header":{"Accept":["a","b"],"X-Mlflow-Delivery-Id":["\\u003cid\\u003e"],'
        '"X-Mlflow-Signature":["v1,a+b/c="]},"body":{"k":[1,2.50,"\\u003c\\u0026\\u003e"],"u":"\\u00e9 \\u2028"}}'
    )
    assert canonical_header("x-mlflow-signature") == "X-Mlflow-Signature"
    assert canonical_header("bad header") == "bad header"
    with pytest.raises(ValueError):
        go_compact('{"a": NaN}')


# --- issue 16 item 13 ------------------------------------------------------------------------------------------------


def test_a_lone_surrogate_is_a_malformed_body_not_a_traceback() -> None:
    from hera_flows.steps.promotion.verify import MalformedBody, verify_mlflow

    body = '{"entity":"model_version_alias","data":{"name":"m\udc80"}}'  # undecodable bytes via surrogateescape
    signature = "v1," + base64.b64encode(b"\0" * 32).decode()
    with pytest.raises(MalformedBody, match="not valid UTF-8"):
        verify_mlflow(body, signature=signature, delivery_id="d", timestamp="1000", secret="s",
                      tolerance_seconds=300, now=1000)


def test_an_empty_secret_never_verifies_anything() -> None:
    """HMAC with an empty key is computable by anyone: refuse to verify instead of accepting such signatures."""
    import hashlib
    import hmac as hmac_module

    from hera_flows.steps.common import StepError
    from hera_flows.steps.promotion.verify import Rejected, verify_mlflow

    body = '{"entity":"model_version_alias"}'
    forged = hmac_module.new(b"", f"d.1000.{body}".encode(), hashlib.sha256).digest()
    with pytest.raises(StepError, match="no webhook secret is configured") as caught:
        verify_mlflow(body, signature="v1," + base64.b64encode(forged).decode(), delivery_id="d", timestamp="1000",
                      secret="", tolerance_seconds=300, now=1000)
    assert not isinstance(caught.value, Rejected)  # a misconfiguration fails the run, loudly


def test_a_signature_header_carries_exactly_one_hmac_sha256_value() -> None:
    """webhook_signature.decoded_digest, shared by MLflow's, Databricks' and drift's signed sources."""
    import base64
    import hashlib

    digest = hashlib.sha256(b"x").digest()
    what = "the X-Test-Signature header"
    assert webhook_signature.decoded_digest(base64.b64encode(digest).decode(), "base64", what) == digest
    assert webhook_signature.decoded_digest(digest.hex(), "hex", what) == digest
    for encoded, encoding, reason in [("!!!", "base64", "not base64"), ("zz", "hex", "not hex"),
                                      (digest.hex()[:-2], "hex", "not an HMAC-SHA256 value"),
                                      (base64.b64encode(digest[:16]).decode(), "base64", "not an HMAC-SHA256 value")]:
        with pytest.raises(webhook_signature.Rejected, match=rf"^{what} is malformed \({reason}\)$"):
            webhook_signature.decoded_digest(encoded, encoding, what)
