"""`hera-flows step smoke`: check the changed InferenceServices and send one inference request to staging.

Run after the PR is opened, so reviewers see on the PR whether the manifests would be accepted by the API server
(KServe v0.20.0 schema, strict fields) and whether the staging endpoint answers the KServe protocol within the
latency budget. Staging may be rolling out, so connection failures and 5xx answers are retried a few times with
backoff, always within ``--timeout-seconds`` in total. The step always writes ``result`` and ``report``; a
completed smoke test exits 0 whatever its verdict, so the `report` step still posts it on the PR — `report` then
fails the workflow when the result is ``failed``.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

from hera_flows.steps.common import StepError, TransientError, log, parse_json, retry
from hera_flows.steps.contract import Flag, Step

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"
ICONS = {PASSED: "✅", FAILED: "❌", SKIPPED: "➖"}

ATTEMPTS = 4  # one request and up to three retries, all within --timeout-seconds
RETRY_BASE_DELAY = 0.5  # seconds; doubles each retry (with jitter), see common.retry
RETRY_STATUSES = frozenset({500, 502, 503, 504})
MAX_PROBLEMS = 50

# The Open Inference Protocol tensor datatypes.
V2_DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "BF16", "FP32",
     "FP64", "BYTES"}
)
# KServe's own examples (the iris sklearn model): a sensible request when the configuration gives no payload.
DEFAULT_PAYLOADS: dict[str, dict[str, Any]] = {
    "v1": {"instances": [[6.8, 2.8, 4.8, 1.4]]},
    "v2": {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [6.8, 2.8, 4.8, 1.4]}]},
}


@dataclass
class Check:
    name: str
    status: str
    detail: str
    problems: list[str] = field(default_factory=list)


@dataclass
class Outcome:
    """What the last request attempt produced."""

    attempts: int
    status_code: int | None = None
    body: bytes = b""
    latency_ms: int | None = None
    error: str | None = None  # no HTTP response at all


class _Retryable(Exception):
    def __init__(self, outcome: Outcome):
        super().__init__(outcome.error or f"HTTP {outcome.status_code}")
        self.outcome = outcome


CONTRACT = Step(
    name="promotion-smoke",
    entry="hera_flows.steps.promotion.smoke:main",
    summary="validate the changed InferenceService and send one inference request to staging",
    flags=(
        Flag("endpoint", "staging base URL; {model} becomes the model's name"),
        Flag("protocol", "KServe v1 or Open Inference (v2)", choices=("v1", "v2")),
        Flag("max-latency-ms", "slowest acceptable answer", kind=int),
        Flag("timeout-seconds", "budget for all attempts together", kind=float),
        Flag("payload", "request body (JSON); left out: a KServe example request", optional=True),
        Flag("verify-served-version", "check that staging answers with the promoted version", form="bool"),
        Flag("served-version-format", "what the server reports for registry version N ({version} is N)"),
        Flag("served-version-wait-seconds", "how long staging may take to serve the promoted version",
             kind=float),
        Flag("served-version-required", "fail when the endpoint reports no version at all", form="bool"),
    ),
    inputs=("model-name", "version", "files", "also-accept"),
    outputs=("result", "report"),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    try:
        return run(args)
    except StepError as exc:
        # The PR still learns why there is no smoke test: the report step posts whatever report we leave.
        report = f"### Smoke test {ICONS[FAILED]} could not run\n\n```text\n{_plain(str(exc))[:400]}\n```\n"
        CONTRACT.write(args.outputs, result=FAILED, report=report)
        raise


def run(args: argparse.Namespace) -> int:
    if args.max_latency_ms < 1 or not args.timeout_seconds > 0:
        raise StepError("--max-latency-ms and --timeout-seconds must be positive")
    payload = request_payload(args.protocol, args.payload)
    check_endpoint_template(args.endpoint)
    model = CONTRACT.param("model-name", required=True)
    files = parse_files(CONTRACT.param("files"))

    checks, served_name, target = manifest_checks(files, model)
    from hera_flows.steps.promotion.seldon import MODEL_HEADER
    from hera_flows.steps.promotion.serving_manifest import SELDON, k8s_name

    name = served_name or k8s_name(model)
    if not name:
        raise StepError(f"the model name {model!r} has no DNS-1123 form to address it by")
    url = request_url(args.endpoint, name, args.protocol)
    # Seldon Core 2's mesh routes by this header; KServe ignores it.
    headers = {MODEL_HEADER: name} if target == SELDON else {}
    log(f"promotion-smoke: POST {url}")
    outcome = send(url, payload, timeout_seconds=args.timeout_seconds, headers=headers)
    checks.extend(response_checks(outcome, args.protocol, payload, args.max_latency_ms))
    version = CONTRACT.param("version").strip()
    if args.verify_served_version and version:
        if target == SELDON:
            checks.append(Check("Served version", SKIPPED, "not verifiable on Seldon Core 2: its answers carry "
                                "Seldon's own model generation (model_name <name>_<n>), not the registry version"))
        else:
            checks.append(served_version_check(args, url, payload, outcome, version))

    result = FAILED if any(c.status == FAILED for c in checks) else PASSED
    report = render_report(result, checks, model=model, url=url, protocol=args.protocol)
    CONTRACT.write(args.outputs, result=result, report=report)
    log(f"promotion-smoke: {result}")
    return 0


# --- inputs -----------------------------------------------------------------------------------------------


def request_payload(protocol: str, raw: str | None) -> dict[str, Any]:
    """The request body: ``--payload`` when given (checked against the protocol), else the default example."""
    if raw is None:
        return DEFAULT_PAYLOADS[protocol]
    payload = parse_json(raw, "--payload")
    if protocol == "v1":
        instances = payload.get("instances")
        if not (isinstance(instances, list) and instances) and "inputs" not in payload:
            raise StepError('--payload for protocol v1 needs a non-empty "instances" list (or "inputs")')
        return payload
    inputs = payload.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise StepError('--payload for protocol v2 needs a non-empty "inputs" list of tensors')
    problems = [p for i, tensor in enumerate(inputs) for p in tensor_problems(tensor, f"inputs[{i}]")]
    if problems:
        raise StepError("--payload is not a valid Open Inference Protocol request: " + "; ".join(problems[:5]))
    return payload


def check_endpoint_template(template: str) -> None:
    if not template:
        raise StepError("--endpoint is required (the staging base URL, e.g. http://{model}-predictor.staging)")
    rest = template.replace("{model}", "")
    if "{" in rest or "}" in rest:
        raise StepError(f"--endpoint may only contain the placeholder {{model}}: {template!r}")
    parts = urlsplit(template.replace("{model}", "model"))
    if parts.scheme not in ("http", "https") or not parts.hostname or re.search(r"\s", template):
        raise StepError(f"--endpoint must be an http(s) URL, got {template!r}")
    if parts.query or parts.fragment:
        raise StepError(f"--endpoint must not have a query or fragment: {template!r}")


def request_url(template: str, name: str, protocol: str) -> str:
    """The inference URL: ``{model}`` and the model path segment get the URL-quoted model name."""
    safe = quote(name, safe="")
    base = template.replace("{model}", safe).rstrip("/")
    if protocol == "v1":
        return f"{base}/v1/models/{safe}:predict"
    return f"{base}/v2/models/{safe}/infer"


def parse_files(raw: str) -> dict[str, str]:
    """publish's ``files`` output: a JSON object {path: content}; empty when nothing changed."""
    if not raw.strip():
        return {}
    files = parse_json(raw, "the files parameter")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in files.items()):
        raise StepError("the files parameter must be a JSON object mapping paths to file contents")
    return files


# --- manifests --------------------------------------------------------------------------------------------


def manifest_checks(files: dict[str, str], model: str) -> tuple[list[Check], str | None, str | None]:
    """One check per serving resource among the YAML files (KServe InferenceServices, Seldon Models and
    Experiments, each against its vendored CRD), the name the model is served under and its target.

    The served name is the ``metadata.name`` of the InferenceService or Seldon Model annotated with the registered
    model name, the same rule the context step uses to find it; ``None`` when no changed manifest names it.
    """
    import yaml

    from hera_flows.steps.promotion import kserve, seldon
    from hera_flows.steps.promotion.serving_manifest import MODEL_ANNOTATION, target_of

    checks: list[Check] = []
    served: str | None = None
    target: str | None = None
    for path in sorted(p for p in files if p.endswith((".yaml", ".yml"))):
        try:
            documents = list(yaml.safe_load_all(files[path]))
        except yaml.YAMLError as exc:
            if any(w in files[path] for w in ("InferenceService", "serving.kserve.io", "mlops.seldon.io")):
                problem = f"{path}: not valid YAML ({' '.join(str(exc).split())[:200]})"
                checks.append(Check(f"Serving manifest {_code(path)}", FAILED, "not valid YAML", [problem]))
            continue
        for index, doc in enumerate(documents):
            if kserve.looks_like_inference_service(doc):
                kind, problems = "InferenceService", kserve.validate_inference_service(doc)
                against, api = f"KServe {kserve.KSERVE_VERSION}", "v1beta1"
            elif seldon.seldon_kind(doc) is not None:
                kind, problems = f"Seldon {seldon.seldon_kind(doc)}", seldon.validate(doc)
                against, api = f"Seldon Core {seldon.SELDON_VERSION}", "v1alpha1"
            else:
                continue
            label = f"{kind} {_code(path)}" + (f" (document {index + 1})" if len(documents) > 1 else "")
            if problems:
                checks.append(Check(label, FAILED, f"{len(problems)} problem(s) against {against}",
                                    [f"{path}: {p}" for p in problems]))
            else:
                checks.append(Check(label, PASSED, f"valid against {against} {api}"))
            metadata = doc.get("metadata")
            metadata = metadata if isinstance(metadata, dict) else {}
            annotations = metadata.get("annotations")
            annotations = annotations if isinstance(annotations, dict) else {}
            if (served is None and target_of(doc) is not None and annotations.get(MODEL_ANNOTATION) == model
                    and isinstance(metadata.get("name"), str)):
                served, target = metadata["name"], target_of(doc)
    if not checks:
        checks.append(Check("Serving manifests", SKIPPED, "no InferenceService or Seldon resource among the changed "
                            "files"))
    return checks, served, target


# --- the request ------------------------------------------------------------------------------------------


def send(url: str, payload: dict[str, Any], *, timeout_seconds: float,
         headers: dict[str, str] | None = None) -> Outcome:
    """POST ``payload``; retry connection failures and 5xx with backoff until the attempts or the time run out."""
    import httpx

    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Accept": "application/json", **(headers or {})}
    deadline = time.monotonic() + timeout_seconds
    attempts = 0

    def attempt(client: httpx.Client) -> Outcome:
        nonlocal attempts
        attempts += 1
        remaining = max(deadline - time.monotonic(), 0.05)
        started = time.perf_counter()
        try:
            response = client.post(url, content=body, headers=headers, timeout=remaining)
        except httpx.TimeoutException:
            return Outcome(attempts, error=f"no response within {timeout_seconds:g} s (--timeout-seconds)")
        except httpx.TransportError as exc:
            raise _Retryable(Outcome(attempts, error=f"could not connect: {exc or type(exc).__name__}")) from exc
        latency = round((time.perf_counter() - started) * 1000)
        outcome = Outcome(attempts, response.status_code, response.content, latency)
        if response.status_code in RETRY_STATUSES:
            raise _Retryable(outcome)
        return outcome

    with httpx.Client(follow_redirects=False) as client:
        try:
            return retry(
                lambda: attempt(client),
                what=f"POST {url}",
                attempts=ATTEMPTS,
                base_delay=RETRY_BASE_DELAY,
                max_delay=4.0,
                deadline=deadline,
                retry_on=(_Retryable,),
            )
        except TransientError as exc:
            cause = exc.__cause__
            if isinstance(cause, _Retryable):
                return cause.outcome
            raise


def response_checks(outcome: Outcome, protocol: str, payload: dict[str, Any], max_latency_ms: int) -> list[Check]:
    tries = f"{outcome.attempts} attempt" + ("s" if outcome.attempts != 1 else "")
    if outcome.status_code is None:
        return [
            Check("HTTP status", FAILED, f"no response after {tries}", [outcome.error or "no response"]),
            Check("Response", SKIPPED, "no response"),
            Check("Latency", SKIPPED, "no response"),
        ]
    if outcome.status_code != 200:
        snippet = " ".join(outcome.body.decode("utf-8", "replace").split())[:300]
        problem = f"HTTP {outcome.status_code} (expected 200)" + (f": {snippet}" if snippet else "")
        return [
            Check("HTTP status", FAILED, f"{outcome.status_code} after {tries}", [problem]),
            Check("Response", SKIPPED, "no successful response"),
            Check("Latency", SKIPPED, f"{outcome.latency_ms} ms (not judged: no successful response)"),
        ]
    checks = [Check("HTTP status", PASSED, f"200 after {tries}")]
    problems, summary = response_problems(outcome.body, protocol, payload)
    checks.append(Check("Response", FAILED if problems else PASSED, summary, problems))
    latency = outcome.latency_ms or 0
    if latency <= max_latency_ms:
        checks.append(Check("Latency", PASSED, f"{latency} ms (max {max_latency_ms} ms)"))
    else:
        problem = f"latency {latency} ms exceeds the limit of {max_latency_ms} ms"
        checks.append(Check("Latency", FAILED, f"{latency} ms (max {max_latency_ms} ms)", [problem]))
    return checks


def response_problems(body: bytes, protocol: str, payload: dict[str, Any]) -> tuple[list[str], str]:
    """Problems of a 200 response body under the protocol, and a one-line summary for the report."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        snippet = " ".join(body.decode("utf-8", "replace").split())[:200]
        return [f"the response is not JSON: {snippet!r}"], "not JSON"
    if not isinstance(data, dict):
        return ["the response is not a JSON object"], "not a JSON object"
    if protocol == "v1":
        key = "predictions" if "instances" in payload else "outputs"
        predictions = data.get(key)
        if not isinstance(predictions, list):
            return [f'the v1 response has no "{key}" list'], f'no "{key}" list'
        if not predictions:
            return [f'the v1 response has an empty "{key}" list'], f'empty "{key}"'
        return [], f"{len(predictions)} prediction(s)"
    problems = []
    if not isinstance(data.get("model_name"), str):
        problems.append('the v2 response has no "model_name" string')
    outputs = data.get("outputs")
    if not isinstance(outputs, list) or not outputs:
        problems.append('the v2 response has no non-empty "outputs" list')
        return problems, 'no "outputs"'
    for i, tensor in enumerate(outputs):
        problems.extend(tensor_problems(tensor, f"outputs[{i}]"))
    return problems, ("malformed outputs" if problems else f"{len(outputs)} output tensor(s)")


def tensor_problems(tensor: Any, where: str) -> list[str]:
    """An Open Inference Protocol tensor: name, datatype, shape and data whose element count fits the shape."""
    if not isinstance(tensor, dict):
        return [f"{where} is not an object"]
    problems = []
    if not isinstance(tensor.get("name"), str) or not tensor.get("name"):
        problems.append(f'{where} has no "name"')
    if tensor.get("datatype") not in V2_DATATYPES:
        problems.append(f'{where} has no valid "datatype" (got {tensor.get("datatype")!r})')
    shape = tensor.get("shape")
    shape_ok = isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)
    if not shape_ok:
        problems.append(f'{where} has no valid "shape" (a list of non-negative integers)')
    if "data" not in tensor or not isinstance(tensor["data"], list):
        problems.append(f'{where} has no "data" list')
    elif shape_ok and isinstance(shape, list):
        count, expected = _leaf_count(tensor["data"]), math.prod(shape)
        if count != expected:
            problems.append(f"{where} has {count} data element(s) but its shape {shape} needs {expected}")
    return problems


def _leaf_count(data: Any) -> int:
    if isinstance(data, list):
        return sum(_leaf_count(item) for item in data)
    return 1


def served_version_check(args: argparse.Namespace, url: str, payload: dict[str, Any], first: Outcome,
                         version: str) -> Check:
    """Whether staging serves the promoted version (hera_flows/steps/promotion/served_version.py): the first
    response and the V2 model metadata, looked at again while staging may still be rolling out."""
    from hera_flows.steps.promotion import served_version as sv

    name = "Served version"
    expected = sv.expected_version(args.served_version_format, version)
    if first.status_code != 200:
        return Check(name, SKIPPED, f"not checked: no successful response (expected `{expected}`)")
    import httpx

    metadata = sv.metadata_url(url, args.protocol)
    pending = [first.body]

    def look() -> sv.Evidence:
        with httpx.Client(follow_redirects=False, timeout=min(args.timeout_seconds, 10.0)) as client:
            if pending:
                body = pending.pop()
            else:
                try:
                    answer = client.post(url, content=json.dumps(payload).encode(),
                                         headers={"Content-Type": "application/json"})
                    body = answer.content if answer.status_code == 200 else b""
                except httpx.HTTPError:
                    body = b""
            pieces = [sv.from_response(body)]
            if metadata is not None:
                try:
                    answer = client.get(metadata, headers={"Accept": "application/json"})
                    if answer.status_code == 200:
                        pieces.append(sv.from_metadata(answer.content))
                except httpx.HTTPError:
                    pass
        return sv.combine(*pieces)

    also = CONTRACT.param("also-accept").strip()  # a canary step: the serving version answers some requests
    accepted = (sv.expected_version(args.served_version_format, also),) if also else ()
    verdict = sv.verify(look, expected=expected, accepted=accepted, wait_seconds=args.served_version_wait_seconds,
                        required=args.served_version_required, clock=time.monotonic, sleep=time.sleep)
    log(f"promotion-smoke: served version: {verdict.status}: {verdict.detail}")
    return Check(name, verdict.status, f"{verdict.detail} (expected `{expected}`)" if verdict.status != PASSED
                 else verdict.detail, verdict.problems)


# --- the report -------------------------------------------------------------------------------------------


def render_report(result: str, checks: list[Check], *, model: str, url: str, protocol: str) -> str:
    """Markdown for the PR comment. Event- and server-derived text never lands outside code spans/blocks."""
    lines = [
        f"### Smoke test {ICONS[result]} {result}",
        "",
        f"Model {_code(model)}, protocol {protocol}: `POST {_plain(url)}`",
        "",
        "| Check | Status | Details |",
        "| --- | --- | --- |",
    ]
    lines += [f"| {_cell(c.name)} | {ICONS[c.status]} {c.status} | {_cell(c.detail)} |" for c in checks]
    problems = [p for c in checks for p in c.problems]
    if problems:
        shown = problems[:MAX_PROBLEMS]
        if len(problems) > MAX_PROBLEMS:
            shown.append(f"... and {len(problems) - MAX_PROBLEMS} more")
        lines += ["", "**Problems**", "", "```text"]
        lines += [_plain(p)[:400].replace("```", "'''") for p in shown]
        lines += ["```"]
    return "\n".join(lines) + "\n"


def _plain(text: str) -> str:
    return " ".join(str(text).split()).replace("`", "'")


def _code(text: str) -> str:
    return f"`{_plain(text)}`"


def _cell(text: str) -> str:
    """A table cell of our own wording (names and paths in it are already code spans)."""
    return " ".join(text.split()).replace("|", "\\|")
