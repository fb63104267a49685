"""`hera-flows step drift-smoke`: the changed pipeline parameters file parses and validates.

Input ``files`` is the publish step's JSON ``{path: content}``; every changed ``<pipelines-dir>/*/<params-file>``
must be a YAML mapping with ``dataset.window_days`` (a whole number >= ``--min-window-days``) and
``dataset.window_end`` (an ISO date, not in the future), and keep every other top-level key a mapping or a
scalar. Outputs ``result`` (passed | failed) and a markdown ``report`` that the report step comments on the PR.
A failed check is not a step failure here: the report step posts it and then fails the run.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from typing import Any

import yaml

from hera_flows.steps.common import log, parse_json
from hera_flows.steps.contract import Flag, Step


def validate_params(text: str, min_window_days: int, today: date | None = None) -> list[str]:
    """Problems of one params file (empty when it is valid)."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"not valid YAML: {str(exc).splitlines()[0][:200]}"]
    if not isinstance(data, dict):
        return ["the file must be a YAML mapping"]
    problems: list[str] = []
    dataset = data.get("dataset")
    if not isinstance(dataset, dict):
        return ["dataset must be a mapping"]
    window = dataset.get("window_days")
    if not isinstance(window, int) or isinstance(window, bool) or window < min_window_days:
        problems.append(f"dataset.window_days must be a whole number >= {min_window_days}, got {window!r}")
    end: Any = dataset.get("window_end")
    try:
        end_day = end if isinstance(end, date) else date.fromisoformat(str(end))
    except ValueError:
        problems.append(f"dataset.window_end must be an ISO date (YYYY-MM-DD), got {end!r}")
    else:
        limit = (today or datetime.now(timezone.utc).date()) + timedelta(days=1)
        if end_day > limit:
            problems.append(f"dataset.window_end {end_day} is in the future")
    for key, value in data.items():
        if isinstance(value, list) and key != "features":
            problems.append(f"{key} is a list; expected a mapping or a value")
    return problems


CONTRACT = Step(
    name="drift-smoke",
    entry="hera_flows.steps.drift.smoke:main",
    summary="the changed pipeline parameters parse and keep the training window sane",
    flags=(
        Flag("pipelines-dir", "folder of the pipelines"),
        Flag("params-file", "the model's training parameters file"),
        Flag("min-window-days", "the shortest acceptable training window", kind=int),
    ),
    inputs=("model-name", "files"),
    outputs=("result", "report"),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    files = parse_json(CONTRACT.param("files") or "{}", "the files parameter")
    checked = {path: text for path, text in files.items()
               if path.startswith(args.pipelines_dir + "/") and path.endswith("/" + args.params_file)}
    lines = ["### Pipeline config check", ""]
    failed = False
    if not checked:
        failed = True
        lines.append(f"No `{args.pipelines_dir}/*/{args.params_file}` was changed: nothing to validate.")
    for path, text in sorted(checked.items()):
        if not isinstance(text, str) or not text:
            failed = True
            lines.append(f"- `{path}`: content not available (deleted or too large)")
            continue
        problems = validate_params(text, args.min_window_days)
        failed = failed or bool(problems)
        lines.append(f"- `{path}`: " + ("parses and validates" if not problems else "; ".join(problems)))
    result = "failed" if failed else "passed"
    lines += ["", f"Result: **{result}**"]
    CONTRACT.write(args.outputs, result=result, report="\n".join(lines) + "\n")
    log(f"drift-smoke: {result} ({len(checked)} params file(s) checked)")
    return 0
