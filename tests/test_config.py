"""Configuration: a wrong field is one clear line (with its YAML line) and exit code 2, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hera_flows.config import ConfigError, parse_config
from tests.conftest import ROOT


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "flows.yaml")
    return info.value.problems


def test_the_shipped_config_is_valid_and_has_sensible_defaults() -> None:
    cfg = parse_config((ROOT / "config/flows.yaml").read_text())
    promotion = cfg.patterns.promotion
    assert promotion.aliases == ["champion", "production"]
    assert promotion.rate_limit.requests_per_unit >= 1
    assert cfg.repository_for("promotion").slug == "acme/ml-gitops"


def test_minimal_config_only_needs_a_repository() -> None:
    cfg = parse_config("repository: {url: 'https://github.com/o/r'}\n")
    assert cfg.repository_for("promotion").slug == "o/r"
    assert cfg.namespace == "mlops-automation"


def test_one_line_per_problem_with_line_numbers() -> None:
    problems = _problems(
        "namespace: Not_A_Namespace\n"
        "repository: {url: 'https://github.com/o/r'}\n"
        "patterns:\n"
        "  promotion:\n"
        "    rate_limit: {requests_per_unit: 0}\n"
        "    aliaes: [champion]\n"
    )
    assert len(problems) == 3
    assert problems[0].startswith("flows.yaml:1: namespace: String should match pattern")
    assert any(p.startswith("flows.yaml:5: patterns.promotion.rate_limit.requests_per_unit:") and "got 0" in p
               for p in problems)
    assert any(p.startswith("flows.yaml:6: patterns.promotion.aliaes: unknown field") for p in problems)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("patterns: {promotion: {enabled: true}}\n", "needs a 'repository'"),
        ("repository: {url: 'not a url at all'}\n", "cannot derive 'slug'"),
        ("repository: {url: 'https://github.com/o/r'}\nagent: {kind: command}\n", "needs both 'image' and 'command'"),
        ("repository: {url: 'https://github.com/o/r'}\npatterns: {promotion: {allowed_paths: ['../x/**']}}\n",
         "must be relative"),
        ("repository: {url: 'https://github.com/o/r'}\npatterns: {promotion: {smoke: {endpoint: 'http://{x}'}}}\n",
         "only the placeholder {model}"),
        ("- a list\n", "must be a mapping"),
        ("repository: {url: 'https://github.com/o/r'}\nworkflow: {ttl_seconds_after_success: 60}\n",
         "replay records are deleted with their workflow"),
        ("namespace: [unclosed\n", "not valid YAML"),
    ],
)
def test_specific_mistakes_are_explained(text: str, fragment: str) -> None:
    assert any(fragment in p for p in _problems(text))


def test_cli_exit_code_2_and_no_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "flows.yaml"
    bad.write_text("repository: {url: 'https://github.com/o/r'}\npatterns: {promotion: {rate_limit: {unit: Day}}}\n")
    for command in (["generate", "--config", str(bad), "--out", str(tmp_path)], ["validate", "--config", str(bad)]):
        result = subprocess.run([sys.executable, "-m", "hera_flows", *command], capture_output=True, text=True)
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines == [
            f"{bad}:2: patterns.promotion.rate_limit.unit: Input should be 'Second', 'Minute' or 'Hour' (got 'Day')"
        ]
    assert not (tmp_path / "generated").exists()


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hera_flows", "validate", "--config", str(tmp_path / "nope.yaml")],
        capture_output=True, text=True,
    )
    assert result.returncode == 2 and "cannot read the configuration" in result.stderr


def test_the_configuration_reference_is_current() -> None:
    from hera_flows.config_reference import render_reference

    reference = render_reference()
    assert (ROOT / "docs/configuration.md").read_text() == reference, "run `make docs`"
    for field in ("signature_tolerance_seconds", "allowed_paths", "rate_limit", "requests_per_unit", "token_secret"):
        assert f"`{field}`" in reference


def test_the_parameter_path_refuses_a_registry_it_cannot_carry_and_names_the_fix() -> None:
    from hera_flows.config import ConfigError, parse_config

    text = ("repository: {url: https://github.com/a/b.git}\n"
            "patterns: {fairness_audit: {enabled: true, max_models: 5000}}\n")
    with pytest.raises(ConfigError, match=r"max_models 5000 needs an artifact repository.*artifacts.repository"):
        parse_config(text)
    with_repo = text + "artifacts: {repository: default}\n"
    cfg = parse_config(with_repo)
    assert cfg.patterns.fairness_audit.model_limit(True) == 5000
    assert parse_config("repository: {url: https://github.com/a/b.git}\n").patterns.fairness_audit.model_limit(
        False) == 60  # under the 75 typical results the parameter path carries (benchmarks/fairness_scale.py)


def test_triage_log_bounds_follow_the_transport_and_the_parameter_path_names_the_fix() -> None:
    base = "repository: {url: https://github.com/a/b.git}\npatterns: {failure_triage: {enabled: true%s}}\n"
    assert parse_config(base % "").patterns.failure_triage.logs.bounds(False) == (200, 16 * 1024, 96 * 1024)
    assert parse_config(base % "").patterns.failure_triage.logs.bounds(True) == (2000, 256 * 1024, 4 * 1024 * 1024)
    big = base % ", logs: {keep_bytes: 1048576, context_bytes: 8388608}"
    with pytest.raises(ConfigError, match=r"keep_bytes 1048576 is more than 262144 \(256 KiB\); context_bytes "
                                          r"8388608 is more than 98304 \(96 KiB\).*configure `artifacts.repository`"):
        parse_config(big)
    cfg = parse_config(big + "artifacts: {repository: default}\n")
    assert cfg.patterns.failure_triage.logs.bounds(True) == (2000, 1024 * 1024, 8 * 1024 * 1024)
    # what the user sets within the parameter path's bounds is kept there too
    assert parse_config(base % ", logs: {tail_lines: 50}").patterns.failure_triage.logs.bounds(False)[0] == 50
