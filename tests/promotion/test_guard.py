"""`hera-flows step guard` end to end: parameters in env vars, outputs in files, decisions and rejections."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pytest

from hera_flows import cli
from hera_flows.steps import gitrepo
from hera_flows.steps.naming import branch_name, dedupe_key, lease_name
from hera_flows.steps.promotion import guard
from tests.support.go_json import argo_delivered, go_compact
from tests.support.settings import generated_flags

OSS_SECRET = "s3cr3t-for-tests"
CATALOG_SECRET = "example-webhook-secret"
FLAGS = [*generated_flags("promotion-guard"), "--state-namespace=ml-automation"]
OUTPUTS = ["decision", "reason", "model", "version", "alias", "dedupe-key", "branch", "event", "title", "rollout-step"]


class Guard:
    """Runs the guard like a pod does: env params, a secret, the file lease store, a fixed clock."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.monkeypatch, self.tmp_path, self.capsys = monkeypatch, tmp_path, capsys
        self.runs = 0
        monkeypatch.setenv("HERA_FLOWS_STATE_DIR", str(tmp_path / "state"))
        for name in ("HF_WEBHOOK_SECRET", "HF_DATABRICKS_SECRET"):
            monkeypatch.delenv(name, raising=False)

    def run(self, params: dict[str, str], *, now: float, secret: str | None = None,
            databricks_secret: str | None = None, workflow: str | None = None,
            flags: list[str] | None = None) -> tuple[int, dict[str, str], str]:
        self.runs += 1
        workflow = workflow or f"mlflow-promotion-{self.runs:05d}"
        env = {"workflow-name": workflow, "workflow-uid": str(uuid.uuid5(uuid.NAMESPACE_URL, workflow))} | params
        for key in list(__import__("os").environ):
            if key.startswith("HF_PARAM_"):
                self.monkeypatch.delenv(key)
        for key, value in env.items():
            self.monkeypatch.setenv("HF_PARAM_" + key.upper().replace("-", "_"), value)
        if secret is not None:
            self.monkeypatch.setenv("HF_WEBHOOK_SECRET", secret)
        if databricks_secret is not None:
            self.monkeypatch.setenv("HF_DATABRICKS_SECRET", databricks_secret)
        self.monkeypatch.setattr(guard, "_now", lambda: now)
        out = self.tmp_path / f"out-{self.runs}"
        self.capsys.readouterr()
        code = cli.main(["step", "promotion-guard", *(FLAGS if flags is None else flags), f"--outputs={out}"])
        stderr = self.capsys.readouterr().err
        outputs = {p.name: p.read_text(encoding="utf-8") for p in out.iterdir()} if out.is_dir() else {}
        return code, outputs, stderr


@pytest.fixture
def run_guard(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Guard:
    return Guard(monkeypatch, tmp_path, capsys)


def mlflow_params(headers: Any, body: str | bytes) -> dict[str, str]:
    delivered = argo_delivered(headers, body)
    return {"event-source": "mlflow", "manual": "false", **delivered}


def oss_fixture(fixtures_dir: Path, name: str) -> tuple[dict[str, str], float]:
    fixture = json.loads((fixtures_dir / "mlflow-oss" / name).read_text(encoding="utf-8"))
    return mlflow_params(fixture["headers"], fixture["body"]), float(fixture["headers"]["X-MLflow-Timestamp"])


def catalog_fixture(fixtures_dir: Path, file: str) -> tuple[dict[str, str], float]:
    catalog = fixtures_dir / "mlflow-oss" / "catalog"
    entry = next(e for e in json.loads((catalog / "deliveries.json").read_text())["deliveries"] if e["file"] == file)
    headers = [tuple(pair) for pair in entry["headers"]]
    timestamp = next(value for key, value in headers if key == "X-MLflow-Timestamp")
    return mlflow_params(headers, (catalog / file).read_bytes()), float(timestamp)


def assert_refused(code: int, outputs: dict[str, str], stderr: str, message: str) -> None:
    """A misconfiguration or a bad hand-given input fails the step with one line (no decision is made)."""
    assert code == 1, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("promotion-guard: ") and message in lines[-1], stderr
    assert "decision" not in outputs


def assert_rejected(code: int, outputs: dict[str, str], stderr: str, message: str) -> None:
    """A rejected delivery ends the run with decision=rejected and the reason in one line; nothing is claimed and
    no later task gets a model (issue 16 item 5: little is left behind, and the alert counts it)."""
    assert code == 0, stderr
    assert "Traceback" not in stderr
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("promotion-guard: decision=rejected") and message in lines[-1], stderr
    assert outputs["decision"] == "rejected" and message in outputs["reason"]
    assert outputs["model"] == outputs["branch"] == outputs["dedupe-key"] == ""


# --- accepted events ----------------------------------------------------------------------------------------------


def test_oss_fixture_proceeds(run_guard: Guard, fixtures_dir: Path) -> None:
    params, ts = oss_fixture(fixtures_dir, "model_version_alias_created.json")
    code, out, stderr = run_guard.run(params, now=ts + 2, secret=OSS_SECRET)
    assert code == 0, stderr
    assert set(out) == set(OUTPUTS)
    assert out["decision"] == "proceed"
    assert (out["model"], out["version"], out["alias"]) == ("fraud-detector", "1", "champion")
    assert out["dedupe-key"] == "fraud-detector@v1"
    assert out["branch"] == "model-promotion/fraud-detector-v1"
    assert out["title"] == "Promote fraud-detector v1 to champion"
    assert json.loads(out["event"]) == {
        "source": "mlflow", "model": "fraud-detector", "version": "1", "alias": "champion", "stage": None,
        "delivery_id": "1178b31a-79be-4180-a66d-bc94108c6795", "timestamp": "2026-11-22T18:58:54Z", "manual": False,
    }
    assert "promotion-guard: decision=proceed" in stderr and stderr.count("decision=") == 1


@pytest.mark.parametrize(("file", "model"), [("model_version_alias.created.json", "fraud-detector"),
                                             ("model_version_alias.created.churn-model.json", "churn-model")])
def test_catalog_alias_fixtures_proceed(run_guard: Guard, fixtures_dir: Path, file: str, model: str) -> None:
    params, ts = catalog_fixture(fixtures_dir, file)
    code, out, stderr = run_guard.run(params, now=ts - 30, secret=CATALOG_SECRET)
    assert code == 0, stderr
    assert out["decision"] == "proceed" and out["model"] == model and out["branch"] == f"model-promotion/{model}-v1"


def test_databricks_fixture_proceeds(run_guard: Guard, fixtures_dir: Path) -> None:
    payload = json.loads((fixtures_dir / "databricks-registry" / "model_version_transitioned_stage.json").read_text())
    body = json.dumps(payload, separators=(",", ":"))
    signature = hmac.new(b"db-secret", body.encode(), hashlib.sha256).hexdigest()
    delivered = argo_delivered({"X-Databricks-Signature": signature, "Authorization": "Bearer x"}, body)
    params = {"event-source": "databricks", "event-body": delivered["event-body"],
              "databricks-signature": delivered["databricks-signature"]}
    now = payload["event_timestamp"] / 1000 + 1
    code, out, stderr = run_guard.run(params, now=now, databricks_secret="db-secret")
    assert code == 0, stderr
    assert (out["decision"], out["model"], out["version"], out["alias"]) == ("proceed", "fraud-detector", "7",
                                                                             "Production")
    event = json.loads(out["event"])
    assert event["source"] == "databricks" and event["stage"] == "Production" and event["alias"] is None
    assert out["title"] == "Promote fraud-detector v7 to Production"

    # same event again from another workflow: a replay
    code, out, stderr = run_guard.run(params, now=now, databricks_secret="db-secret")
    assert_rejected(code, out, stderr, "already processed")
    # the signature matters once a secret is configured, and the stage filter applies
    code, out, stderr = run_guard.run(dict(params, **{"databricks-signature": "00" * 32}), now=now,
                                      databricks_secret="db-secret")
    assert_rejected(code, out, stderr, "X-Databricks-Signature does not match")


def test_databricks_other_stage_skips(run_guard: Guard, fixtures_dir: Path) -> None:
    payload = json.loads((fixtures_dir / "databricks-registry" / "model_version_transitioned_stage.json").read_text())
    payload["to_stage"] = "Staging"
    params = {"event-source": "databricks", "event-body": go_compact(json.dumps(payload))}
    code, out, stderr = run_guard.run(params, now=payload["event_timestamp"] / 1000)
    assert code == 0, stderr
    assert out["decision"] == "skip" and "'Staging'" in out["reason"]
    assert out["branch"] == "" and out["dedupe-key"] == ""


# --- skips --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file", "reason"),
    [
        ("model_version_alias.deleted.json", "model_version_alias.deleted is not a promotion"),
        ("test_webhook.model_version_alias.created.json", "alias 'example_alias' is not one of"),
        ("model_version.created.json", "model_version.created is not a promotion"),
        ("test_webhook.model_version.created.json", "model_version.created is not a promotion"),
        ("prompt_alias.created.json", "prompt_alias.created is not a promotion"),
        ("model_version_tag.set.json", "model_version_tag.set is not a promotion"),
    ],
)
def test_non_promotions_skip(run_guard: Guard, fixtures_dir: Path, file: str, reason: str) -> None:
    params, ts = catalog_fixture(fixtures_dir, file)
    code, out, stderr = run_guard.run(params, now=ts, secret=CATALOG_SECRET)
    assert code == 0, stderr
    assert out["decision"] == "skip" and reason in out["reason"]
    assert set(out) == set(OUTPUTS) and out["branch"] == "" and out["title"] == ""
    assert "decision=skip" in stderr


def test_alias_outside_the_configured_list_skips(run_guard: Guard, fixtures_dir: Path) -> None:
    params, ts = oss_fixture(fixtures_dir, "model_version_alias_created.json")
    flags = [f if not f.startswith("--aliases") else "--aliases=production" for f in FLAGS]
    code, out, stderr = run_guard.run(params, now=ts, secret=OSS_SECRET, flags=flags)
    assert code == 0 and out["decision"] == "skip" and "'champion'" in out["reason"]


# --- rejections ---------------------------------------------------------------------------------------------------


def test_bad_signature_is_rejected(run_guard: Guard, fixtures_dir: Path) -> None:
    params, ts = oss_fixture(fixtures_dir, "model_version_alias_created.json")
    code, out, stderr = run_guard.run(params, now=ts, secret="not-the-secret")
    assert_rejected(code, out, stderr, "X-MLflow-Signature does not match")
    tampered = dict(params, **{"event-body": params["event-body"].replace("champion", "production")})
    code, out, stderr = run_guard.run(tampered, now=ts, secret=OSS_SECRET)
    assert_rejected(code, out, stderr, "X-MLflow-Signature does not match")


def test_missing_signature_is_rejected(run_guard: Guard, fixtures_dir: Path) -> None:
    params, ts = oss_fixture(fixtures_dir, "model_version_alias_created.json")
    code, out, stderr = run_guard.run(dict(params, signature=""), now=ts, secret=OSS_SECRET)
    assert_rejected(code, out, stderr, "no X-MLflow-Signature header")


def test_missing_secret_is_a_clear_error(run_guard: Guard, fixtures_dir: Path) -> None:
    params, ts = oss_fixture(fixtures_dir, "model_version_alias_created.json")
    code, out, stderr = run_guard.run(params, now=ts)
    assert_refused(code, out, stderr, "HF_WEBHOOK_SECRET is not set")


def test_stale_and_future_timestamps_are_rejected(run_guard: Guard, fixtures_dir: Path) -> None:
    params, ts = oss_fixture(fixtures_dir, "model_version_alias_created.json")
    code, out, stderr = run_guard.run(params, now=ts + 301, secret=OSS_SECRET)
    assert_rejected(code, out, stderr, "beyond the 300 s tolerance")
    code, out, stderr = run_guard.run(params, now=ts - 301, secret=OSS_SECRET)
    assert_rejected(code, out, stderr, "in the future")


def test_replayed_delivery_is_rejected_but_a_retry_is_not(run_guard: Guard, fixtures_dir: Path) -> None:
    params, ts = oss_fixture(fixtures_dir, "model_version_alias_created.json")
    code, out, _ = run_guard.run(params, now=ts, secret=OSS_SECRET, workflow="mlflow-promotion-first")
    assert code == 0 and out["decision"] == "proceed"
    code, out, _ = run_guard.run(params, now=ts + 1, secret=OSS_SECRET, workflow="mlflow-promotion-first")
    assert code == 0 and out["decision"] == "proceed"  # Argo retried the guard pod of the same workflow
    code, out, stderr = run_guard.run(params, now=ts + 2, secret=OSS_SECRET, workflow="mlflow-promotion-second")
    assert_rejected(code, out, stderr, "delivery 1178b31a-79be-4180-a66d-bc94108c6795 was already processed")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"event-source": "gitlab"}, "unknown event-source"),
        ({"event-body": ""}, "the event body is empty"),
        ({"manual": "yes"}, "must be 'true' or 'false'"),
    ],
)
def test_bad_parameters_are_rejected(run_guard: Guard, fixtures_dir: Path, change: dict[str, str],
                                     message: str) -> None:
    params, ts = oss_fixture(fixtures_dir, "model_version_alias_created.json")
    code, out, stderr = run_guard.run(params | change, now=ts, secret=OSS_SECRET)
    assert_refused(code, out, stderr, message)


def test_signed_but_malformed_promotion_is_rejected(run_guard: Guard, fixtures_dir: Path) -> None:
    from mlflow.webhooks.delivery import _generate_hmac_signature

    for data, message in [({"name": "m", "alias": "champion", "version": "0"}, "not a positive integer"),
                          ({"name": "bad\u202ename", "alias": "champion", "version": "3"}, "control characters"),
                          ({"alias": "champion", "version": "3"}, "model name is missing")]:
        body = json.dumps({"entity": "model_version_alias", "action": "created", "timestamp": "t", "data": data})
        headers = {"X-MLflow-Delivery-Id": "d", "X-MLflow-Timestamp": "1000",
                   "X-MLflow-Signature": _generate_hmac_signature(OSS_SECRET, "d", "1000", body)}
        code, out, stderr = run_guard.run(mlflow_params(headers, body), now=1000, secret=OSS_SECRET)
        assert_refused(code, out, stderr, message)  # authentic, but not a promotion the guard can act on


# --- manual runs --------------------------------------------------------------------------------------------------


def test_manual_run_skips_signatures(run_guard: Guard) -> None:
    params = {"manual": "true", "model-name": "Fraud Detector", "version": "007", "alias": "manual"}
    code, out, stderr = run_guard.run(params, now=1795373934)
    assert code == 0, stderr
    assert (out["decision"], out["model"], out["version"]) == ("proceed", "Fraud Detector", "7")
    assert out["title"] == "Promote Fraud Detector v7 (manual run)"
    assert out["branch"].startswith("model-promotion/fraud-detector-v7-") and out["branch"] != \
        "model-promotion/fraud-detector-v7"
    assert json.loads(out["event"])["manual"] is True
    # a second manual run of the same model is allowed (no replay record for hand-submitted runs)
    assert run_guard.run(params, now=1795373934)[0] == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"model-name": "m", "version": "0"}, "not a positive integer"),
        ({"model-name": "m", "version": "-3"}, "not a positive integer"),
        ({"model-name": "m", "version": "1.5"}, "not a positive integer"),
        ({"model-name": "m", "version": ""}, "not a positive integer"),
        ({"model-name": "m", "version": "٣"}, "not a positive integer"),  # a non-ASCII digit
        ({"model-name": "", "version": "3"}, "model name is missing"),
        ({"model-name": "bad\nname", "version": "3"}, "control characters"),
        ({"model-name": "x" * 257, "version": "3"}, "longer than 256"),
    ],
)
def test_manual_run_validates_inputs(run_guard: Guard, params: dict[str, str], message: str) -> None:
    code, out, stderr = run_guard.run({"manual": "true", **params}, now=0)
    assert_refused(code, out, stderr, message)


# --- through the Kubernetes API -----------------------------------------------------------------------------------


def test_replay_record_is_a_lease_owned_by_the_workflow(run_guard: Guard, fixtures_dir: Path, kube_api,
                                                         monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("HERA_FLOWS_STATE_DIR")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kube_api.write_kubeconfig(tmp_path / "kubeconfig")))
    params, ts = oss_fixture(fixtures_dir, "model_version_alias_created.json")

    code, out, stderr = run_guard.run(params, now=ts, secret=OSS_SECRET, workflow="mlflow-promotion-k8s01")
    assert code == 0 and out["decision"] == "proceed", stderr
    lease = kube_api.leases[("ml-automation", lease_name("replay", "mlflow:1178b31a-79be-4180-a66d-bc94108c6795"))]
    assert lease["metadata"]["ownerReferences"] == [{
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow", "name": "mlflow-promotion-k8s01",
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, "mlflow-promotion-k8s01")),
    }]
    assert lease["metadata"]["annotations"]["hera-flows.io/key"] == "mlflow:1178b31a-79be-4180-a66d-bc94108c6795"

    code, out, stderr = run_guard.run(params, now=ts, secret=OSS_SECRET, workflow="mlflow-promotion-k8s02")
    assert_rejected(code, out, stderr, "was already processed")


# --- naming -------------------------------------------------------------------------------------------------------


def _valid_branch(name: str) -> bool:
    return gitrepo.run_git(["check-ref-format", "--branch", name], check=False).returncode == 0


def test_branch_names_for_clean_inputs_stay_readable() -> None:
    assert branch_name("model-promotion", "fraud-detector", "v7") == "model-promotion/fraud-detector-v7"
    assert branch_name("model-promotion", "bert.base", "v12") == "model-promotion/bert.base-v12"
    assert dedupe_key("fraud-detector", "v7") == "fraud-detector@v7"
    assert dedupe_key("a@b", "c") != dedupe_key("a", "b@c")
    assert dedupe_key("x\ny", "%") == "x%0Ay@%25"


def test_branch_names_are_valid_and_distinct_for_untrusted_inputs() -> None:
    nasty = ["Fraud Detector", "fraud-detector", "fraud_detector", "FRAUD-DETECTOR", "-leading", ".hidden",
             "a..b", "a/b", "refs/heads/main", "x.lock", "@{-1}", "@", "~^:?*[\\", "name with \t tab",
             "日本語モデル", "😀", "", "-", ".", "a" * 300, "a" * 300 + "b", "trailing.", "end-", "mod el\x00",
             "HEAD", "a-b", "a", "b-c", "ça/va", "x" * 95 + ".lock"]
    rng = random.Random(7)
    alphabet = "aZ09-._/@{}~^:?*[\\ \t\n..é😀"
    nasty += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))) for _ in range(200)]
    seen: dict[str, str] = {}
    for model in nasty:
        branch = branch_name("model-promotion", model, "v7")
        assert _valid_branch(branch), (model, branch)
        assert len(branch) <= 120
        assert branch.startswith("model-promotion/")
        assert seen.setdefault(branch, model) == model, f"{model!r} and {seen[branch]!r} share {branch}"
    # parts are kept apart too
    assert branch_name("p", "a-b", "c") != branch_name("p", "a", "b-c")
    assert branch_name("p", "", "v7") != branch_name("p", "v7")


def test_branch_prefix_is_validated() -> None:
    from hera_flows.steps.common import StepError

    for prefix in ("", "Model", "-x", "a//b", "a/../b", "a/", "x.lock"):
        with pytest.raises(StepError, match="branch prefix"):
            branch_name(prefix, "m", "v1")
