"""The local runner executes WorkflowTemplates with Argo's semantics (checked on small synthetic templates;
the promotion end-to-end test runs the real generated one)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from hera_flows.cli import main
from hera_flows.local.expressions import ExpressionError, evaluate
from hera_flows.local.runner import LocalRun, RunError, workflow_parameters
from hera_flows.local.sensor import SensorError, gjson_string, raw_get, route_event


def _container(script: str, *, outputs: list[str] = (), inputs: list[str] = (), retry: dict | None = None) -> dict:
    tpl = {
        "container": {
            "image": "unused",
            "command": ["sh", "-c", script],
            "env": [{"name": f"P_{i.upper()}", "value": f"{{{{inputs.parameters.{i}}}}}"} for i in inputs],
            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        },
        "volumes": [{"name": "tmp", "emptyDir": {}}],
        "inputs": {"parameters": [{"name": i} for i in inputs]},
        "outputs": {"parameters": [{"name": o, "valueFrom": {"path": f"/tmp/{o}"}} for o in outputs]},
    }
    if retry:
        tpl["retryStrategy"] = retry
    return tpl


def _workflow(templates: dict[str, dict], tasks: list[dict], params: dict[str, str] | None = None) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "WorkflowTemplate",
        "metadata": {"name": "t", "namespace": "ns"},
        "spec": {
            "entrypoint": "main",
            "arguments": {"parameters": [{"name": k, "value": v} for k, v in (params or {}).items()]},
            "templates": [{"name": n, **t} for n, t in templates.items()]
            + [
                {
                    "name": "main",
                    "dag": {"tasks": tasks},
                    "outputs": {
                        "parameters": [
                            {
                                "name": "final",
                                "valueFrom": {"parameter": "{{tasks.b.outputs.parameters.out}}", "default": "none"},
                            }
                        ]
                    },
                }
            ],
        },
    }


def _run(workflow: dict, tmp_path: Path, params: dict[str, str] | None = None) -> object:
    defaults = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    return LocalRun(workflow, {**defaults, **(params or {})}, {}, tmp_path, echo=False).execute()


def test_parameters_flow_between_tasks_as_argo_passes_them(tmp_path: Path) -> None:
    """Shell metacharacters stay data (no shell ever sees them); but, as in Argo, a global reference inside a value
    that was substituted in is substituted again (docs/upstream-facts.md#workflows-substitution) — which is why
    event data never travels in parameters."""
    workflow = _workflow(
        {
            "a": _container('printf %s "$P_X" > /tmp/out', outputs=["out"], inputs=["x"]),
            "b": _container('printf "%s!" "$P_Y" > /tmp/out', outputs=["out"], inputs=["y"]),
        },
        [
            {
                "name": "a",
                "template": "a",
                "arguments": {"parameters": [{"name": "x", "value": "{{workflow.parameters.x}}"}]},
            },
            {
                "name": "b",
                "template": "b",
                "depends": "a.Succeeded",
                "arguments": {"parameters": [{"name": "y", "value": "{{tasks.a.outputs.parameters.out}}"}]},
            },
        ],
        params={"x": "{{workflow.name}} $(touch /tmp/pwned) ; 'quoted'"},
    )
    # The runner rewrites only literal paths; here the shell script is literal and the data stays data.
    for tpl in workflow["spec"]["templates"][:2]:
        tpl["container"]["command"][2] = tpl["container"]["command"][2].replace("/tmp/out", "$HOME/out")
        tpl["outputs"]["parameters"][0]["valueFrom"]["path"] = "/tmp/out"
    result = _run(workflow, tmp_path)
    assert result.phase == "Succeeded"
    assert result.outputs["final"] == f"{result.workflow_name} $(touch /tmp/pwned) ; 'quoted'!"
    assert not Path("/tmp/pwned").exists()


@pytest.mark.parametrize(("value", "refusal"), [
    ("an alert annotation: {{workflow.foo}}", r"failed to resolve \{\{workflow.foo\}\}"),
    ("{{inputs.parameters.msg}}", r"failed to resolve \{\{inputs.parameters.msg\}\}"),
    ("{{=sprig.trim('x')}}", "would evaluate the expression"),
])
def test_a_parameter_value_argo_would_refuse_or_evaluate_is_refused(tmp_path: Path, value: str, refusal: str) -> None:
    workflow = _workflow({"a": _container("true")}, [{"name": "a", "template": "a"}], params={"x": value})
    with pytest.raises(RunError, match=refusal):
        _run(workflow, tmp_path)


def test_when_false_skips_and_depends_on_succeeded_omits(tmp_path: Path) -> None:
    workflow = _workflow(
        {"a": _container("true"), "b": _container("echo x > $HOME/out", outputs=["out"])},
        [
            {"name": "a", "template": "a", "when": "'{{workflow.parameters.go}}' == 'yes'"},
            {"name": "b", "template": "b", "depends": "a.Succeeded"},
        ],
        params={"go": "no"},
    )
    workflow["spec"]["templates"][1]["outputs"]["parameters"][0]["valueFrom"]["path"] = "/tmp/out"
    result = _run(workflow, tmp_path)
    assert result.tasks["a"].phase == "Skipped"
    assert result.tasks["b"].phase == "Omitted"
    assert result.phase == "Succeeded"
    assert result.outputs["final"] == "none"


def test_retry_only_on_the_expression_exit_code(tmp_path: Path) -> None:
    retry = {"limit": "3", "expression": "lastRetry.status == 'Error' || lastRetry.exitCode == '75'",
             "backoff": {"duration": "1s", "factor": "2"}}
    counter = tmp_path / "count"
    flaky = f'n=$(cat {counter} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {counter}; [ $n -ge 3 ] || exit 75'
    workflow = _workflow(
        {"a": _container(flaky, retry=retry), "b": _container("exit 1", retry=retry)},
        [{"name": "a", "template": "a"}, {"name": "b", "template": "b", "depends": "a.Succeeded"}],
    )
    result = _run(workflow, tmp_path / "run")
    assert result.tasks["a"].phase == "Succeeded" and result.tasks["a"].attempts == 3
    assert result.tasks["b"].phase == "Failed" and result.tasks["b"].attempts == 1  # exit 1 is final
    assert result.phase == "Failed"


def test_container_set_runs_in_order_and_reads_outputs_from_main(tmp_path: Path) -> None:
    template = {
        "volumes": [{"name": "ws", "emptyDir": {}}],
        "containerSet": {
            "volumeMounts": [{"name": "ws", "mountPath": "/workspace"}],
            "containers": [
                {"name": "main", "command": ["sh", "-c", "cat /workspace/a /workspace/b > /workspace/out"],
                 "dependencies": ["second"]},
                {"name": "first", "command": ["sh", "-c", "echo one > /workspace/a"]},
                {"name": "second", "command": ["sh", "-c", "echo two > /workspace/b"], "dependencies": ["first"]},
            ],
        },
        "outputs": {"parameters": [{"name": "out", "valueFrom": {"path": "/workspace/out"}}]},
    }
    # Literal container paths inside a script are not rewritten; an env value that is a mounted path is.
    for c in template["containerSet"]["containers"]:
        c["command"] = ["sh", "-c", c["command"][2].replace("/workspace", '"$W"')]
        c["env"] = [{"name": "W", "value": "/workspace"}]
    workflow = _workflow({"b": template}, [{"name": "b", "template": "b"}])
    result = _run(workflow, tmp_path)
    assert result.phase == "Succeeded", result.message
    assert result.outputs["final"] == "one\ntwo\n"


def test_missing_secret_is_a_clear_error(tmp_path: Path) -> None:
    tpl = _container("true")
    tpl["container"]["env"] = [{"name": "T", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]
    workflow = _workflow({"a": tpl}, [{"name": "a", "template": "a"}])
    with pytest.raises(RunError, match="secret 's' key 'k' is missing"):
        _run(workflow, tmp_path)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("'a' == 'a'", True),
        ("'a' != 'a'", False),
        ("'proceed' == 'proceed' && '' != ''", False),
        ("x.Succeeded || (y.Failed && !z.Failed)", True),
        ("'it''s' == 'x'", None),
    ],
)
def test_expressions(expression: str, expected: bool | None) -> None:
    phases = {"x.Succeeded": False, "y.Failed": True, "z.Failed": False}
    if expected is None:
        with pytest.raises(ExpressionError):
            evaluate(expression, phases.__getitem__)
    else:
        assert evaluate(expression, phases.__getitem__) is expected


def test_gjson_raw_values_keep_the_delivered_bytes() -> None:
    data = '{"header":{"X-Mlflow-Signature":["v1,abc="]},"body":{"a":"\\u003cb\\u003e","n":1.50,"l":[1,{"k":null}]}}'
    assert raw_get(data, "body") == '{"a":"\\u003cb\\u003e","n":1.50,"l":[1,{"k":null}]}'
    assert gjson_string(data, "header.X-Mlflow-Signature.0") == "v1,abc="
    assert gjson_string(data, "body.a") == "<b>"
    assert gjson_string(data, "body.n") == "1.50"
    assert gjson_string(data, "body.l.1.k") == ""
    assert gjson_string(data, "body.missing") is None


def test_generated_sensor_routes_a_promotion_and_drops_others(fixtures_dir: Path) -> None:
    from tests.conftest import ROOT

    sensors = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / "sensors").glob("*.yaml"))]
    body = (fixtures_dir / "mlflow-oss/catalog/model_version_alias.created.json").read_text()
    compact = json.dumps(json.loads(body), separators=(",", ":"))
    signature = "v1," + "A" * 43 + "="
    headers = {"X-Mlflow-Signature": [signature], "X-Mlflow-Delivery-Id": ["d-1"], "X-Mlflow-Timestamp": ["1764331200"]}
    event = json.dumps({"header": headers}, separators=(",", ":"))[:-1] + ',"body":' + compact + "}"
    workflow, trigger = route_event(sensors, "mlflow-promotion", event)
    assert trigger == "promote-from-mlflow"
    params = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    annotations = workflow["metadata"]["annotations"]
    assert annotations["hera-flows.io/event-body"] == compact and annotations["hera-flows.io/signature"] == signature
    assert annotations["hera-flows.io/delivery-id"] == "d-1"
    assert set(params) == {"event-source", "received-at"}  # only a constant and the event context's time
    assert "manual" not in params  # the sensor never marks a run as manual
    # the cheapest rejection first: headers not shaped like MLflow's never become a Workflow
    for bad in ({**headers, "X-Mlflow-Signature": ["v1,sig"]}, {**headers, "X-Mlflow-Timestamp": ["1"]},
                {**headers, "X-Mlflow-Delivery-Id": ["{{workflow.uid}}"]}, {}):
        forged = json.dumps({"header": bad}, separators=(",", ":"))[:-1] + ',"body":' + compact + "}"
        with pytest.raises(SensorError, match="filters drop"):
            route_event(sensors, "mlflow-promotion", forged)

    for other in ("model_version_alias.deleted.json", "test_webhook.model_version_alias.created.json",
                  "model_version.created.json"):
        text = json.dumps(json.loads((fixtures_dir / "mlflow-oss/catalog" / other).read_text()), separators=(",", ":"))
        with pytest.raises(SensorError, match="filters drop"):
            route_event(sensors, "mlflow-promotion", '{"header":{},"body":' + text + "}")

    legacy = (fixtures_dir / "databricks-registry/model_version_transitioned_stage.json").read_text()
    legacy_compact = json.dumps(json.loads(legacy), separators=(",", ":"))
    workflow, trigger = route_event(sensors, "mlflow-promotion", '{"header":{},"body":' + legacy_compact + "}")
    assert trigger == "promote-from-databricks"
    staging = legacy_compact.replace('"to_stage":"Production"', '"to_stage":"ProductionX"')
    with pytest.raises(SensorError):
        route_event(sensors, "mlflow-promotion", '{"header":{},"body":' + staging + "}")


def test_unknown_override_and_missing_template_fail_cleanly(tmp_path: Path, capsys) -> None:
    from tests.conftest import ROOT

    template = yaml.safe_load((ROOT / "generated/workflowtemplates/mlflow-promotion.yaml").read_text())
    with pytest.raises(RunError, match="unknown parameter 'nope'"):
        workflow_parameters(template, sensors=[], event=None, overrides={"nope": "1"})
    code = main(["run", "does-not-exist", "--generated", str(tmp_path)])
    assert code == 2
    assert "no WorkflowTemplate" in capsys.readouterr().err


def _fan_out_workflow(items: str, *, parallelism: int | None = None) -> dict:
    workflow = _workflow(
        {
            "list": _container("printf %s \"$P_X\" > $HOME/out", outputs=["out"], inputs=["x"]),
            "each": _container('printf %s "$P_V" > $HOME/out; [ "$P_V" != "boom" ]', outputs=["out"], inputs=["v"]),
            "b": _container('printf %s "$P_ALL" > $HOME/out', outputs=["out"], inputs=["all"]),
        },
        [
            {"name": "list", "template": "list",
             "arguments": {"parameters": [{"name": "x", "value": "{{workflow.parameters.items}}"}]}},
            {"name": "each", "template": "each", "depends": "list.Succeeded",
             "withParam": "{{tasks.list.outputs.parameters.out}}",
             "arguments": {"parameters": [{"name": "v", "value": "{{item}}"}]}},
            {"name": "b", "template": "b", "depends": "each.Succeeded || each.Failed",
             "arguments": {"parameters": [{"name": "all", "value": "{{tasks.each.outputs.parameters.out}}"}]}},
        ],
        params={"items": items},
    )
    for tpl in workflow["spec"]["templates"][:3]:
        tpl["outputs"]["parameters"][0]["valueFrom"]["path"] = "/tmp/out"
    if parallelism:
        workflow["spec"]["parallelism"] = parallelism
    return workflow


def test_with_param_fans_out_and_aggregates_outputs_as_argo_does(tmp_path: Path) -> None:
    items = json.dumps([{"name": "b", "n": 2, "tag": "<x>"}, {"name": "a", "n": 1}])
    result = _run(_fan_out_workflow(items, parallelism=2), tmp_path)
    assert result.phase == "Succeeded", result.message
    # {{item}} of an object is compact JSON with sorted keys (Go's encoding), HTML characters escaped.
    # Every value is JSON, so the aggregate holds the parsed objects, in item order.
    assert json.loads(result.outputs["final"]) == [{"n": 2, "name": "b", "tag": "<x>"}, {"n": 1, "name": "a"}]
    assert "\\u003cx\\u003e" in result.outputs["final"]


def test_with_param_string_items_aggregate_as_strings_and_a_failed_item_fails_the_group(tmp_path: Path) -> None:
    result = _run(_fan_out_workflow(json.dumps(["one", "boom", "three"])), tmp_path)
    assert result.tasks["each"].phase == "Failed"
    assert result.tasks["b"].phase == "Succeeded"  # depends on each.Failed too
    assert json.loads(result.outputs["final"]) == ["one", "three"]  # the failed item has no output


def test_with_param_empty_list_is_skipped_and_not_a_list_fails(tmp_path: Path) -> None:
    result = _run(_fan_out_workflow("[]"), tmp_path / "empty")
    assert result.tasks["each"].phase == "Skipped" and result.tasks["b"].phase == "Omitted"
    workflow = _fan_out_workflow('{"a": 1}')
    workflow["spec"]["templates"][-1]["dag"]["tasks"][2]["depends"] = "each.Succeeded"
    result = _run(workflow, tmp_path / "object")
    assert result.tasks["each"].phase == "Failed" and "JSON list" in result.tasks["each"].message
    assert result.tasks["b"].phase == "Omitted" and result.phase == "Failed"


# -- templateRef ----------------------------------------------------------------------------------------------

def _library_doc(name: str, templates: dict[str, dict], *, namespace: str | None = "ns") -> dict:
    metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate", "metadata": metadata,
            "spec": {"entrypoint": "main", "arguments": {"parameters": [{"name": "own", "value": "never used"}]},
                     "templates": [{"name": n, **t} for n, t in templates.items()]}}


def _team_library(tmp_path: Path) -> Path:
    """A team's WorkflowTemplate file: a container with an input default, and a DAG calling its own `step`."""
    step = _container('printf "%s/%s/%s" "$P_MODEL" "$P_EPOCHS" "$P_WF" > $HOME/out', outputs=["out"],
                      inputs=["model", "epochs"])
    step["inputs"]["parameters"][1]["value"] = "3"  # default: the caller does not pass it
    step["container"]["env"].append({"name": "P_WF", "value": "{{workflow.parameters.x}}"})
    step["outputs"]["parameters"][0]["valueFrom"]["path"] = "/tmp/out"
    dag = {
        "inputs": {"parameters": [{"name": "model"}]},
        "dag": {"tasks": [{"name": "step", "template": "step",
                           "arguments": {"parameters": [{"name": "model", "value": "{{inputs.parameters.model}}!"}]}}]},
        "outputs": {"parameters": [{"name": "out",
                                    "valueFrom": {"parameter": "{{tasks.step.outputs.parameters.out}}"}}]},
    }
    doc = _library_doc("team", {"step": step, "pipeline": dag, "loop": {"steps": [[]]}})
    path = tmp_path / "lib" / "team.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump_all([{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}, doc]))
    return path


def _referencing(template: str, **ref: object) -> dict:
    """The caller: `b` runs team/<template> by templateRef; the caller has its own, different `step` template."""
    workflow = _workflow(
        {"step": _container("exit 9")},
        [{"name": "b", "templateRef": {"name": "team", "template": template, **ref},
          "arguments": {"parameters": [{"name": "model", "value": "{{workflow.parameters.model}}"},
                                       {"name": "undeclared", "value": "ignored"}]}}],
        params={"model": "fraud", "x": "caller"},
    )
    workflow["spec"]["synchronization"] = {"mutexes": [{"name": "m-{{workflow.parameters.model}}"}]}
    return workflow


def _run_with_library(workflow: dict, tmp_path: Path, library_files: list[Path]) -> object:
    from hera_flows.local.runner import load_library

    library = load_library(tmp_path / "no-generated", library_files)
    defaults = {p["name"]: p["value"] for p in workflow["spec"]["arguments"]["parameters"]}
    return LocalRun(workflow, defaults, {}, tmp_path / "run", echo=False, library=library).execute()


def test_template_ref_runs_a_container_with_input_defaults_and_returns_its_outputs(tmp_path: Path) -> None:
    result = _run_with_library(_referencing("step"), tmp_path, [_team_library(tmp_path)])
    assert result.phase == "Succeeded", result.message
    # the argument, the referenced template's default, and {{workflow.*}} of the *calling* workflow
    assert result.tasks["b"].outputs == {"out": "fraud/3/caller"}
    assert result.outputs["final"] == "fraud/3/caller"
    assert result.synchronization == ["mutex m-fraud"]


def test_template_ref_runs_a_dag_whose_names_resolve_in_its_own_workflow_template(tmp_path: Path) -> None:
    result = _run_with_library(_referencing("pipeline"), tmp_path, [_team_library(tmp_path).parent])  # a folder
    assert result.phase == "Succeeded", result.message
    assert [(c.name, c.phase) for c in result.tasks["b"].children] == [("b.step", "Succeeded")]  # team's step
    assert result.outputs["final"] == "fraud!/3/caller"


@pytest.mark.parametrize(
    ("template", "ref", "message"),
    [
        ("step", {"clusterScope": True}, "clusterScope: true; ClusterWorkflowTemplates are not supported"),
        ("loop", {}, "team/loop is a steps template; the local runner runs container, containerSet, dag"),
        ("nope", {}, "has no template 'nope' \\(it has: step, pipeline, loop\\)"),
    ],
)
def test_unsupported_references_fail_before_any_task_runs(tmp_path: Path, template: str, ref: dict,
                                                          message: str) -> None:
    workflow = _referencing(template, **ref)
    marker = tmp_path / "first-ran"
    workflow["spec"]["templates"].insert(0, {"name": "first", **_container(f"touch {marker}")})
    tasks = workflow["spec"]["templates"][-1]["dag"]["tasks"]
    tasks.insert(0, {"name": "first", "template": "first"})
    tasks[1]["depends"] = "first.Succeeded"
    with pytest.raises(RunError, match=message):
        _run_with_library(workflow, tmp_path, [_team_library(tmp_path)])
    assert not marker.exists()


def test_where_a_referenced_template_is_looked_up(tmp_path: Path) -> None:
    team = _team_library(tmp_path)
    with pytest.raises(RunError, match="'team', which is neither generated nor in a --template-file"):
        _run_with_library(_referencing("step"), tmp_path, [])
    other = tmp_path / "other.yaml"
    other.write_text(yaml.safe_dump(_library_doc("team", {"step": {}}, namespace="elsewhere")))
    with pytest.raises(RunError, match="defined twice, differently"):
        _run_with_library(_referencing("step"), tmp_path, [team, other])
    with pytest.raises(RunError, match="namespace 'elsewhere'; Argo looks it up in the workflow's namespace 'ns'"):
        _run_with_library(_referencing("step"), tmp_path, [other])
    config_map = tmp_path / "cm.yaml"
    config_map.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n")
    with pytest.raises(RunError, match="cm.yaml: no WorkflowTemplate in it"):
        _run_with_library(_referencing("step"), tmp_path, [config_map])
    # Without a library (LocalRun used directly) a reached templateRef is an error too.
    with pytest.raises(RunError, match="no WorkflowTemplates were given to this run"):
        _run(_referencing("step"), tmp_path / "bare")


def test_cli_template_file_flag_and_a_relative_state_dir_that_outlives_the_run(tmp_path: Path, monkeypatch,
                                                                             capsys) -> None:
    team = _team_library(tmp_path)
    workflow = _referencing("step")
    # a task writes through HERA_FLOWS_STATE_DIR: it must land in ./state, not in the pod's own folder
    record = _container('ls "$HERA_FLOWS_STATE_DIR" > $HOME/out; touch "$HERA_FLOWS_STATE_DIR/seen"',
                        outputs=["out"])
    record["outputs"]["parameters"][0]["valueFrom"]["path"] = "/tmp/out"
    workflow["spec"]["templates"].insert(0, {"name": "record", **record})
    workflow["spec"]["templates"][-1]["dag"]["tasks"].append({"name": "record", "template": "record"})
    (tmp_path / "wf.yaml").write_text(yaml.safe_dump(workflow))
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        code = main(["run", "wf.yaml", "--generated", ".", "--template-file", str(team), "--state-dir", "state"])
        out = capsys.readouterr().out
        assert code == 0, out
    assert "mutex m-fraud" in out and (tmp_path / "state" / "seen").is_file()


@pytest.mark.parametrize(("first", "handler", "status", "phase"), [
    ("true", "true", "Succeeded", "Succeeded"),
    ("exit 1", "true", "Failed", "Failed"),
    ("true", "exit 1", "Succeeded", "Failed"),  # a failing exit handler fails a succeeded workflow, as in Argo
])
def test_the_exit_handler_runs_whatever_the_outcome_with_the_workflow_status(
    tmp_path: Path, first: str, handler: str, status: str, phase: str
) -> None:
    seen = tmp_path / "status"
    workflow = _workflow(
        {"a": _container(first), "b": _container("true"),
         "bye": _container(f'printf %s "$P_STATUS" > {seen}; {handler}', inputs=["status"]),
         "exit": {"dag": {"tasks": [{"name": "bye", "template": "bye", "arguments": {"parameters": [
             {"name": "status", "value": "{{workflow.status}}"}]}}]}}},
        [{"name": "a", "template": "a"}, {"name": "b", "template": "b", "depends": "a.Succeeded"}],
    )
    workflow["spec"]["onExit"] = "exit"
    result = _run(workflow, tmp_path / "run")
    assert seen.read_text() == status
    assert result.exit_handler is not None and result.phase == phase


def test_workflow_status_is_only_known_to_the_exit_handler(tmp_path: Path) -> None:
    workflow = _workflow({"a": _container("true", inputs=["s"])},
                         [{"name": "a", "template": "a", "arguments": {"parameters": [
                             {"name": "s", "value": "{{workflow.status}}"}]}}])
    with pytest.raises(RunError, match=r"unable to resolve \{\{workflow.status\}\}"):
        _run(workflow, tmp_path / "run")
