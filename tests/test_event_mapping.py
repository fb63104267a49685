"""The shared event-mapping building block: a small expression language that is parsed, never executed, and
mappings (match / each / when / fields / vars) over untrusted documents."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hera_flows.steps.event_mapping import (
    MAX_RECORDS,
    Mapping,
    MappingError,
    compile_expression,
    inference_v2,
    merge_specs,
)

DOC = {"body": {"alerts": [{"labels": {"model": "fraud", "feature": "", "x-y": "dash"}, "status": "firing"},
                           {"labels": {"model": "reco"}, "status": "resolved"}],
                "count": 3, "ratio": "0.25", "flag": True, "text": "seldon.seldon-mesh.model.income-drift.outputs"},
       "header": {"Ce-Id": ["abc"]}}


@pytest.mark.parametrize(("expression", "expected"), [
    ("body.alerts[0].labels.model", "fraud"),
    ("body.alerts.0.labels.model", "fraud"),
    ('body.alerts[0].labels["x-y"]', "dash"),
    ("body.alerts[-1].status", "resolved"),
    ("body.alerts[5].status", None),
    ("body.missing.deeper[0]", None),
    ("body.count.nope", None),
    ('body.alerts[0].labels.feature ?? "all"', "all"),  # "" counts as absent
    ("body.nothing ?? body.count", 3),
    ('header["Ce-Id"][0]', "abc"),
    ("body.count > 2 and body.flag", True),
    ("body.count > body.ratio", False),  # a number and a string never compare
    ("number(body.ratio) < 0.5", True),
    ('lower("AbC") in ["abc", "x"]', True),
    ('"dash" in body.alerts[0].labels', False),
    ('"x-y" in body.alerts[0].labels', True),
    ('regex(body.text, "model\\\\.([a-z-]+)-drift")', "income"),
    ('regex(body.text, "^nomatch")', None),
    ('split("a,b", ",")[1]', "b"),
    ('join(["a", 1, true], "-")', "a-1-true"),
    ("len(body.alerts)", 2),
    ('if(body.flag, "yes", "no")', "yes"),
    ("not body.flag or body.count == 3", True),
    ("string(body.count)", "3"),
    ("first(body.alerts).status", "firing"),
    ("keys(body.alerts[0].labels)", ["model", "feature", "x-y"]),
    ("true == 1", False),  # booleans are not numbers
    ("-0.5 < 0", True),
    ("vars.features[1]", "b"),
])
def test_expressions(expression: str, expected: object) -> None:
    assert compile_expression(expression)({**DOC, "vars": {"features": ["a", "b"]}}) == expected


@pytest.mark.parametrize(("expression", "message"), [
    ("body.", "expected a name after '.' at character 6"),
    ("body.alerts[0", "expected ']' at character 14"),
    ("os.system('x')", "unexpected text after the expression at character 10"),
    ("__import__('os')", "unknown function __import__()"),
    ("body.a ++ 1", "unexpected '+' at character 8"),
    ('regex(body.x, body.pattern)', "takes a value, a literal pattern"),
    ('regex(body.x, "(")', "bad pattern"),
    ("if(body.x, 1)", "takes three arguments"),
    ("", "non-empty"),
    ("x" * 1001, "limited to 1000 characters"),
    ("(" * 40 + "1" + ")" * 40, "nested more than 32 deep"),
    ("body.a and", "expected a value at character 11 (found the end)"),
    ("'unterminated", "unexpected \"'\""),
])
def test_a_bad_expression_is_one_clear_line(expression: str, message: str) -> None:
    with pytest.raises(MappingError) as excinfo:
        compile_expression(expression)
    assert message in str(excinfo.value) and "\n" not in str(excinfo.value)


def test_functions_are_the_callers_only() -> None:
    with pytest.raises(MappingError, match="unknown function double"):
        compile_expression("double(body.count)")
    doubled = compile_expression("double(body.count)", functions={"double"})
    assert doubled(DOC, {"double": lambda x: x * 2}) == 6


def test_a_mapping_gives_records_firing_or_not_with_their_fields() -> None:
    mapping = Mapping.from_spec({
        "match": "body.count == 3",
        "each": "body.alerts",
        "when": 'item.status == "firing"',
        "fields": {"model": "item.labels.model", "position": "index", "feature": "vars.default"},
        "vars": {"default": "amount"},
    })
    records, empty = mapping.apply(DOC)
    assert empty == "" and [(r.where, r.firing) for r in records] == [("body.alerts[0]", True),
                                                                     ("body.alerts[1]", False)]
    assert records[0].values == {"model": "fraud", "position": 0, "feature": "amount"}
    assert records[0].sources["model"] == "item.labels.model" and records[1].values == {}
    assert mapping.apply({**DOC, "body": {**DOC["body"], "count": 4}}) == (
        [], "it does not have the expected shape (match: body.count == 3)")


def test_a_mapping_without_each_reads_the_body_as_item() -> None:
    records, _ = Mapping.from_spec({"fields": {"n": "item.count"}}).apply(DOC)
    assert [r.values for r in records] == [{"n": 3}]


def test_records_are_bounded() -> None:
    mapping = Mapping.from_spec({"each": "body.items", "fields": {"x": "item"}})
    assert mapping.apply({"body": {"items": list(range(MAX_RECORDS + 1))}})[1].endswith(
        f"has {MAX_RECORDS + 1} entries (more than {MAX_RECORDS})")


@pytest.mark.parametrize(("spec", "message"), [
    ({"fields": {"Model": "body.x"}}, "is not a field name"),
    ({"fields": {"model": "body."}}, "fields.model: expected a name"),
    ({"each": "[", "fields": {}}, "each: expected a value"),
    ({"fields": {}, "other": 1}, "unknown mapping key(s) other"),
])
def test_a_bad_mapping_names_the_part(spec: dict, message: str) -> None:
    with pytest.raises(MappingError, match=None) as excinfo:
        Mapping.from_spec(spec)
    assert message in str(excinfo.value)


def test_overrides_merge_field_by_field() -> None:
    base = {"each": "body.alerts", "fields": {"model": "a", "feature": "b"}, "vars": {"x": 1}}
    merged = merge_specs(base, {"fields": {"feature": None, "severity": "c"}, "vars": {"y": 2}, "when": "true"})
    assert merged == {"each": "body.alerts", "fields": {"model": "a", "severity": "c"}, "vars": {"x": 1, "y": 2},
                      "when": "true"}
    assert base["fields"] == {"model": "a", "feature": "b"}  # the preset is not changed


def test_inference_v2_decodes_rest_and_protobuf_json() -> None:
    rest = {"model_name": "d", "parameters": {"name": "TabularDrift"},
            "outputs": [{"name": "is_drift", "shape": [1, 1], "datatype": "INT64", "data": [1]},
                        {"name": "p_val", "shape": [1, 2], "datatype": "FP32", "data": [0.1, 0.2]}]}
    proto = {"modelName": "d", "parameters": {"name": {"stringParam": "TabularDrift"}},
             "outputs": [{"name": "is_drift", "shape": ["1", "2"], "datatype": "INT64",
                          "contents": {"int64Contents": ["0", "1"]}}]}
    assert inference_v2(rest) == {"data": {"is_drift": 1, "p_val": [0.1, 0.2]}, "meta": {"name": "TabularDrift"},
                                  "model_name": "d"}
    assert inference_v2(proto)["data"] == {"is_drift": [0, 1]}
    assert inference_v2({"outputs": "x"}) is None and inference_v2([1]) is None


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                           | st.text(max_size=20),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=4), max_leaves=20)


@settings(max_examples=60, deadline=None)
@given(body=json_values)
def test_every_preset_shape_reads_any_json_without_crashing(body: object) -> None:
    from hera_flows.steps.drift import shapes

    for name, preset in shapes.PRESETS.items():
        records, _ = Mapping.from_spec(preset, functions=shapes.FUNCTIONS).apply(
            {"body": body, "header": {}, "headers": {}, "topic": "", "key": "", "id": ""}, shapes.FUNCTIONS)
        for record in records:
            json.dumps(record.values)  # plain JSON values only
            assert name
