"""Property-based tests (hypothesis) for every parser that reads outside input: random and mutated input never
ends in a traceback, only in a result or in the module's one clear error (ConfigError, StepError and its
subclasses, SensorError, ExpressionError). Where a round trip exists (a signed event, a gjson path into valid
JSON, a YAML edit) the property also checks the result is right, not only that nothing crashed.

Parsers covered: the configuration (``config.parse_config``), the promotion guard's event parsing and signature
checks (``steps/verify.py`` and the ``guard`` step through the CLI), the local sensor's gjson reader and routing
(``local/sensor.py``), deployment tags (``steps/deployment_tags.py``), the YAML editor (``steps/yaml_patch.py``)
and the local expression language (``local/expressions.py``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import io
import json
import os
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from hera_flows import cli
from hera_flows.config import Config, ConfigError, parse_config
from hera_flows.local import sensor
from hera_flows.local.expressions import ExpressionError, evaluate
from hera_flows.steps import webhook_signature
from hera_flows.steps.common import EXIT_OK, EXIT_REJECTED, StepError
from hera_flows.steps.promotion import verify
from hera_flows.steps.promotion.deployment_tags import DEPLOYMENT_TAGS, INT32_MAX, parse_deployment_tags
from hera_flows.steps.yaml_patch import YamlPatchError, load_documents, read_value, set_value
from tests.conftest import ROOT
from tests.support.go_json import go_compact
from tests.support.settings import generated_flags

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

CONFIG_TEXT = (ROOT / "config" / "flows.yaml").read_text(encoding="utf-8")

# -- building blocks ------------------------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
# Text with the characters parsers trip over: quotes, escapes, brackets, separators, control characters.
nasty_text = st.text(
    alphabet=st.sampled_from('{}[]":,\\/ \t\n\r0123456789abcdefu-+.eEtrn<>&\x00\u2028é') | st.characters(),
    max_size=60,
)


def one_line(message: str) -> bool:
    return bool(message.strip()) and "Traceback" not in message


# ------------------------------------------------------------------------------------------------------------
# Configuration


def _leaf_paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    paths = [prefix] if prefix else []
    if isinstance(data, dict):
        for key, value in data.items():
            paths += _leaf_paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            paths += _leaf_paths(value, (*prefix, index))
    return paths


_BASE_CONFIG = yaml.safe_load(CONFIG_TEXT)
_CONFIG_PATHS = _leaf_paths(_BASE_CONFIG)


def _mutate(data: Any, path: tuple[Any, ...], action: str, value: Any) -> Any:
    import copy

    out = copy.deepcopy(data)
    holder = out
    for part in path[:-1]:
        holder = holder[part]
    last = path[-1]
    if action == "delete":
        del holder[last]
    elif action == "replace":
        holder[last] = value
    else:  # add an unknown sibling key (a typo) next to the field
        if isinstance(holder, dict):
            holder[f"{last}x"] = value
        else:
            holder.append(value)
    return out


def _check_config(text: str) -> None:
    try:
        config = parse_config(text, "flows.yaml")
    except ConfigError as exc:
        assert exc.problems, "a ConfigError must say what is wrong"
        for problem in exc.problems:
            assert isinstance(problem, str) and "\n" not in problem, problem
            assert problem.startswith("flows.yaml"), problem
            assert one_line(problem)
    else:
        assert isinstance(config, Config)


@PROPERTY
@given(st.sampled_from(_CONFIG_PATHS), st.sampled_from(["delete", "replace", "add"]), json_values)
def test_a_mutated_configuration_is_accepted_or_refused_with_located_problems(path, action, value) -> None:
    _check_config(yaml.safe_dump(_mutate(_BASE_CONFIG, path, action, value), allow_unicode=True))


@PROPERTY
@given(nasty_text)
@example("[" * 5000)
@example("a: " + "{a: " * 3000)
@example("\x1f")
def test_arbitrary_text_as_configuration_never_crashes(text) -> None:
    _check_config(text)


@PROPERTY
@given(st.integers(min_value=0, max_value=len(CONFIG_TEXT) - 1), st.integers(min_value=1, max_value=20), nasty_text)
def test_a_configuration_file_with_a_damaged_span_never_crashes(start, length, replacement) -> None:
    _check_config(CONFIG_TEXT[:start] + replacement + CONFIG_TEXT[start + length :])


@FEW
@given(st.sampled_from(_CONFIG_PATHS), st.sampled_from(["delete", "replace", "add"]), json_values)
def test_validate_on_a_mutated_file_exits_0_or_2_with_one_line_per_problem(path, action, value) -> None:
    """`hera-flows validate` as a user runs it: a verdict, never a traceback."""
    with tempfile.TemporaryDirectory() as folder:
        config = os.path.join(folder, "flows.yaml")
        with open(config, "w", encoding="utf-8") as handle:
            handle.write(yaml.safe_dump(_mutate(_BASE_CONFIG, path, action, value), allow_unicode=True))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = cli.main(["validate", "--config", config])
    assert "Traceback" not in err.getvalue()
    if code == 0:
        assert "valid" in out.getvalue()
    else:
        assert code == 2 and err.getvalue().strip(), (out.getvalue(), err.getvalue())
        assert all(line.startswith(config + ":") for line in err.getvalue().strip().splitlines()), err.getvalue()


def test_an_unreadable_configuration_is_a_config_error(tmp_path) -> None:
    from hera_flows.config import load_config

    with pytest.raises(ConfigError, match="cannot read the configuration"):
        load_config(tmp_path / "missing.yaml")


# ------------------------------------------------------------------------------------------------------------
# The guard: body parsing and signatures

SECRET = "property-secret"


def _mlflow_signature(secret: str, delivery_id: str, timestamp: str, signed_body: str) -> str:
    digest = hmac.new(secret.encode(), f"{delivery_id}.{timestamp}.{signed_body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


@PROPERTY
@given(nasty_text)
@example("[" * 100_000)
@example('{"a": 1, "a": 2}')
@example('{"a": NaN}')
def test_body_parsing_returns_an_object_or_a_malformed_body_error(body) -> None:
    try:
        parsed = webhook_signature.parse_body(body)
    except verify.MalformedBody as exc:
        assert one_line(str(exc))
    else:
        assert isinstance(parsed, dict)
    for rebuild in (webhook_signature.mlflow_signed_form, webhook_signature.go_inverse_form):
        try:
            assert isinstance(rebuild(body), str)
        except verify.MalformedBody as exc:
            assert one_line(str(exc))


@PROPERTY
@given(st.dictionaries(st.text(max_size=10), json_values, max_size=6))
def test_an_mlflow_delivery_verifies_after_go_compaction_and_any_change_breaks_it(payload) -> None:
    """MLflow signs json.dumps(payload); Argo Events hands the guard Go's compacted, HTML-escaped body."""
    sent = json.dumps(payload)
    received = go_compact(sent)
    now = time.time()
    timestamp = str(int(now))
    signature = _mlflow_signature(SECRET, "d-1", timestamp, sent)
    verified = verify.verify_mlflow(received, signature=signature, delivery_id="d-1", timestamp=timestamp,
                                    secret=SECRET, tolerance_seconds=300, now=now)
    assert verified == json.loads(sent)
    tampered = go_compact(json.dumps({**payload, "injected": True}))
    with pytest.raises(StepError, match="does not match"):
        verify.verify_mlflow(tampered, signature=signature, delivery_id="d-1", timestamp=timestamp,
                             secret=SECRET, tolerance_seconds=300, now=now)


@PROPERTY
@given(nasty_text, st.text(max_size=60), st.text(max_size=30), st.text(max_size=20))
def test_mlflow_verification_of_random_headers_is_a_clear_refusal(body, signature, delivery_id, timestamp) -> None:
    with pytest.raises(StepError) as refused:
        verify.verify_mlflow(body, signature=signature, delivery_id=delivery_id, timestamp=timestamp,
                             secret=SECRET, tolerance_seconds=300, now=time.time())
    assert one_line(str(refused.value))


@PROPERTY
@given(nasty_text, st.text(alphabet="0123456789abcdefABCDEF xz", max_size=70), st.sampled_from(["", SECRET]))
def test_databricks_verification_never_crashes(body, signature, secret) -> None:
    try:
        payload = verify.verify_databricks(body, signature=signature, secret=secret, tolerance_seconds=300,
                                           now=time.time())
    except StepError as exc:
        assert one_line(str(exc))
    else:
        assert isinstance(payload, dict) and isinstance(payload["event_timestamp"], (int, str))


@contextlib.contextmanager
def _step_env(values: dict[str, str]) -> Iterator[str]:
    """Set HF_PARAM_* / secrets for one in-process step call (hypothesis cannot use monkeypatch per example)."""
    saved = {k: v for k, v in os.environ.items() if k.startswith(("HF_", "HERA_FLOWS_STATE_DIR"))}
    for key in saved:
        del os.environ[key]
    with tempfile.TemporaryDirectory() as state:
        os.environ.update(values)
        os.environ["HERA_FLOWS_STATE_DIR"] = state
        try:
            yield state
        finally:
            for key in [k for k in os.environ if k.startswith(("HF_", "HERA_FLOWS_STATE_DIR"))]:
                del os.environ[key]
            os.environ.update(saved)


def _refusal(err: str) -> bool:
    """A refusal ends the step's log with one `promotion-guard: <why>` line (progress lines may come before it)."""
    lines = err.strip().splitlines()
    prefix = "promotion-guard: "
    return bool(lines) and lines[-1].startswith(prefix) and len(lines[-1]) > len(prefix)


def _run_step(argv: list[str]) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(["step", *argv])
    return code, err.getvalue()


promotion_like = st.fixed_dictionaries(
    {
        "entity": st.sampled_from(["model_version_alias", "model_version", "registered_model"]) | st.text(max_size=5),
        "action": st.sampled_from(["created", "deleted"]) | st.text(max_size=5),
        "data": st.fixed_dictionaries(
            {},
            optional={
                "name": st.text(max_size=40) | st.integers(),
                "version": st.sampled_from(["1", "007", "0", "-1", "1.5", "99999999999999"]) | st.text(max_size=5),
                "alias": st.sampled_from(["champion", "production", "staging", ""]) | st.text(max_size=10),
            },
        )
        | json_values,
    },
    optional={"timestamp": st.text(max_size=10)},
)


@PROPERTY
@given(promotion_like, st.booleans())
def test_the_guard_step_decides_or_refuses_every_signed_delivery_in_one_line(payload, sign_correctly) -> None:
    """Through `hera-flows step guard` exactly as a pod runs it: exit 0 with a decision, or exit 1 and one line."""
    sent = json.dumps(payload)
    timestamp = str(int(time.time()))
    signature = _mlflow_signature(SECRET if sign_correctly else "wrong", "delivery-1", timestamp, sent)
    env = {
        "HF_PARAM_EVENT_SOURCE": "mlflow",
        "HF_PARAM_EVENT_BODY": go_compact(sent),
        "HF_PARAM_SIGNATURE": signature,
        "HF_PARAM_DELIVERY_ID": "delivery-1",
        "HF_PARAM_TIMESTAMP": timestamp,
        "HF_PARAM_WORKFLOW_NAME": "wf",
        "HF_PARAM_WORKFLOW_UID": "uid-1",
        "HF_WEBHOOK_SECRET": SECRET,
    }
    with _step_env(env), tempfile.TemporaryDirectory() as out:
        code, err = _run_step(["promotion-guard", *generated_flags("promotion-guard"), f"--outputs={out}"])
        assert "Traceback" not in err
        if code == EXIT_OK:
            decision = open(os.path.join(out, "decision"), encoding="utf-8").read()
            assert decision in ("proceed", "skip", "rejected")
            assert sign_correctly or decision == "rejected"  # a forgery never proceeds
            if decision == "proceed":
                assert open(os.path.join(out, "branch"), encoding="utf-8").read().startswith("model-promotion/")
        else:
            assert code == EXIT_REJECTED, err
            assert _refusal(err), err


@PROPERTY
@given(st.dictionaries(st.sampled_from(["EVENT_SOURCE", "EVENT_BODY", "SIGNATURE", "DELIVERY_ID", "TIMESTAMP",
                                        "MANUAL", "MODEL_NAME", "VERSION", "ALIAS", "DATABRICKS_SIGNATURE"]),
                       nasty_text | st.sampled_from(["mlflow", "databricks", "true", "false", "1"])))
def test_the_guard_step_with_random_parameters_never_prints_a_traceback(params) -> None:
    # Environment values hold no NUL; undecodable bytes reach Python as lone surrogates U+DC80..U+DCFF
    # (surrogateescape), which the guard must refuse in one line too (issue 16 item 13).
    env = {f"HF_PARAM_{k}": "".join(c for c in v if c != "\x00" and not ("\ud800" <= c <= "\udfff"
                                                                         and not "\udc80" <= c <= "\udcff"))
           for k, v in params.items()}
    env.update({"HF_PARAM_WORKFLOW_NAME": "wf", "HF_PARAM_WORKFLOW_UID": "uid-1", "HF_WEBHOOK_SECRET": SECRET})
    with _step_env(env), tempfile.TemporaryDirectory() as out:
        code, err = _run_step(["promotion-guard", *generated_flags("promotion-guard"), f"--outputs={out}"])
    assert "Traceback" not in err
    assert code in (EXIT_OK, EXIT_REJECTED), err
    if code == EXIT_REJECTED:
        assert _refusal(err), err


# ------------------------------------------------------------------------------------------------------------
# The local sensor's gjson reader and routing

path_parts = st.text(alphabet="abcdefghij0123", min_size=1, max_size=3)


@PROPERTY
@given(nasty_text, st.lists(path_parts, min_size=1, max_size=3).map(".".join))
def test_gjson_on_arbitrary_data_returns_a_value_none_or_a_sensor_error(data, path) -> None:
    try:
        value = sensor.gjson_string(data, path)
    except sensor.SensorError as exc:
        assert one_line(str(exc))
    else:
        assert value is None or isinstance(value, str)


@PROPERTY
@given(json_values.map(lambda v: json.dumps({"a": v, "b": [v]})), st.data())
@example('{"a"', 0)
@example('[' * 5000, 0)
@example('{"a":"\\x"}', 0)
def test_gjson_on_truncated_or_damaged_json_never_crashes(text, data) -> None:
    if isinstance(data, int):
        damaged = text
    else:
        cut = data.draw(st.integers(min_value=0, max_value=len(text)))
        damaged = text[:cut] + data.draw(st.sampled_from(["", '"', "\\", "{", "]", ":", ",", "\\u12", "\\x"]))
    for path in ("a", "b.0", "a.a"):
        try:
            value = sensor.gjson_string(damaged, path)
        except sensor.SensorError as exc:
            assert one_line(str(exc))
        else:
            assert value is None or isinstance(value, str)


def _gjson_expected(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return json.dumps(value, separators=(",", ":")) if isinstance(value, (dict, list)) else json.dumps(value)


@PROPERTY
@given(st.dictionaries(path_parts, json_values, min_size=1, max_size=5), st.data())
def test_gjson_reads_back_every_key_of_valid_json(document, data) -> None:
    text = json.dumps(document, separators=(",", ":"))
    key = data.draw(st.sampled_from(sorted(document)))
    assume("." not in key)
    value = sensor.gjson_string(text, key)
    assert value == _gjson_expected(document[key])
    assert sensor.raw_get(text, key + ".nokey_zz") is None or isinstance(document[key], (dict, list))


_SENSORS = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in sorted((ROOT / "sensors").glob("*.yaml"))]


@FEW
@given(st.sampled_from([s["spec"]["triggers"][0]["template"]["argoWorkflow"]["source"]["resource"]["spec"]
                        ["workflowTemplateRef"]["name"] for s in _SENSORS]),
       nasty_text | json_values.map(lambda v: json.dumps({"body": v, "header": {}})))
def test_routing_an_arbitrary_event_through_the_generated_sensors_never_crashes(template, data) -> None:
    try:
        workflow, trigger = sensor.route_event(_SENSORS, template, data)
    except sensor.SensorError as exc:
        assert one_line(str(exc))
    else:
        assert workflow["spec"]["workflowTemplateRef"]["name"] == template and trigger


# ------------------------------------------------------------------------------------------------------------
# Deployment tags

tag_values = st.one_of(
    st.sampled_from(["0", "1", "3", "8", "2147483647", "2147483648", "500m", "512m", "2Gi", "1.5", ".5", "1e3",
                     "0.0", "NVIDIA-A100", "1.7.0", " 2 ", "", "-1", "٣"]),
    st.text(max_size=20),
    st.integers(min_value=-5, max_value=2**33),
    st.floats(allow_nan=True),
    st.none(),
)


@PROPERTY
@given(st.dictionaries(st.sampled_from([*DEPLOYMENT_TAGS, "other", "owner"]), tag_values))
def test_deployment_tags_parse_to_consistent_values_or_a_clear_step_error(tags) -> None:
    try:
        parsed = parse_deployment_tags(tags)
    except StepError as exc:
        assert str(exc).startswith("tag"), str(exc)
        assert one_line(str(exc))
        return
    assert set(parsed) == set(DEPLOYMENT_TAGS)
    for name in ("gpu_count", "replica_min", "replica_max"):
        assert parsed[name] is None or 0 <= parsed[name] <= INT32_MAX
    if parsed["replica_min"] is not None and parsed["replica_max"] is not None:
        assert parsed["replica_min"] <= parsed["replica_max"]
    assert parsed["replica_max"] != 0
    if parsed["gpu_type"] is not None:
        assert parsed["gpu_count"] != 0


# ------------------------------------------------------------------------------------------------------------
# YAML editing

ISVC = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: fraud-detector   # keep
  annotations:
    hera-flows.io/mlflow-version: "6"
spec:
  predictor:
    maxReplicas: 3
    model:
      runtimeVersion: '1.3.5'
      storageUri: "s3://bucket/models/6"
      resources:
        requests: {cpu: "500m", memory: 1Gi}
"""
_ISVC_PATHS = [
    ("metadata", "name"),
    ("metadata", "annotations", "hera-flows.io/mlflow-version"),
    ("spec", "predictor", "maxReplicas"),
    ("spec", "predictor", "minReplicas"),
    ("spec", "predictor", "model", "runtimeVersion"),
    ("spec", "predictor", "model", "storageUri"),
    ("spec", "predictor", "model", "resources", "requests", "cpu"),
    ("spec", "predictor", "model", "resources", "limits", "memory"),
    ("spec", "predictor", "nodeSelector", "nvidia.com/gpu.product"),
]
yaml_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30), st.sampled_from(["yes", "no", "on", "null", "~", "0x1F", "1e3", "#x", "a: b", "- x", "'",
                                           '"', "{a}", "[1]", "*ref", "&a", "!tag", "%", "@", "`", " lead", "trail "]),
)


@PROPERTY
@given(st.sampled_from(_ISVC_PATHS), yaml_scalars)
def test_a_yaml_edit_sets_exactly_the_value_or_refuses(path, value) -> None:
    try:
        edited = set_value(ISVC, path, value)
    except YamlPatchError as exc:
        assert one_line(str(exc))
        return
    [before], [after] = load_documents(ISVC), load_documents(edited)
    assert read_value(after, path) == value
    assert "# keep" in edited
    assert after["kind"] == before["kind"] and after["apiVersion"] == before["apiVersion"]


@PROPERTY
@given(nasty_text, st.lists(st.text(max_size=5) | st.integers(min_value=-2, max_value=3), min_size=0, max_size=3),
       yaml_scalars)
@example("[" * 5000, ["a"], 1)
@example("a: &x 1\nb: *x\n", ["b"], 2)
def test_a_yaml_edit_of_arbitrary_text_never_crashes(text, path, value) -> None:
    try:
        edited = set_value(text, path, value)
    except YamlPatchError as exc:
        assert one_line(str(exc))
    else:
        assert read_value(load_documents(edited)[0], path) == value


# ------------------------------------------------------------------------------------------------------------
# The expression language of `when`, `depends` and retryStrategy

expression_text = st.text(alphabet=st.sampled_from(list("()!&|=' abc.-_0123456789\\")), max_size=60)


@PROPERTY
@given(expression_text | st.text(max_size=40))
def test_expressions_evaluate_to_a_boolean_or_an_expression_error(text) -> None:
    try:
        result = evaluate(text, lambda identifier: identifier)
    except ExpressionError as exc:
        assert one_line(str(exc))
    else:
        assert isinstance(result, bool)


@PROPERTY
@given(st.sampled_from(["0", "1", "2", "75", "137"]), st.integers(min_value=0, max_value=600))
@example("75", 600)
@example("1", 3)
def test_deep_nesting_is_an_expression_error_not_a_recursion_crash(exit_code, depth) -> None:
    expression = "(" * depth + "lastRetry.status == 'Error' || lastRetry.exitCode == '75'" + ")" * depth
    variables = {"lastRetry.status": "Failed", "lastRetry.exitCode": exit_code}
    try:
        result = evaluate("!" * depth + expression, variables.__getitem__)
    except ExpressionError as exc:
        assert "too deeply" in str(exc)
    else:
        assert result == ((exit_code == "75") if depth % 2 == 0 else (exit_code != "75"))
