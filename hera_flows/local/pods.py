"""One pod of a container or containerSet template, run as local processes.

Each container's command runs as a local process in the pod's folder: emptyDir volumes become folders, container
paths in path flags and env values are rewritten to them (``rewrite``, ``map_path``), Secret references come from
the run's secrets (``secret``), containerSet containers run in dependency order (``ordered_containers``), and the
output parameters are read from the files the main container wrote. Kept apart from scheduling, which decides when
a pod runs and how often (retries); this module only runs it once.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Protocol

from hera_flows.local.artifacts import ArtifactStore, archived
from hera_flows.local.errors import RunError
from hera_flows.local.outputs import TaskResult, last_line
from hera_flows.local.substitution import input_scope, substitute

# Flags whose value is a container path; other flag values (URLs, repository paths) are never rewritten.
PATH_FLAGS = ("--outputs=", "--workspace=")


class PodContext(Protocol):
    """What running a pod needs from the run (``LocalRun`` provides it)."""

    workdir: Path
    state_dir: Path
    secrets: dict[str, dict[str, str]]
    deadline: float
    echo: bool

    def scope(self) -> dict[str, str]: ...

    def artifact_store(self) -> ArtifactStore: ...


def run_pod(run: PodContext, name: str, template: dict[str, Any], inputs: dict[str, str], attempt: int,
            artifacts: dict[str, str] | None = None) -> TaskResult:
    """Run ``template`` (container or containerSet) once as attempt ``attempt`` of task ``name``, with its input
    artifacts (``artifacts``: the task's arguments, name -> object key) loaded first and its output artifacts
    stored after ``main`` succeeded (hera_flows/local/artifacts.py). A failure carries the pod's exit code in
    ``outputs["__exit_code__"]`` (for the retry strategy)."""
    # a fanned-out task's name holds "(index:item)": the folder keeps to a plain charset, as a pod name does
    pod_dir = run.workdir / "pods" / f"{re.sub(r'[^A-Za-z0-9._-]+', '-', name)}-{attempt}"
    volumes = {v["name"]: pod_dir / "volumes" / v["name"] for v in template.get("volumes", [])}
    for path in volumes.values():
        path.mkdir(parents=True, exist_ok=True)
    pod_name = f"{name}-{attempt}"
    scope = {**run.scope(), **input_scope(inputs), "pod.name": pod_name}
    log_parts: list[str] = []
    if "container" in template:
        containers = [dict(template["container"], name="main")]
        shared_mounts: list[dict[str, Any]] = []
    elif "containerSet" in template:
        containers = ordered_containers(template["containerSet"]["containers"])
        shared_mounts = template["containerSet"].get("volumeMounts", [])
    else:
        return TaskResult(name, "Failed", message="only container and containerSet templates run locally")
    main = next((c for c in containers if c["name"] == "main"), {})
    mounts_of_main = {m["mountPath"]: volumes[m["name"]] for m in [*shared_mounts, *main.get("volumeMounts", [])]}
    problem = load_inputs(run, template, artifacts or {}, scope, pod_dir, mounts_of_main)
    if problem:
        return TaskResult(name, "Failed", outputs={"__exit_code__": "-1"}, message=problem)
    for container in containers:
        mounts = {m["mountPath"]: volumes[m["name"]] for m in [*shared_mounts, *container.get("volumeMounts", [])]}
        if container["name"] == "main":
            mounts = mounts_of_main
        code, log = run_container(run, name, container, scope, mounts)
        log_parts.append(log)
        if code != 0:
            message = last_line(log) or f"container {container['name']} exited with {code}"
            # Argo takes a pod's exit code from its container named main; one that never ran reads as -1
            # (docs/upstream-facts.md#workflows-containerset).
            exit_code = str(code) if container["name"] == "main" else "-1"
            return TaskResult(
                name, "Failed", outputs={"__exit_code__": exit_code}, message=message, log="".join(log_parts)
            )
    outputs: dict[str, str] = {}
    for param in template.get("outputs", {}).get("parameters", []):
        path = param.get("valueFrom", {}).get("path")
        if path is None:
            continue
        local = map_path(path, mounts_of_main)
        if local is not None and local.is_file():
            outputs[param["name"]] = local.read_text(encoding="utf-8")
        elif "default" in param.get("valueFrom", {}):
            outputs[param["name"]] = param["valueFrom"]["default"]
        else:
            return TaskResult(name, "Failed", message=f"output {param['name']} was not written to {path}")
    saved, problem = save_outputs(run, template, scope, mounts_of_main)
    if problem:
        return TaskResult(name, "Failed", message=problem, log="".join(log_parts))
    return TaskResult(name, "Succeeded", outputs=outputs, log="".join(log_parts), artifacts=saved)


def load_inputs(run: PodContext, template: dict[str, Any], arguments: dict[str, str], scope: dict[str, str],
                pod_dir: Path, mounts_of_main: dict[str, Path]) -> str:
    """Download the template's input artifacts before any container starts (Argo's init container); a path on a
    volume of ``main`` lands there, any other path gets a folder of its own mounted in ``main``. Returns the
    problem that fails the pod, or ""."""
    for artifact in template.get("inputs", {}).get("artifacts", []):
        name = artifact["name"]
        key = arguments.get(name) or substitute(str((artifact.get("s3") or {}).get("key") or ""), scope,
                                                 where=f"input artifact {name}")
        if not key:
            if artifact.get("optional"):
                continue
            return f"required artifact '{name}' not supplied"
        local = map_path(artifact["path"], mounts_of_main)
        if local is None:
            local = pod_dir / "artifacts" / name
            mounts_of_main[artifact["path"]] = local
        archive_none = isinstance(artifact.get("archive"), dict) and "none" in artifact["archive"]
        if not run.artifact_store().load(key, local, archive_none=archive_none):
            if artifact.get("optional"):
                continue
            return f"artifact {name} failed to load: no object or prefix {key}"
    return ""


def save_outputs(run: PodContext, template: dict[str, Any], scope: dict[str, str],
                 mounts_of_main: dict[str, Path]) -> tuple[dict[str, str], str]:
    """Store the output artifacts from ``main``'s volumes (Argo's wait container): name -> key, or the problem."""
    saved: dict[str, str] = {}
    for artifact in template.get("outputs", {}).get("artifacts", []):
        name, path = artifact["name"], artifact["path"]
        local = map_path(path, mounts_of_main)
        if local is None or not local.exists():
            if artifact.get("optional"):
                continue
            where = "" if local is not None else " (not on a volume of main: the root filesystem is read-only)"
            return saved, f"output artifact {name}: {path} no such file or directory{where}"
        store = run.artifact_store()
        key = str((artifact.get("s3") or {}).get("key") or "")
        if key:
            key = substitute(key, scope, where=f"output artifact {name}")
        else:
            base = substitute(store.repository.key_format, scope, where="the repository's keyFormat")
            key = f"{base}/{name}.tgz" if archived(artifact) else f"{base}/{Path(path).name}"
        store.save(local, key, archive=archived(artifact))
        saved[name] = key
    return saved, ""


def run_container(
    run: PodContext, task: str, container: dict[str, Any], scope: dict[str, str], mounts: dict[str, Path]
) -> tuple[int, str]:
    """Run one container's command as a local process; return its exit code and log."""
    where = f"task {task} container {container['name']}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "HOME": str(map_path("/tmp", mounts) or run.workdir),
        "TMPDIR": str(map_path("/tmp", mounts) or run.workdir),
        "HERA_FLOWS_STATE_DIR": str(run.state_dir),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    if os.environ.get("KUBECONFIG"):  # steps that read the Kubernetes API (triage) use this cluster locally
        env["KUBECONFIG"] = os.environ["KUBECONFIG"]
    for item in container.get("envFrom", []):
        ref = item.get("secretRef")
        if ref:
            env.update(secret(run.secrets, ref["name"], None, optional=ref.get("optional", False), where=where))
    for item in container.get("env", []):
        if "value" in item:
            env[item["name"]] = substitute(rewrite(item["value"], mounts, bare_paths=True), scope, where=where)
        elif "secretKeyRef" in item.get("valueFrom", {}):
            ref = item["valueFrom"]["secretKeyRef"]
            value = secret(run.secrets, ref["name"], ref["key"], optional=ref.get("optional", False), where=where)
            if value:
                env[item["name"]] = value[ref["key"]]
    command = [substitute(c, scope, where=where) for c in container.get("command", [])]
    args = [substitute(rewrite(a, mounts), scope, where=where) for a in container.get("args", [])]
    if command[:1] == ["hera-flows"]:
        command = [sys.executable, "-m", "hera_flows", *command[1:]]
    elif command[:1] in (["python"], ["python3"]):
        command = [sys.executable, *command[1:]]
    elif command and shutil.which(command[0], path=env["PATH"]) is None:
        return 127, f"{where}: command {command[0]!r} is not available on this machine\n"
    cwd = map_path(container["workingDir"], mounts) if container.get("workingDir") else run.workdir
    remaining = run.deadline - time.monotonic()
    if remaining <= 0:
        return 1, f"{where}: activeDeadlineSeconds exceeded\n"
    try:
        proc = subprocess.run(
            [*command, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=remaining, check=False
        )
    except subprocess.TimeoutExpired:
        return 1, f"{where}: activeDeadlineSeconds exceeded\n"
    log = proc.stdout + proc.stderr
    log_file = run.workdir / "logs" / f"{task}.{container['name']}.log"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("a", encoding="utf-8") as handle:
        handle.write(log)
    if run.echo and log.strip():
        for line in log.rstrip().splitlines()[-15:]:
            print(f"    {container['name']}: {line}", flush=True)
    return proc.returncode, log


def secret(
    secrets: dict[str, dict[str, str]], name: str, key: str | None, *, optional: bool, where: str
) -> dict[str, str]:
    """Secret ``name`` (all its keys, or only ``key``) from the run's secrets; a missing one is a RunError unless
    the reference is optional (then nothing)."""
    data = secrets.get(name)
    if data is None or (key is not None and key not in data):
        if optional:
            return {}
        what = f"secret {name!r}" + (f" key {key!r}" if key else "")
        raise RunError(f"{where}: {what} is missing (in a cluster the pod would not start); add it to --secrets")
    return dict(data) if key is None else {key: data[key]}


def ordered_containers(containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A containerSet's containers in an order that honours their ``dependencies``; a cycle is a RunError."""
    done: list[dict[str, Any]] = []
    names: set[str] = set()
    pending = list(containers)
    while pending:
        ready = [c for c in pending if set(c.get("dependencies", [])) <= names]
        if not ready:
            raise RunError("containerSet dependencies form a cycle")
        for c in ready:
            pending.remove(c)
            done.append(c)
            names.add(c["name"])
    return done


def rewrite(text: str, mounts: dict[str, Path], *, bare_paths: bool = False) -> str:
    """Map a literal container path to the local folder: the value of a path flag (``--outputs=/tmp/outputs``),
    and with ``bare_paths`` (env values) a whole value such as ``/workspace/prompt.md``. Commands are never
    rewritten: a local program path under /tmp must stay what it is."""
    for flag in PATH_FLAGS:
        if text.startswith(flag):
            mapped = map_path(text[len(flag) :], mounts)
            return flag + str(mapped) if mapped is not None else text
    mapped = map_path(text, mounts) if bare_paths and text.startswith("/") else None
    return str(mapped) if mapped is not None else text


def map_path(path: str, mounts: dict[str, Path]) -> Path | None:
    """The local folder of container path ``path`` under ``mounts`` (mount path -> folder), longest mount first."""
    for mount_path in sorted(mounts, key=len, reverse=True):
        if path == mount_path or path.startswith(mount_path + "/"):
            return mounts[mount_path] / path[len(mount_path) :].lstrip("/")
    return None
