"""Offline stand-ins for `kubectl` and `argo`, for tests/test_docs_commands.py (no cluster here).

Each checks what the real tool would check before talking to a cluster, and exits non-zero with one line on
stderr when the command is wrong:

- ``kubectl apply|diff|delete -k DIR``: DIR has a kustomization whose resources exist (recursively) and parse as
  Kubernetes objects (apiVersion, kind, metadata.name); ``-f FILE|DIR|-`` the same for files / ``*.yaml`` in a
  folder / stdin; ``kubectl kustomize DIR`` likewise; ``--prune`` needs ``-l`` and valid ``--prune-allowlist``
  entries (group/version/Kind);
- ``kubectl create namespace NAME``, ``create secret generic NAME --from-literal=k=v...``, ``create secret
  docker-registry NAME --docker-server= --docker-username= --docker-password=``, ``create priorityclass NAME
  --value=N``: names are DNS-1123, keys valid Secret keys;
- ``kubectl delete TYPES -n NS -l SELECTOR``;
- ``argo submit --from workflowtemplate/NAME -p k=v...``: NAME is a WorkflowTemplate under
  ``generated/workflowtemplates/`` of the working folder (or one the docs apply from ``examples/``), every ``-p``
  names one of its declared parameters and an ``enum`` holds; ``argo list [-n NS] [-l SELECTOR]``.

Usage: ``python doc_shims.py kubectl ARGS...`` (the test writes one executable per tool that calls this).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
SELECTOR = re.compile(
    r"^!?[A-Za-z0-9./_-]+((=|==|!=)[A-Za-z0-9._-]*)?(,!?[A-Za-z0-9./_-]+((=|==|!=)[A-Za-z0-9._-]*)?)*$"
)


class Wrong(Exception):
    pass


def _objects(text: str, where: str) -> int:
    count = 0
    try:
        docs = list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise Wrong(f"{where}: not YAML: {exc}") from None
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind") \
                or not (doc.get("metadata") or {}).get("name"):
            raise Wrong(f"error validating {where}: an object needs apiVersion, kind and metadata.name")
        count += 1
    return count


def _files(target: str) -> int:
    if target == "-":
        return _objects(sys.stdin.read(), "stdin")
    path = Path(target)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
        if not files:
            raise Wrong(f'error: no objects passed to apply (folder "{target}" has no manifests)')
        return sum(_objects(p.read_text(), str(p)) for p in files)
    if not path.is_file():
        raise Wrong(f'error: the path "{target}" does not exist')
    return _objects(path.read_text(), target)


def _kustomization(folder: str) -> int:
    path = Path(folder)
    found = [path / n for n in ("kustomization.yaml", "kustomization.yml", "Kustomization") if (path / n).is_file()]
    if not found:
        raise Wrong(f"error: unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in "
                    f"directory '{path.resolve()}'")
    spec = yaml.safe_load(found[0].read_text()) or {}
    count = 0
    for resource in spec.get("resources", []):
        target = path / resource
        if target.is_dir():
            count += _kustomization(str(target))
        elif target.is_file():
            count += _objects(target.read_text(), str(target))
        else:
            raise Wrong(f"error: accumulating resources: '{target}' does not exist")
    return count


def _take(args: list[str], *names: str) -> list[str]:
    """Remove every ``NAME VALUE`` / ``NAME=VALUE`` of ``names`` from args; return the values."""
    values, rest, i = [], [], 0
    while i < len(args):
        arg = args[i]
        name, eq, value = arg.partition("=")
        if name in names and eq:
            values.append(value)
        elif arg in names:
            if i + 1 >= len(args):
                raise Wrong(f"error: flag needs an argument: {arg}")
            values.append(args[i + 1])
            i += 1
        else:
            rest.append(arg)
        i += 1
    args[:] = rest
    return values


def kubectl(args: list[str]) -> str:
    namespaces = _take(args, "-n", "--namespace")
    for ns in namespaces:
        if not DNS1123.match(ns):
            raise Wrong(f"error: invalid namespace {ns!r}")
    if not args:
        raise Wrong("kubectl: no command")
    verb, rest = args[0], args[1:]
    if verb in ("apply", "diff", "delete") and ("-k" in rest or "-f" in rest or "--filename" in rest
                                                or "--kustomize" in rest):
        kustomize = _take(rest, "-k", "--kustomize")
        files = _take(rest, "-f", "--filename")
        selectors = _take(rest, "-l", "--selector")
        allow = _take(rest, "--prune-allowlist")
        prune = "--prune" in rest
        rest = [a for a in rest if a != "--prune"]
        if rest:
            raise Wrong(f"kubectl {verb}: unexpected arguments {rest}")
        if kustomize and files:
            raise Wrong("error: only one of -f or -k can be specified")
        if prune and not selectors:
            raise Wrong("error: all resources selected for prune without explicitly passing --all")
        for entry in allow:
            if not re.fullmatch(r"([a-z0-9.-]+/)?v[0-9a-z]+/[A-Z][A-Za-z]+", entry):
                raise Wrong(f"error: invalid --prune-allowlist {entry!r} (group/version/Kind)")
        for selector in selectors:
            if not SELECTOR.match(selector):
                raise Wrong(f"error: invalid label selector {selector!r}")
        total = sum(_kustomization(k) for k in kustomize) + sum(_files(f) for f in files)
        if not total:
            raise Wrong("error: no objects passed to " + verb)
        return f"{total} object(s) checked"
    if verb == "kustomize":
        if len(rest) != 1:
            raise Wrong("kubectl kustomize takes one folder")
        return f"{_kustomization(rest[0])} object(s) checked"
    if verb == "delete":
        selectors = _take(rest, "-l", "--selector")
        if len(rest) != 1 or not selectors or not all(SELECTOR.match(s) for s in selectors):
            raise Wrong(f"kubectl delete: expected TYPES -l SELECTOR, got {rest} {selectors}")
        if not re.fullmatch(r"[a-z]+(,[a-z]+)*", rest[0]):
            raise Wrong(f"kubectl delete: bad resource types {rest[0]!r}")
        return "ok"
    if verb == "create":
        return _create(rest)
    raise Wrong(f"kubectl shim: unsupported command {args!r} (teach tests/support/doc_shims.py or list it as "
                "not runnable in tests/test_docs_commands.py)")


def _create(rest: list[str]) -> str:
    if rest[:1] == ["namespace"] and len(rest) == 2:
        if not DNS1123.match(rest[1]):
            raise Wrong(f"The Namespace {rest[1]!r} is invalid")
        return "namespace ok"
    if rest[:2] == ["secret", "generic"]:
        literals = _take(rest, "--from-literal")
        files = _take(rest, "--from-file")
        if len(rest) != 3 or not DNS1123.match(rest[2]):
            raise Wrong(f"error: exactly one NAME is required, got {rest[2:]}")
        if not literals and not files:
            raise Wrong("error: at least one of --from-literal or --from-file is required")
        for literal in literals:
            key, eq, _value = literal.partition("=")
            if not eq or not SECRET_KEY.match(key):
                raise Wrong(f'error: invalid literal source {literal}, expected key=value')
        return "secret ok"
    if rest[:2] == ["secret", "docker-registry"]:
        server, user, password = (_take(rest, f"--docker-{n}") for n in ("server", "username", "password"))
        if len(rest) != 3 or not DNS1123.match(rest[2]) or not (server and user and password):
            raise Wrong("error: docker-registry needs NAME --docker-server --docker-username --docker-password")
        return "secret ok"
    if rest[:1] == ["priorityclass"]:
        value = _take(rest, "--value")
        _take(rest, "--description", "--global-default", "--preemption-policy")
        if len(rest) != 2 or not DNS1123.match(rest[1]) or not value or not re.fullmatch(r"-?\d+", value[0]):
            raise Wrong("error: priorityclass needs NAME --value=INT")
        return "priorityclass ok"
    raise Wrong(f"kubectl shim: unsupported create {rest!r}")


def argo(args: list[str]) -> str:
    namespaces = _take(args, "-n", "--namespace")
    if any(not DNS1123.match(ns) for ns in namespaces):
        raise Wrong(f"argo: invalid namespace {namespaces}")
    if args[:1] == ["list"]:
        selectors = _take(args, "-l", "--selector")
        if args[1:] or not all(SELECTOR.match(s) for s in selectors):
            raise Wrong(f"argo list: unexpected {args[1:]} {selectors}")
        return "ok"
    if args[:1] != ["submit"]:
        raise Wrong(f"argo shim: unsupported command {args!r}")
    rest = args[1:]
    source = _take(rest, "--from")
    parameters = _take(rest, "-p", "--parameter")
    _take(rest, "--serviceaccount", "--name", "--generate-name", "-o", "--output")
    rest = [a for a in rest if a not in ("--watch", "-w", "--wait", "--log")]
    if rest:
        raise Wrong(f"argo submit: unexpected arguments {rest}")
    if len(source) != 1 or not source[0].startswith("workflowtemplate/"):
        raise Wrong("argo submit: expected --from workflowtemplate/NAME")
    name = source[0].split("/", 1)[1]
    template = _workflow_template(name)
    declared = {p["name"]: p for p in template["spec"].get("arguments", {}).get("parameters", [])}
    for parameter in parameters:
        key, eq, value = parameter.partition("=")
        if not eq:
            raise Wrong(f"argo submit: -p expects KEY=VALUE, got {parameter!r}")
        if key not in declared:
            raise Wrong(f"argo submit: {name} declares no parameter {key!r} (it declares: {', '.join(declared)})")
        enum = declared[key].get("enum")
        if enum and value not in enum:
            raise Wrong(f"argo submit: {key}={value!r} is not one of {enum}")
    return f"would submit {name} with {len(parameters)} parameter(s)"


def _workflow_template(name: str) -> dict:
    """A generated WorkflowTemplate, or one the docs apply from examples/ (e.g. the sample training pipeline)."""
    path = Path("generated") / "workflowtemplates" / f"{name}.yaml"
    if path.is_file():
        return yaml.safe_load(path.read_text())
    for candidate in sorted(Path("examples").glob("*/*.yaml")):
        for doc in yaml.safe_load_all(candidate.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "WorkflowTemplate" and doc["metadata"]["name"] == name:
                return doc
    raise Wrong(f'workflowtemplates.argoproj.io "{name}" not found (not in generated/workflowtemplates/ nor examples/)')


def main(argv: list[str]) -> int:
    tool, args = argv[0], list(argv[1:])
    try:
        print({"kubectl": kubectl, "argo": argo}[tool](args))
    except Wrong as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
