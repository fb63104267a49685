"""What every step shares: user-facing errors, exit codes, output files, retries with backoff.

A step is `hera-flows step NAME`. Event data arrives in environment variables (``HF_PARAM_*``), static
configuration as ``--flag=value`` arguments and secrets from Secret-backed environment variables, so nothing
from an event is ever parsed as a flag or spliced into a shell. Output parameters are files in ``--outputs``.
"""

from __future__ import annotations

import json
import os
import random
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, overload

T = TypeVar("T")

EXIT_OK = 0
EXIT_REJECTED = 1  # the step looked at its input and refused it: a clear message, no retry
EXIT_USAGE = 2  # the step was called wrongly (a bad flag): a generation bug or a hand-written call
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: a network dependency failed after the step's own retries; Argo may retry


class StepError(Exception):
    """A failure with a message meant for the person reading the workflow; no traceback is printed."""

    exit_code = EXIT_REJECTED


class TransientError(StepError):
    """A dependency (MLflow, the forge, the Kubernetes API) is unreachable or failing; worth retrying later."""

    exit_code = EXIT_TRANSIENT


def param(name: str, default: str | None = None, *, required: bool = False) -> str:
    """Read an event-derived parameter from ``HF_PARAM_<NAME>`` (``model-name`` -> ``HF_PARAM_MODEL_NAME``)."""
    key = "HF_PARAM_" + name.upper().replace("-", "_")
    value = os.environ.get(key)
    if value is None or (required and value == ""):
        if required:
            raise StepError(f"missing input parameter {name!r} (environment variable {key})")
        return "" if default is None else default
    return value


@overload
def parse_json(raw: str, what: str) -> dict[str, Any]: ...


@overload
def parse_json(raw: str, what: str, kind: type[list[Any]]) -> list[Any]: ...


@overload
def parse_json(raw: str, what: str, kind: type) -> Any: ...


def parse_json(raw: str, what: str, kind: type = dict) -> Any:
    """Parse a JSON parameter or flag that must be an object (or list); a clear StepError names ``what``."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise StepError(f"{what} is not valid JSON ({exc.msg} at character {exc.pos})") from None
    if not isinstance(value, kind):
        raise StepError(f"{what} must be a JSON {'object' if kind is dict else 'list'}")
    return value


def secret(name: str, *, required: bool = True) -> str:
    """Read a Secret-backed environment variable; never echo its value."""
    value = os.environ.get(name, "")
    if required and not value:
        raise StepError(f"the secret environment variable {name} is not set (check the Secret reference)")
    return value


def write_outputs(out_dir: str | os.PathLike[str] | None, **values: str) -> None:
    """Write each output parameter to ``out_dir/<name>`` (underscores become dashes, as Argo names them).

    Every value passes :func:`neutralise_braces` first: an output that flows into a later task's arguments must
    never hold ``{{``, or Argo would read event data as a template expression.
    """
    if out_dir is None:
        return
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    for name, value in values.items():
        (directory / name.replace("_", "-")).write_text(neutralise_braces(value), encoding="utf-8")


_SECOND_BRACE = re.compile(r"(?<=\{)\{")


def neutralise_braces(value: str) -> str:
    """Break every ``{{`` so Argo's template substitution finds no expression in a value.

    Argo substitutes ``{{...}}`` in a task's arguments after earlier outputs are spliced in, so an output holding
    event data such as ``{{workflow.name}}`` or ``{{=sprig...}}`` would be evaluated (or fail the workflow with
    "Unable to resolve"). JSON values: ``{{`` can only occur inside strings, so each second brace becomes the
    escape ``\\u007b`` -- the text parses to exactly the same data. Plain text: a space goes between the braces
    (``{{x}}`` -> ``{ {x}}``), visible to a reader and stable (a neutralised value passes unchanged).
    """
    if "{{" not in value:
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        return _SECOND_BRACE.sub(" {", value)
    escaped = _SECOND_BRACE.sub(lambda _: "\\u007b", value)
    if json.loads(escaped) != parsed:  # cannot happen for valid JSON; never trade correctness for the escape
        return _SECOND_BRACE.sub(" {", value)
    return escaped


def retry(
    fn: Callable[[], T],
    *,
    what: str,
    attempts: int = 5,
    base_delay: float = 1.0,
    max_delay: float = 30.0,
    deadline: float | None = None,
    retry_on: tuple[type[BaseException], ...] = (OSError,),
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` with exponential backoff and jitter; raise TransientError when attempts or deadline run out.

    ``deadline`` is a ``time.monotonic()`` value: no retry starts after it, so a step never outlives the
    workflow's own deadline by waiting.
    """
    last: BaseException | None = None
    for attempt in range(1, attempts + 1):
        try:
            return fn()
        except retry_on as exc:  # noqa: PERF203 - the loop is the retry
            last = exc
            if attempt == attempts:
                break
            delay = min(max_delay, base_delay * 2 ** (attempt - 1)) * (0.5 + random.random() / 2)
            if deadline is not None and time.monotonic() + delay > deadline:
                break
            print(f"{what}: attempt {attempt} failed ({exc}); retrying in {delay:.1f}s", file=sys.stderr)
            sleep(delay)
    raise TransientError(f"{what} failed after retries: {last}") from last


def log(message: str) -> None:
    """One progress line on stderr (Argo shows it in the step's log)."""
    print(message, file=sys.stderr, flush=True)
