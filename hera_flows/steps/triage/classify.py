"""`hera-flows step triage-classify`: put a failure into one class, with the evidence lines that decided it.

The rule table below is the documentation (docs/patterns/failure-triage.md prints the same table). Each rule
matches one *source* of evidence with a regular expression:

- ``status``: what Kubernetes and Argo said — node and workflow messages, container termination and waiting
  reasons, Warning events, unschedulable conditions (the context's ``evidence`` lines);
- ``exception``: the final line (``Type: message``) of the last Python traceback in a failing container's log
  tail (``FileNotFoundError: [Errno 2] ...``, ``numpy._core._exceptions._ArrayMemoryError: Unable to ...``);
- ``log``: any line of a failing container's log tail — consulted only when no ``status`` or ``exception`` rule
  matched, so a harmless warning in a log cannot overrule a traceback.

Classes are tried in ``PRIORITY`` order and the first class with a matching rule wins, so that e.g. an image
that could not be pulled beats the "Step exceeded its deadline" that later overwrote the node message, and a
container the kernel OOM-killed beats the traceback it left behind. Nothing matching is ``unknown``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from hera_flows.steps import naming
from hera_flows.steps.common import StepError, log, parse_json
from hera_flows.steps.contract import Step

CATEGORIES = ("oom", "image-pull", "data-missing", "code-bug", "gpu-unschedulable", "timeout", "infrastructure",
              "unknown")
PRIORITY = ("image-pull", "gpu-unschedulable", "oom", "timeout", "infrastructure", "data-missing", "code-bug")
MAX_EVIDENCE = 12
BRANCH_PREFIX = "failure-triage"


@dataclass(frozen=True)
class Rule:
    category: str
    source: str  # status | exception | log
    pattern: str
    means: str

    def matches(self, text: str) -> bool:
        return re.search(self.pattern, text) is not None


RULES: tuple[Rule, ...] = (
    Rule("image-pull", "status", r"\b(ImagePullBackOff|ErrImagePull|InvalidImageName)\b|Failed to pull image",
         "the container image cannot be pulled (wrong tag or digest, missing image, registry credentials)"),
    Rule("gpu-unschedulable", "status",
         r"Insufficient (nvidia\.com|amd\.com)/gpu|"
         r"(nvidia\.com|amd\.com)/gpu.*(Unschedulable|didn't match|untolerated)",
         "no node can offer the requested GPUs"),
    Rule("oom", "status", r"\bOOMKilled\b",
         "the kernel killed the container at its memory limit"),
    Rule("oom", "exception", r"^([\w.]+\.)?(MemoryError|_ArrayMemoryError)(:|$)",
         "Python could not allocate memory"),
    Rule("timeout", "status",
         r"exceeded its deadline|longer than the specified deadline|Max duration limit exceeded|\bDeadlineExceeded\b",
         "a step or the workflow ran past its activeDeadlineSeconds"),
    Rule("infrastructure", "status",
         r"\b(Evicted|NodeLost|NodeNotReady|NodeShutdown|Preempted|Preempting)\b|pod deleted|node .*not ready|"
         r"failed to (create|start) (containerd )?(task|container)|ContainerCannotRun|was low on resource",
         "the node or the cluster failed the pod (eviction, preemption, node loss, runtime error)"),
    Rule("infrastructure", "exception",
         r"^([\w.]+\.)?(ConnectionError|ConnectionResetError|ConnectionRefusedError|ConnectionAbortedError|TimeoutError|"
         r"ReadTimeout|ConnectTimeout|ReadTimeoutError|ConnectTimeoutError|EndpointConnectionError|"
         r"RemoteDisconnected|ProtocolError|ServiceUnavailable|gaierror|BrokenPipeError)(:|$)",
         "a network dependency (object store, API, database) was unreachable: usually a flake"),
    Rule("data-missing", "exception",
         r"^([\w.]+\.)?(FileNotFoundError|NoSuchKey|NoSuchBucket|EmptyDataError|PathNotFoundError|NotFound)(:|$)|"
         r"^([\w.]+\.)?AnalysisException: \[PATH_NOT_FOUND\]|The specified key does not exist",
         "an input file, object or table does not exist"),
    Rule("data-missing", "log",
         r"No such file or directory|The specified key does not exist|\bNoSuchKey\b|\bPATH_NOT_FOUND\b|"
         r"Path does not exist",
         "an input file, object or table does not exist"),
    Rule("code-bug", "exception", r"^[A-Za-z_][\w.]*(:|$)",
         "the pipeline's code raised an exception (any other Python exception)"),
)

# What the issue suggests when no clear-cut fix applies.
REMEDIATIONS: dict[str, str] = {
    "oom": "Raise the step's memory limit, or reduce what it holds in memory (batch size, chunked reading, "
           "dtype downcasting). A MemoryError inside Python can also mean the node itself is too small.",
    "image-pull": "Check the image reference (tag or digest typo, image not pushed, retention policy) and the "
                  "registry credentials (imagePullSecrets). Pin a known-good digest.",
    "data-missing": "An input the pipeline reads does not exist. Check the upstream job that produces it, the "
                    "partition or date the run asked for, and the path in the pipeline parameters.",
    "code-bug": "The pipeline code raised an exception. Reproduce it with the run's parameters and fix the code; "
                "the traceback is below.",
    "gpu-unschedulable": "No node offered the GPUs the step requests. Check the GPU node pool (autoscaler limits, "
                         "quota), the requested count and the nodeSelector/tolerations.",
    "timeout": "The step ran past its deadline. Check for a hang (stuck download, deadlock) before raising "
               "activeDeadlineSeconds.",
    "infrastructure": "The failure came from the cluster or a network dependency, not the pipeline. A retry usually "
                      "succeeds; add a retryStrategy with backoff so flakes do not fail the run.",
    "unknown": "No rule recognised this failure. Read the evidence and the log tails below.",
}


def final_exception(text: str) -> tuple[str, str] | None:
    """(exception type, final line) of the last Python traceback in ``text``, or None."""
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last):")]
    if not starts:
        return None
    for line in lines[starts[-1] + 1:]:
        if not line.strip() or line[:1] in (" ", "\t"):
            continue
        match = re.match(r"^([A-Za-z_][\w.]*)(:|$)", line)
        if match:
            return match.group(1), line.strip()
        return None
    return None


@dataclass
class Classification:
    category: str
    means: str
    evidence: list[str]
    rules: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {"category": self.category, "means": self.means, "evidence": self.evidence, "rules": self.rules,
                "remediation": REMEDIATIONS[self.category]}


def _sources(context: dict[str, Any]) -> dict[str, list[str]]:
    evidence, pods = context.get("evidence") or [], context.get("pods") or []
    if not isinstance(evidence, list) or not isinstance(pods, list):
        raise StepError("the triage context's 'evidence' and 'pods' must be lists")
    status = [str(line) for line in evidence]
    exceptions: list[str] = []
    logs: list[str] = []
    for pod in pods:
        pod_logs = pod.get("logs") if isinstance(pod, dict) else None
        for container, entry in sorted(pod_logs.items() if isinstance(pod_logs, dict) else []):
            tail = str(entry.get("tail") or "") if isinstance(entry, dict) else ""
            found = final_exception(tail)
            if found:
                exceptions.append(f"{pod.get('step') or pod.get('name')}/{container}: {found[1]}")
            logs += [f"{pod.get('step') or pod.get('name')}/{container}: {line.strip()}"
                     for line in tail.splitlines() if line.strip()]
    return {"status": status, "exception": exceptions, "log": logs}


def classify(context: dict[str, Any]) -> Classification:
    sources = _sources(context)
    for allowed in (("status", "exception"), ("log",)):
        for category in PRIORITY:
            evidence: list[str] = []
            used: list[str] = []
            for rule in (r for r in RULES if r.category == category and r.source in allowed):
                for line in sources[rule.source]:
                    # exception lines are "step/container: Type: message"; the rule sees "Type: message"
                    subject = line.split(": ", 1)[1] if rule.source == "exception" else line
                    if rule.matches(subject) and line not in evidence:
                        evidence.append(line)
                        if rule.means not in used:
                            used.append(rule.means)
            if evidence:
                return Classification(category, used[0], evidence[:MAX_EVIDENCE], used)
    return Classification("unknown", "no rule matched", sources["status"][:MAX_EVIDENCE], [])


CONTRACT = Step(
    name="triage-classify",
    entry="hera_flows.steps.triage.classify:main",
    summary="classify the failure with the documented rule table; name its branch, title and dedupe key",
    inputs=("context",),
    outputs=("context", "category", "title", "branch", "dedupe-key"),
)


def main(argv: list[str]) -> int:
    args = CONTRACT.parse(argv)
    context = parse_json(CONTRACT.param("context", required=True), "the context")
    if context.get("pattern") != "failure_triage":
        raise StepError("the context is not a failure-triage context")
    result = classify(context)
    context["classification"] = result.as_dict()
    workflow = context.get("workflow")
    workflow = workflow if isinstance(workflow, dict) else {}
    subject = workflow.get("template") or workflow.get("name") or "workflow"
    namespace = workflow.get("namespace", "")
    key = naming.dedupe_key(namespace, subject, result.category)
    branch = naming.branch_name(BRANCH_PREFIX, subject, result.category)
    title = f"{subject}: {result.category} in {workflow.get('name', '')}".strip()
    log(f"triage-classify: {result.category} ({result.means}); evidence: {result.evidence[:3]}")
    CONTRACT.write(args.outputs, context=json.dumps(context, sort_keys=True, ensure_ascii=False),
                   category=result.category, title=f"Fix {title}", branch=branch, dedupe_key=key)
    return 0
