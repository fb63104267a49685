"""The smoke step against a real HTTP stand-in of a KServe model server (tests/support/fixtures_kserve.py)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from hera_flows import cli
from hera_flows.steps.common import StepError
from hera_flows.steps.promotion import smoke
from tests.support.settings import generated_flags

FLAGS = generated_flags("promotion-smoke")  # what generate writes; a test's own flags come after and win
VALID_ISVC = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
  annotations:
    hera-flows.io/mlflow-model: {model}
    hera-flows.io/mlflow-version: "7"
spec:
  predictor:
    minReplicas: {min_replicas}
    model:
      modelFormat:
        name: mlflow
      protocolVersion: v2
      storageUri: s3://mlflow-artifacts/3/models/m-0a1b2c/artifacts
      resources:
        requests: {{cpu: 500m, memory: 1Gi}}
        limits: {{cpu: 1, memory: 2Gi}}
"""
CONFIG_MAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: fraud-detector-settings
data:
  threshold: "0.7"
"""


def isvc(name: str = "fraud-detector", model: str = "fraud-detector", min_replicas: object = 1) -> str:
    return VALID_ISVC.format(name=name, model=json.dumps(model), min_replicas=json.dumps(min_replicas))


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(smoke, "RETRY_BASE_DELAY", 0.05)


@pytest.fixture
def run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fast_retries: None):
    """Run the step like the pod does; returns (exit code, result, report)."""

    def _run(*flags: str, model: str = "fraud-detector", files: dict[str, str] | None = None, version: str = ""):
        monkeypatch.setenv("HF_PARAM_MODEL_NAME", model)
        monkeypatch.setenv("HF_PARAM_VERSION", version)
        monkeypatch.setenv("HF_PARAM_FILES", json.dumps(files or {}))
        out = tmp_path / "out"
        code = smoke.main([*FLAGS, *flags, f"--outputs={out}"])
        return code, (out / "result").read_text(), (out / "report").read_text()

    return _run


def test_v2_success_with_default_payload(kserve_server, run) -> None:
    code, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v2",
                               files={"inference/fraud-detector.yaml": isvc(), "model-cards/fraud.md": "# card"})
    assert (code, result) == (0, "passed")
    (request,) = kserve_server.inference_requests
    assert request.path == "/v2/models/fraud-detector/infer"
    assert request.headers["Content-Type"] == "application/json"
    assert request.json() == smoke.DEFAULT_PAYLOADS["v2"]
    assert "### Smoke test ✅ passed" in report
    row = "| InferenceService `inference/fraud-detector.yaml` | ✅ passed | valid against KServe v0.20.0 v1beta1 |"
    assert row in report
    assert "| HTTP status | ✅ passed | 200 after 1 attempt |" in report
    assert "| Response | ✅ passed | 1 output tensor(s) |" in report
    assert "| Latency | ✅ passed |" in report and "ms (max 2000 ms) |" in report
    assert "Problems" not in report


def test_v1_success_with_payload(kserve_server, run) -> None:
    payload = {"instances": [[1, 2, 3], [4, 5, 6]]}
    code, result, report = run(f"--endpoint={kserve_server.url}/", "--protocol=v1", f"--payload={json.dumps(payload)}")
    assert (code, result) == (0, "passed")
    (request,) = kserve_server.inference_requests
    assert request.path == "/v1/models/fraud-detector:predict"
    assert request.json() == payload
    assert "| Response | ✅ passed | 2 prediction(s) |" in report
    assert ("| Serving manifests | ➖ skipped | no InferenceService or Seldon resource among the changed files |"
            in report)


def test_endpoint_template_gets_the_dns_1123_model_name(kserve_server, run) -> None:
    kserve_server.prefix = "/fraud-detector"  # e.g. a path-based ingress route per model
    code, result, _ = run(f"--endpoint={kserve_server.url}/{{model}}", model="Fraud_Detector")
    assert (code, result) == (0, "passed")
    assert kserve_server.inference_requests[0].path == "/fraud-detector/v2/models/fraud-detector/infer"


def test_the_annotated_inference_service_names_the_served_model(kserve_server, run) -> None:
    kserve_server.model = "fraud-v2"
    files = {"inference/fraud.yaml": CONFIG_MAP + "---\n" + isvc(name="fraud-v2", model="Fraud Detector")}
    code, result, report = run(f"--endpoint={kserve_server.url}", model="Fraud Detector", files=files)
    assert (code, result) == (0, "passed")
    assert kserve_server.inference_requests[0].path == "/v2/models/fraud-v2/infer"
    assert "| InferenceService `inference/fraud.yaml` (document 2) | ✅ passed |" in report


def test_request_url() -> None:
    assert (smoke.request_url("http://{model}-predictor.staging.svc/", "fraud-detector", "v2")
            == "http://fraud-detector-predictor.staging.svc/v2/models/fraud-detector/infer")
    assert (smoke.request_url("https://kserve.example.com", "a b", "v1")
            == "https://kserve.example.com/v1/models/a%20b:predict")


def test_invalid_manifest_fails_even_when_the_endpoint_answers(kserve_server, run) -> None:
    files = {"inference/fraud-detector.yaml": CONFIG_MAP + "---\n" + isvc(min_replicas="1")}
    code, result, report = run(f"--endpoint={kserve_server.url}", files=files)
    assert (code, result) == (0, "failed")  # a completed check exits 0; `report` fails the run
    assert len(kserve_server.inference_requests) == 1  # the request is still made: the report tells everything
    assert "### Smoke test ❌ failed" in report
    assert ("| InferenceService `inference/fraud-detector.yaml` (document 2) | ❌ failed | "
            "1 problem(s) against KServe v0.20.0 |") in report
    assert ("inference/fraud-detector.yaml: spec.predictor.minReplicas: must be an integer, got the string '1'"
            in report)
    assert "| HTTP status | ✅ passed |" in report


def test_mistyped_kind_is_still_checked(kserve_server, run) -> None:
    files = {"inference/fraud-detector.yaml": isvc().replace("kind: InferenceService", "kind: Inferenceservice")}
    code, result, report = run(f"--endpoint={kserve_server.url}", files=files)
    assert (code, result) == (0, "failed")  # a completed check exits 0; `report` fails the run
    assert "kind: must be InferenceService, got the string 'Inferenceservice'" in report


def test_slow_server_fails_on_latency(kserve_server, run) -> None:
    kserve_server.delay = 0.3
    code, result, report = run(f"--endpoint={kserve_server.url}", "--max-latency-ms=100")
    assert (code, result) == (0, "failed")  # a completed check exits 0; `report` fails the run
    assert "| HTTP status | ✅ passed | 200 after 1 attempt |" in report
    assert "| Latency | ❌ failed | " in report
    latency = int(report.split("| Latency | ❌ failed | ")[1].split(" ms")[0])
    assert 300 <= latency < 2000
    assert f"latency {latency} ms exceeds the limit of 100 ms" in report


def test_500_then_200_passes_after_a_retry(kserve_server, run) -> None:
    kserve_server.fail_first = 1
    code, result, report = run(f"--endpoint={kserve_server.url}")
    assert (code, result) == (0, "passed")
    assert len(kserve_server.inference_requests) == 2
    assert "| HTTP status | ✅ passed | 200 after 2 attempts |" in report


def test_persistent_503_fails_after_bounded_retries(kserve_server, run) -> None:
    kserve_server.status = 503
    code, result, report = run(f"--endpoint={kserve_server.url}")
    assert (code, result) == (0, "failed")  # a completed check exits 0; `report` fails the run
    assert len(kserve_server.inference_requests) == smoke.ATTEMPTS
    assert f"| HTTP status | ❌ failed | 503 after {smoke.ATTEMPTS} attempts |" in report
    assert "HTTP 503 (expected 200)" in report


def test_unknown_model_404_fails_without_retrying(kserve_server, run) -> None:
    kserve_server.model = "another-model"
    code, result, report = run(f"--endpoint={kserve_server.url}")
    assert (code, result) == (0, "failed")  # a completed check exits 0; `report` fails the run
    assert len(kserve_server.inference_requests) == 1
    assert "| HTTP status | ❌ failed | 404 after 1 attempt |" in report
    assert "| Response | ➖ skipped | no successful response |" in report
    assert 'HTTP 404 (expected 200): {"error": "Model with name fraud-detector does not exist."}' in report


def test_nothing_listening_fails_with_a_clear_report(kserve_unreachable_url, run) -> None:
    started = time.monotonic()
    code, result, report = run(f"--endpoint={kserve_unreachable_url}", "--timeout-seconds=3")
    assert time.monotonic() - started < 4
    assert (code, result) == (0, "failed")  # a completed check exits 0; `report` fails the run
    assert f"| HTTP status | ❌ failed | no response after {smoke.ATTEMPTS} attempts |" in report
    assert "could not connect:" in report
    assert "| Latency | ➖ skipped | no response |" in report


def test_retries_stop_at_the_timeout(kserve_unreachable_url, run, monkeypatch) -> None:
    monkeypatch.setattr(smoke, "RETRY_BASE_DELAY", 2.0)  # the second attempt would start after the deadline
    started = time.monotonic()
    code, _, report = run(f"--endpoint={kserve_unreachable_url}", "--timeout-seconds=0.5")
    assert time.monotonic() - started < 1
    assert code == 0 and "no response after 1 attempt |" in report


def test_no_response_within_the_timeout(kserve_server, run) -> None:
    kserve_server.delay = 3
    started = time.monotonic()
    code, _, report = run(f"--endpoint={kserve_server.url}", "--timeout-seconds=0.5")
    assert time.monotonic() - started < 2
    assert code == 0
    assert "no response within 0.5 s (--timeout-seconds)" in report


@pytest.mark.parametrize(
    ("protocol", "raw_body", "problem"),
    [
        ("v2", None, 'outputs[0] has no valid "datatype" (got None)'),
        ("v2", None, 'outputs[0] has no valid "shape" (a list of non-negative integers)'),
        ("v1", None, 'the v1 response has no "predictions" list'),
        ("v2", b"<html>upstream</html>", "the response is not JSON: '<html>upstream</html>'"),
        ("v2", b'{"model_name": "fraud-detector", "outputs": [{"name": "o", "datatype": "FP32", "shape": [2], '
               b'"data": [1.0]}]}', "outputs[0] has 1 data element(s) but its shape [2] needs 2"),
    ],
)
def test_malformed_responses_fail(kserve_server, run, protocol, raw_body, problem) -> None:
    kserve_server.malformed = True
    kserve_server.raw_body = raw_body
    code, result, report = run(f"--endpoint={kserve_server.url}", f"--protocol={protocol}")
    assert (code, result) == (0, "failed")  # a completed check exits 0; `report` fails the run
    assert "| Response | ❌ failed |" in report
    assert problem in report


def test_report_keeps_server_text_inside_a_code_block(kserve_server, run) -> None:
    kserve_server.raw_body = None
    kserve_server.status = 400
    kserve_server._json = lambda status, body: (status, b"```\n@everyone [click](http://evil) | x", "text/plain")
    _, _, report = run(f"--endpoint={kserve_server.url}", model="fraud`detector")
    assert report.count("```") == 2  # the fence opened by the report and its closing one, nothing injected
    block = report.split("```text\n")[1].split("```")[0]
    assert "@everyone [click](http://evil)" in block
    assert "`fraud'detector`" in report


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--endpoint=http://x", "--payload={not json"], "--payload is not valid JSON"),
        (["--endpoint=http://x", "--payload=[1, 2]"], "--payload must be a JSON object"),
        (["--endpoint=http://x", "--payload="], "--payload is not valid JSON"),
        (["--endpoint=http://x", '--payload={"instances": [1]}'],
         '--payload for protocol v2 needs a non-empty "inputs"'),
        (["--endpoint=http://x", "--protocol=v1", '--payload={"inputs_": []}'], "--payload for protocol v1 needs"),
        (["--endpoint=http://x",
          '--payload={"inputs": [{"name": "a", "shape": [2], "datatype": "FP32", "data": [1]}]}'],
         "inputs[0] has 1 data element(s) but its shape [2] needs 2"),
        (["--endpoint="], "--endpoint is required"),
        (["--endpoint=http://{name}.svc"], "may only contain the placeholder {model}"),
        (["--endpoint=ftp://{model}.svc"], "--endpoint must be an http(s) URL"),
        (["--endpoint=http://x/?a=1"], "must not have a query or fragment"),
        (["--endpoint=http://x", "--timeout-seconds=0"], "must be positive"),
    ],
)
def test_usage_problems_are_step_errors(monkeypatch, tmp_path, flags, message) -> None:
    monkeypatch.setenv("HF_PARAM_MODEL_NAME", "fraud-detector")
    with pytest.raises(StepError) as info:
        smoke.main([*FLAGS, *flags, f"--outputs={tmp_path}"])
    assert message in str(info.value)
    assert (tmp_path / "result").read_text() == "failed"  # the report step still has something to post
    report = (tmp_path / "report").read_text()
    assert report.startswith("### Smoke test ❌ could not run\n") and message.replace("`", "'") in report


def test_missing_model_name_and_bad_files_parameter(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("HF_PARAM_MODEL_NAME", raising=False)
    with pytest.raises(StepError, match="missing input parameter 'model-name'"):
        smoke.main([*FLAGS, "--endpoint=http://x"])
    monkeypatch.setenv("HF_PARAM_MODEL_NAME", "fraud-detector")
    monkeypatch.setenv("HF_PARAM_FILES", '["inference/a.yaml"]')
    with pytest.raises(StepError, match="files parameter must be a JSON object"):
        smoke.main([*FLAGS, "--endpoint=http://x"])


def test_cli_turns_usage_problems_into_one_line_and_exit_1(monkeypatch, capsys) -> None:
    monkeypatch.setenv("HF_PARAM_MODEL_NAME", "fraud-detector")
    assert cli.main(["step", "promotion-smoke", *FLAGS, "--endpoint=http://x", "--payload={"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("promotion-smoke: --payload is not valid JSON") and "Traceback" not in err


# --- which version staging serves (hera_flows/steps/promotion/served_version.py) ---------------------------------


def test_the_promoted_version_answering_passes_and_the_report_says_where_it_was_read(kserve_server, run) -> None:
    kserve_server.served_version = "7"
    code, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v2", version="7")
    assert (code, result) == (0, "passed")
    row = next(line for line in report.splitlines() if line.startswith("| Served version"))
    assert "✅ passed" in row and "`7`" in row and "model_version" in row and "metadata" in row
    assert kserve_server.requests_to("GET", r"^/v2/models/fraud-detector$")  # the metadata was read too


def test_staging_still_serving_the_old_version_fails_with_a_clear_message(kserve_server, run) -> None:
    kserve_server.served_version = "6"
    started = time.monotonic()
    code, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v2", "--served-version-wait-seconds=1",
                               version="7")
    assert (code, result) == (0, "failed")  # the report step fails the run after posting this
    assert time.monotonic() - started >= 1  # it waited for the rollout before judging
    assert "staging still serves version '6', not the promoted version '7' after 1 s" in report
    assert len(kserve_server.inference_requests) >= 2  # looked again while waiting


def test_a_rollout_that_reaches_staging_while_the_step_waits_passes(kserve_server, run) -> None:
    import threading

    kserve_server.served_version = "6"
    timer = threading.Timer(0.8, lambda: setattr(kserve_server, "served_version", "7"))
    timer.start()
    try:
        code, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v2",
                                   "--served-version-wait-seconds=20", version="7")
    finally:
        timer.cancel()
    assert (code, result) == (0, "passed"), report
    assert "serves `7`" in report


def test_the_reported_form_follows_the_configured_format(kserve_server, run) -> None:
    kserve_server.served_version = "v7"
    code, result, _ = run(f"--endpoint={kserve_server.url}", "--protocol=v2", "--served-version-format=v{version}",
                          version="7")
    assert (code, result) == (0, "passed")
    code, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v2", "--served-version-wait-seconds=0",
                               version="7")
    assert result == "failed" and "`v7`" in report and "served_version.format" in report


def test_an_endpoint_that_reports_no_version_is_not_verifiable_unless_required(kserve_server, run) -> None:
    kserve_server.served_version = None
    started = time.monotonic()
    code, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v2", version="7")
    assert (code, result) == (0, "passed")
    assert time.monotonic() - started < 10  # nothing to wait for: judged at once, whatever the configured wait
    assert "| Served version | ➖ skipped | the endpoint reports no model version" in report
    code, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v2", "--served-version-required=true",
                               version="7")
    assert result == "failed" and "cannot verify that staging serves version '7'" in report


def test_v1_has_no_version_to_read(kserve_server, run) -> None:
    kserve_server.served_version = "6"
    code, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v1", version="7")
    assert (code, result) == (0, "passed")
    assert "| Served version | ➖ skipped |" in report
    assert not kserve_server.requests_to("GET")  # V1 metadata carries no version: not even asked


def test_the_check_can_be_turned_off_and_needs_a_version(kserve_server, run) -> None:
    kserve_server.served_version = "6"
    _, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v2", "--verify-served-version=false",
                            version="7")
    assert result == "passed" and "Served version" not in report
    _, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v2")  # no version input
    assert result == "passed" and "Served version" not in report


def test_a_hostile_reported_version_cannot_break_the_report(kserve_server, run) -> None:
    kserve_server.served_version = "6` | ✅ passed | <img src=x>" + "x" * 500
    _, result, report = run(f"--endpoint={kserve_server.url}", "--protocol=v2", "--served-version-wait-seconds=0",
                            version="7")
    assert result == "failed"
    row = next(line for line in report.splitlines() if line.startswith("| Served version"))
    assert row.count("|") == 4 + row.count("\\|") and "❌ failed" in row
    assert max(len(line) for line in report.splitlines()) < 1000
