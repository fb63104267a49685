"""Which model version a staging endpoint serves, and whether it is the one a promotion asked for.

A 200 answer proves that *a* model answers, not that it is the promoted one: a rollout still in progress, a sync
that never happened or a runtime that kept its cache all answer with the old version. The Open Inference Protocol
(V2) says which version answered in two places, both read here:

- the inference response's ``model_version`` (``InferenceResponse``: ``model_name``, ``model_version``, ``id``,
  ``outputs``), and
- the model metadata, ``GET /v2/models/<name>`` (``MetadataModelResponse``: ``name``, ``versions``, ``platform``,
  ``inputs``, ``outputs``).

KServe's V1 protocol carries no version at all (``GET /v1/models/<name>`` is ``{"name", "ready"}``). What a server
reports for registry version N depends on how the runtime is configured (MLServer's ``version`` setting, a
custom runtime's own scheme), so the expected text is ``format`` with ``{version}`` replaced (``"{version}"`` by
default, e.g. ``"v{version}"``). The evidence is polled while staging may still be rolling out; the verdict:

- ``passed``: the expected version answered;
- ``failed``: only other versions answered until the wait ran out — staging still serves the old version (waiting
  is worth it only while another version answers: a server that reports none is judged at once);
- ``skipped`` (``failed`` when the check is required): the endpoint reports no version, so nothing can be said.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

PLACEHOLDER = "{version}"
MAX_VERSION_CHARS = 64


def _clean(value: Any) -> str | None:
    """A reported version as safe one-line text (the server is not trusted: no backticks, bounded), or None."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    text = "".join(ch for ch in str(value).strip() if ch.isprintable() and ch not in "`|")[:MAX_VERSION_CHARS]
    return text or None


@dataclass(frozen=True)
class Evidence:
    """The versions one look at the endpoint reported, and where each came from (for the report)."""

    versions: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.versions


@dataclass
class Verdict:
    status: str  # passed | failed | skipped
    detail: str
    problems: list[str] = field(default_factory=list)
    observed: tuple[str, ...] = ()


def expected_version(format_: str, version: str) -> str:
    """What the server reports for registry ``version``: ``format_`` with ``{version}`` replaced."""
    return format_.replace(PLACEHOLDER, version)


def from_response(body: bytes) -> Evidence:
    """``model_version`` of a V2 inference response (nothing for V1 or a response without one)."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return Evidence()
    value = _clean(data.get("model_version")) if isinstance(data, dict) else None
    return Evidence((value,), ("the inference response's model_version",)) if value else Evidence()


def from_metadata(body: bytes) -> Evidence:
    """``versions`` of a V2 model metadata response."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return Evidence()
    values = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(values, list):
        return Evidence()
    found = tuple(dict.fromkeys(v for v in map(_clean, values[:100]) if v))
    return Evidence(found, ("the model metadata's versions",) if found else ())


def combine(*pieces: Evidence) -> Evidence:
    versions: dict[str, None] = {}
    sources: dict[str, None] = {}
    for piece in pieces:
        versions.update(dict.fromkeys(piece.versions))
        sources.update(dict.fromkeys(piece.sources))
    return Evidence(tuple(versions), tuple(sources))


def verify(
    look: Callable[[], Evidence],
    *,
    expected: str,
    accepted: tuple[str, ...] = (),
    wait_seconds: float,
    required: bool,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    interval: float = 2.0,
) -> Verdict:
    """Look at the endpoint until it reports ``expected`` (or, with ``accepted``, any of those: a canary step serves
    both versions) or ``wait_seconds`` have passed. ``look`` returns what one look found."""
    deadline = clock() + wait_seconds
    wanted = (expected, *accepted)
    looks = 0
    while True:
        evidence = look()
        looks += 1
        if any(v in wanted for v in evidence.versions):
            where = " and ".join(evidence.sources)
            seen = ", ".join(f"`{v}`" for v in evidence.versions)
            return Verdict("passed", f"serves {seen} ({where})", observed=evidence.versions)
        remaining = deadline - clock()
        if remaining <= 0 or evidence.empty:
            break  # a server that reports no version will not start to: nothing to wait for
        sleep(min(interval, remaining))
    if evidence.empty:
        detail = "the endpoint reports no model version (V1 has none; a V2 server without a configured version)"
        problem = (f"cannot verify that staging serves version '{expected}': {detail}; configure the runtime to "
                   "report it, or set smoke.served_version.required: false")
        return Verdict("failed" if required else "skipped", detail, [problem] if required else [])
    seen = ", ".join(f"`{v}`" for v in evidence.versions)
    plain = ", ".join(f"'{v}'" for v in evidence.versions)
    waited = f" after {wait_seconds:g} s and {looks} look(s)" if wait_seconds > 0 else ""
    problem = (f"staging still serves version {plain}, not the promoted version '{expected}'{waited} "
               f"(read from {' and '.join(evidence.sources)}); the rollout has not reached staging, or the "
               "runtime reports versions in another form (smoke.served_version.format)")
    return Verdict("failed", f"serves {seen}, expected `{expected}`", [problem], evidence.versions)


def metadata_url(infer_url: str, protocol: str) -> str | None:
    """The V2 model metadata URL next to an inference URL (None for V1: it has no version to read)."""
    if protocol != "v2" or not infer_url.endswith("/infer"):
        return None
    return infer_url[: -len("/infer")]

