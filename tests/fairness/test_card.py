"""Manifests of the fairness pattern, the policy format, deterministic card rendering and the movement check."""

from __future__ import annotations

import pytest
import yaml

from hera_flows.config import parse_config
from hera_flows.generate import render
from hera_flows.steps.common import StepError
from hera_flows.steps.fairness import card, collect
from tests.support import schemas

CFG = ("repository: {url: 'https://github.com/o/r'}\npatterns: {promotion: {enabled: false}, fairness_audit: "
       "{enabled: true, schedule: '30 5 * * 2', timezone: Europe/Berlin, parallelism: 7, "
       "rate_limit: {requests_per_unit: 2, unit: Hour}}}\n")


def test_calendar_event_source_sensor_and_fan_out_manifests() -> None:
    files = render(parse_config(CFG))
    source = yaml.safe_load(files["eventsources/fairness-schedule.yaml"])
    sensor = yaml.safe_load(files["sensors/fairness-audit.yaml"])
    template = yaml.safe_load(files["generated/workflowtemplates/fairness-audit.yaml"])
    for doc in (source, sensor, template):
        assert schemas.problems(doc) == []
    assert source["spec"]["calendar"]["weekly"] == {"schedule": "30 5 * * 2", "timezone": "Europe/Berlin",
                                                    "metadata": {"pattern": "fairness-audit"}}
    [trigger] = sensor["spec"]["triggers"]
    assert trigger["rateLimit"] == {"unit": "Hour", "requestsPerUnit": 2} and trigger["atLeastOnce"] is True
    assert trigger["template"]["argoWorkflow"]["parameters"][0]["src"]["dataKey"] == "eventTime"
    assert template["spec"]["parallelism"] == 7
    tasks = {t["name"]: t
             for t in next(t for t in template["spec"]["templates"] if t["name"] == "main")["dag"]["tasks"]}
    assert tasks["audit"]["withParam"] == "{{tasks.list-models.outputs.parameters.models}}"
    assert tasks["collect"]["arguments"]["parameters"][1]["value"] == "{{tasks.audit.outputs.parameters.result}}"


def test_bad_timezone_or_schedule_is_a_config_error() -> None:
    from hera_flows.config import ConfigError

    with pytest.raises(ConfigError, match="time zone"):
        parse_config(CFG.replace("Europe/Berlin", "Mars/Olympus"))
    with pytest.raises(ConfigError, match="schedule"):
        parse_config(CFG.replace("30 5 * * 2", "weekly"))


def test_policy_from_front_matter_or_yaml() -> None:
    policy = card.parse_policy("---\nthresholds: {dp_difference: 0.1}\nlimits: {min_dp_ratio: 0.8}\n---\n# x\n", "P.md")
    assert policy.thresholds["dp_difference"] == 0.1 and policy.thresholds["accuracy"] == 0.05
    assert policy.limits == {"min_dp_ratio": 0.8}
    assert card.parse_policy("fairness:\n  thresholds: {fpr: 0.2}\n", "p.yaml").thresholds["fpr"] == 0.2
    assert card.parse_policy(None, "P.md").source.startswith("defaults")
    for text, message in (("# no front matter", "front matter"), ("---\nthresholds: {bogus: 1}\n---\n", "bogus"),
                          ("---\nthresholds: {fpr: -1}\n---\n", "non-negative")):
        with pytest.raises(StepError, match=message):
            card.parse_policy(text, "P.md")


RESULT = {"model": "m", "version": "3", "selector": "@production", "dataset": "/d.csv", "rows": 100,
          "overall": [100, 0.3, 0.8, 0.7, 0.6, 0.1, 0.4], "problems": [], "error": "",
          "attributes": {"sex": {"groups": {"F": [50, 0.4, 0.8, 0.7, 0.6, 0.1, 0.4],
                                            "M": [50, 0.2, 0.8, 0.7, 0.6, 0.1, 0.4]},
                                 "small": [], "dp_difference": 0.2, "dp_ratio": 0.5, "eo_difference": 0.0}}}


def test_rendering_is_deterministic_and_the_record_round_trips() -> None:
    new = card.record(RESULT, "2026-11-30", "2026-W49")
    one = card.render_section("m", new, None)
    assert one == card.render_section("m", new, None)
    text = card.upsert_section("# Card\n\nmine\n", "m", one)
    assert text.startswith("# Card\n\nmine\n") and card.previous_record(text) == new
    hostile = {**RESULT, "dataset": "--> <script>"}
    line = card.data_line(card.record(hostile, "d", "w"))
    assert "-->" not in line[: -len(card.DATA_SUFFIX)] and "<script>" not in line


def test_movement_beyond_thresholds_only() -> None:
    policy = card.parse_policy(None, "P.md")
    old = card.record(RESULT, "2026-11-23", "2026-W48")
    same = card.record(RESULT, "2026-11-30", "2026-W49")
    assert card.movements(same, old, policy) == []
    moved = card.record({**RESULT, "attributes": {"sex": {**RESULT["attributes"]["sex"], "dp_difference": 0.25}}},
                        "2026-11-30", "2026-W49")
    [reason] = card.movements(moved, old, policy)
    assert "demographic-parity difference 0.2 → 0.25" in reason
    assert card.movements(same, None, policy) == ["first fairness audit recorded in the card"]


def test_refresh_writes_only_moved_cards_and_lists_bad_models(tmp_path) -> None:
    (tmp_path / "model-cards").mkdir()
    context = collect.build_context(
        [{"name": "m", "version": "3", "selector": "@production"}, {"name": "gone", "version": "1"}],
        [RESULT], date="2026-11-30", week="2026-W49")
    digest = collect.refresh(tmp_path, context, cards_dir="model-cards", policy_file="model-cards/POLICY.md")
    assert (tmp_path / "model-cards/m.md").is_file() and not (tmp_path / "model-cards/gone.md").exists()
    assert "audit pod did not finish" in digest and "1 card(s) refreshed" in digest
    before = (tmp_path / "model-cards/m.md").read_bytes()
    again = collect.refresh(tmp_path, context, cards_dir="model-cards", policy_file="model-cards/POLICY.md")
    assert (tmp_path / "model-cards/m.md").read_bytes() == before and "0 card(s) refreshed" in again
