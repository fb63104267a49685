"""A flood of forged /mlflow deliveries and one genuine delivery behind them (issue 16 item 5).

OSS MLflow cannot send a bearer token, so anyone who can connect to the /mlflow port can post. What that costs,
shown through the generated Sensor (filters, parameter and annotation mapping, rate limit) and the guard step:

- the cheapest rejection first: a post without MLflow's signature headers in their exact shape is dropped by the
  Sensor and never becomes a Workflow;
- well-shaped forgeries become runs that end at the guard as ``decision=rejected``, claim nothing and (Succeeded)
  have their pod garbage-collected at once;
- the Sensor's rate limit delays the genuine delivery behind the forgeries far beyond the signature tolerance, but
  its timestamp is checked against when the EventSource *received* it, so it still proceeds (before the fix it was
  rejected as stale, and MLflow, having got 200, never retries).

The NetworkPolicy (generated/networkpolicies.yaml) is what keeps the forgers out in the first place.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from hera_flows import cli
from hera_flows.local.sensor import SensorError, event_context, route_event
from hera_flows.steps.promotion import guard
from tests.conftest import ROOT
from tests.support.go_json import argo_event_data
from tests.support.settings import generated_flags

SECRET = "s3cr3t-for-tests"
FLAGS = [*generated_flags("promotion-guard"), "--state-namespace=ml-automation"]


def route_event_with_context(sensors: list[dict], headers: dict[str, str], body: str, moment: datetime) -> dict:
    """The Workflow the promotion Sensor submits for this post, received by the EventSource at ``moment``."""
    from hera_flows.local.sensor import dependency_passes, submitted_workflow

    data = argo_event_data(headers, body)
    for sensor in sensors:
        dependencies = {d["name"]: d for d in sensor["spec"]["dependencies"]}
        for trigger in sensor["spec"]["triggers"]:
            dependency = dependencies[trigger["template"]["conditions"]]
            if trigger["template"]["name"] == "promote-from-mlflow" and dependency_passes(dependency, data)[0]:
                return submitted_workflow(trigger, dependency["name"], data, event_context(moment))
    raise AssertionError("not routed")


def _run_guard(monkeypatch: pytest.MonkeyPatch, state: Path, workflow: dict, now: float, index: int,
               out: Path) -> tuple[int, dict[str, str], str]:
    """The guard as its pod runs it: parameters in the environment, the event in its Workflow's annotations."""
    name = f"mlflow-promotion-{index:05d}"
    (state / "workflows").mkdir(parents=True, exist_ok=True)
    (state / "workflows" / f"{name}.json").write_text(json.dumps({"metadata": workflow["metadata"]}))
    params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    for key in [k for k in __import__("os").environ if k.startswith("HF_PARAM_")]:
        monkeypatch.delenv(key)
    for key, value in {**params, "workflow-name": name, "workflow-uid": str(uuid.uuid5(uuid.NAMESPACE_URL, name)),
                       "manual": "false"}.items():
        monkeypatch.setenv("HF_PARAM_" + key.upper().replace("-", "_"), value)
    monkeypatch.setattr(guard, "_now", lambda: now)
    code = cli.main(["step", "promotion-guard", *FLAGS, f"--outputs={out}"])
    outputs = {p.name: p.read_text() for p in out.iterdir()} if out.is_dir() else {}
    return code, outputs, ""


def test_a_flood_of_forgeries_cannot_make_a_genuine_delivery_stale(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fixtures_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sensors = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "sensors").glob("*.yaml"))]
    [promotion] = [s for s in sensors if s["metadata"]["name"] == "mlflow-promotion"]
    limit = next(
        t for t in promotion["spec"]["triggers"] if t["template"]["name"] == "promote-from-mlflow"
    )["rateLimit"]
    per_second = limit["requestsPerUnit"] / {"Second": 1, "Minute": 60, "Hour": 3600}[limit["unit"]]
    state = tmp_path / "state"
    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(state))
    monkeypatch.setenv("HF_WEBHOOK_SECRET", SECRET)

    genuine = json.loads((fixtures_dir / "mlflow-oss" / "model_version_alias_created.json").read_text())
    signed_at = float(genuine["headers"]["X-MLflow-Timestamp"])
    body = json.dumps(genuine["body"]) if not isinstance(genuine["body"], str) else genuine["body"]

    # 1. without MLflow's header shapes the Sensor drops the post: no Workflow at all
    for headers in ({}, {"X-MLflow-Signature": "v1,x", "X-MLflow-Delivery-Id": "d", "X-MLflow-Timestamp": "1"}):
        with pytest.raises(SensorError, match="filters drop"):
            route_event(sensors, "mlflow-promotion", argo_event_data(headers, body))

    # 2. 100 well-shaped forgeries arrive in the same second as the genuine delivery, just before it
    forged_headers = [{"X-MLflow-Signature": "v1," + "Zm9yZ2Vk" * 5 + "AAA=", "X-MLflow-Delivery-Id": f"f-{i}",
                       "X-MLflow-Timestamp": str(int(signed_at))} for i in range(100)]
    queue = [route_event_with_context(sensors, h, body, datetime.fromtimestamp(signed_at + 1, timezone.utc))
             for h in forged_headers]
    queue.append(route_event_with_context(sensors, genuine["headers"], body,
                                          datetime.fromtimestamp(signed_at + 1, timezone.utc)))
    assert all(set(p["name"] for p in w["spec"]["arguments"]["parameters"]) == {"event-source", "received-at"}
               for w in queue)  # untrusted fields only in annotations

    # 3. the rate limiter releases one trigger per 1/rate seconds: the genuine one runs after all the forgeries
    decisions = []
    for index, workflow in enumerate(queue):
        runs_at = signed_at + 1 + index / per_second
        code, out, _ = _run_guard(monkeypatch, state, workflow, runs_at, index, tmp_path / f"out-{index}")
        assert code == 0
        decisions.append(out["decision"])
    delay = len(queue) / per_second
    assert delay > 300  # far past the signature tolerance
    assert decisions[:-1] == ["rejected"] * 100 and decisions[-1] == "proceed"
    # the forgeries claimed nothing: the Leases are the genuine delivery's replay record and its claim on the version
    leases = list((state / "ml-automation").glob("hf-*.json"))
    assert sorted(json.loads(p.read_text())["metadata"]["annotations"]["hera-flows.io/key"] for p in leases) == [
        "fraud-detector@v1", f"mlflow:{genuine['headers']['X-MLflow-Delivery-Id']}"]
    capsys.readouterr()


def test_a_replay_long_after_the_signature_is_still_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                            fixtures_dir: Path) -> None:
    """The received time is the EventSource's, which a sender cannot set: a captured delivery posted again an hour
    later is stale however fast it is processed."""
    sensors = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "sensors").glob("*.yaml"))]
    state = tmp_path / "state"
    monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(state))
    monkeypatch.setenv("HF_WEBHOOK_SECRET", SECRET)
    genuine = json.loads((fixtures_dir / "mlflow-oss" / "model_version_alias_created.json").read_text())
    signed_at = float(genuine["headers"]["X-MLflow-Timestamp"])
    body = json.dumps(genuine["body"]) if not isinstance(genuine["body"], str) else genuine["body"]
    replayed = route_event_with_context(sensors, genuine["headers"], body,
                                        datetime.fromtimestamp(signed_at + 3600, timezone.utc))
    code, out, _ = _run_guard(monkeypatch, state, replayed, signed_at + 3601, 1, tmp_path / "out")
    assert code == 0 and out["decision"] == "rejected" and "beyond the 300 s tolerance" in out["reason"]
