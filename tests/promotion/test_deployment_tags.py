"""The deployment tags of a model version: typed when valid, a StepError naming tag and value when not."""

from __future__ import annotations

import pytest

from hera_flows.steps.common import StepError
from hera_flows.steps.promotion.deployment_tags import DEPLOYMENT_TAGS, parse_deployment_tags


def test_all_tags_parsed_and_typed() -> None:
    tags = {
        "gpu_type": "NVIDIA-A100-SXM4-80GB",
        "gpu_count": "2",
        "replica_min": " 1 ",
        "replica_max": "4",
        "runtime_version": "1.6.1",
        "cpu": "500m",
        "memory": "2Gi",
        "framework": "sklearn",  # not a deployment tag: ignored
    }
    assert parse_deployment_tags(tags) == {
        "runtime_version": "1.6.1",
        "gpu_type": "NVIDIA-A100-SXM4-80GB",
        "gpu_count": 2,
        "replica_min": 1,
        "replica_max": 4,
        "cpu": "500m",
        "memory": "2Gi",
    }


def test_absent_or_blank_tags_are_none() -> None:
    result = parse_deployment_tags({"replica_max": "3", "cpu": "  "})
    assert list(result) == list(DEPLOYMENT_TAGS)
    assert result == {name: (3 if name == "replica_max" else None) for name in DEPLOYMENT_TAGS}


@pytest.mark.parametrize(
    "value",
    ["1", "0.5", "250m", "2", "1e3", "1.5Gi", "128974848", "129M", "123Mi", ".5"],
)
def test_kubernetes_quantities_accepted(value: str) -> None:
    assert parse_deployment_tags({"cpu": value})["cpu"] == value
    if not value.endswith("m"):
        assert parse_deployment_tags({"memory": value})["memory"] == value


def test_scale_to_zero_is_allowed() -> None:
    assert parse_deployment_tags({"replica_min": "0", "replica_max": "1"})["replica_min"] == 0


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({"replica_min": "abc"}, "replica_min='abc'"),
        ({"replica_min": "-1"}, "replica_min='-1'"),
        ({"replica_max": "2.5"}, "replica_max='2.5'"),
        ({"gpu_count": "one"}, "gpu_count='one'"),
        ({"gpu_count": "99999999999"}, "gpu_count='99999999999'"),
        ({"replica_min": "5", "replica_max": "2"}, "replica_min='5' and replica_max='2'"),
        ({"replica_max": "0"}, "replica_max='0'"),
        ({"gpu_type": "NVIDIA-L4", "gpu_count": "0"}, "gpu_type='NVIDIA-L4' and gpu_count='0'"),
        ({"cpu": "lots"}, "cpu='lots'"),
        ({"cpu": "-1"}, "cpu='-1'"),
        ({"cpu": "0"}, "cpu='0'"),
        ({"memory": "2GB"}, "memory='2GB'"),
        ({"memory": "512m"}, "did you mean '512Mi'"),
        ({"gpu_type": "NVIDIA A100"}, "gpu_type='NVIDIA A100'"),
        ({"gpu_type": "a" * 64}, "gpu_type="),
        ({"gpu_type": "-leading-dash"}, "gpu_type='-leading-dash'"),
        ({"runtime_version": "1.6.1; rm -rf /"}, "runtime_version='1.6.1; rm -rf /'"),
        ({"runtime_version": "v1\nimage: evil"}, "runtime_version="),
    ],
)
def test_bad_values_name_the_tag_and_value(tags: dict[str, str], expected: str) -> None:
    with pytest.raises(StepError) as error:
        parse_deployment_tags(tags)
    assert expected in str(error.value)
    assert type(error.value) is StepError  # exit 1: a rejection, never retried
