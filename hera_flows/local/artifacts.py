"""Input and output artifacts of container and containerSet templates, against a real S3-compatible server.

What Argo's init and wait containers do around a pod, done around the local processes (read from
argoproj/argo-workflows ``workflow/executor/executor.go@000d4883`` and ``workflow/artifacts/s3/s3.go@b53d1a30``;
docs/upstream-facts.md#workflows-artifacts):

- **The repository** is the workflow's ``artifactRepositoryRef`` (a key of a ConfigMap in the workflow's
  namespace), else the namespace's ConfigMap ``artifact-repositories`` with the key its annotation
  ``workflows.argoproj.io/default-artifact-repository`` names (``artifactrepositories.go``). Locally the ConfigMaps
  are those generated next to the templates (or given to the run); the credentials are the Secrets the repository
  names, from the run's secrets file (Argo mounts them into init and wait). S3 repositories only.
- **Inputs** (before the first container starts): the task's ``from`` argument or the template's key-only ``s3.key``;
  an object is downloaded as a file, a key that is no object but a prefix as a folder of its objects; a missing
  one fails the pod ("required artifact not supplied" / not found) unless ``optional``. A gzip'd tarball is
  unpacked unless ``archive: none``. A path on a volume of ``main`` lands in that volume; any other gets its own
  folder, mounted in ``main`` only.
- **Outputs** (after ``main`` succeeded): the path from ``main``'s volumes, stored at the artifact's ``s3.key`` (or
  the repository's ``keyFormat`` + ``/<name>.tgz``), a folder as one object per file with ``archive: none``, else
  one tar.gz. A missing path fails the pod unless ``optional``.

Every byte moved is counted (``ArtifactStore.stats``) for the benchmarks.
"""

from __future__ import annotations

import io
import tarfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hera_flows.local.errors import RunError

DEFAULT_CONFIG_MAP = "artifact-repositories"
DEFAULT_KEY_ANNOTATION = "workflows.argoproj.io/default-artifact-repository"


@dataclass(frozen=True)
class Repository:
    """An S3 artifact repository as Argo's ConfigMap describes it."""

    endpoint: str
    bucket: str
    region: str = ""
    insecure: bool = False
    access_key: tuple[str, str] | None = None  # (Secret name, key)
    secret_key: tuple[str, str] | None = None
    key_format: str = "{{workflow.name}}/{{pod.name}}"
    source: str = ""

    @classmethod
    def parse(cls, text: str, source: str) -> Repository:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise RunError(f"artifact repository {source}: not YAML: {' '.join(str(exc).split())}") from None
        s3 = data.get("s3") if isinstance(data, dict) else None
        if not isinstance(s3, dict):
            kinds = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
            raise RunError(f"artifact repository {source} is not an s3 repository ({kinds}); the local runner "
                           "supports S3-compatible repositories only")
        for needed in ("endpoint", "bucket"):
            if not s3.get(needed):
                raise RunError(f"artifact repository {source} has no s3.{needed}")

        def ref(name: str) -> tuple[str, str] | None:
            value = s3.get(name)
            return (str(value["name"]), str(value["key"])) if isinstance(value, dict) else None

        return cls(endpoint=str(s3["endpoint"]), bucket=str(s3["bucket"]), region=str(s3.get("region") or ""),
                   insecure=bool(s3.get("insecure")), access_key=ref("accessKeySecret"),
                   secret_key=ref("secretKeySecret"), key_format=str(s3.get("keyFormat") or cls.key_format),
                   source=source)


class Repositories:
    """The artifact-repository ConfigMaps a run can resolve (by namespace and name)."""

    def __init__(self, config_maps: list[dict[str, Any]]) -> None:
        self.config_maps = {(str(c["metadata"].get("namespace", "")), str(c["metadata"]["name"])): c
                            for c in config_maps}

    def resolve(self, ref: dict[str, Any] | None, namespace: str) -> Repository:
        """Argo's resolution: the reference in the workflow's namespace; no reference: ``artifact-repositories``
        there with the key of its default annotation."""
        name = str((ref or {}).get("configMap") or DEFAULT_CONFIG_MAP)
        found = self.config_maps.get((namespace, name)) or self.config_maps.get(("", name))
        if found is None:
            what = f"artifactRepositoryRef {name}" if ref else f"no artifactRepositoryRef and no ConfigMap {name}"
            raise RunError(f"{what} in namespace {namespace}: no artifact repository for this run (generate one "
                           "with `artifacts.repository.s3` in the configuration, or give its ConfigMap to the run)")
        key = (ref or {}).get("key") or ((found["metadata"].get("annotations") or {}).get(DEFAULT_KEY_ANNOTATION))
        data = found.get("data") or {}
        if not key or key not in data:
            raise RunError(f"ConfigMap {name} has no artifact repository key {key!r} (it has: {', '.join(data)})")
        return Repository.parse(str(data[key]), f"{name}/{key}")


def load_config_maps(paths: list[Path]) -> list[dict[str, Any]]:
    """Every ConfigMap in the YAML files below ``paths`` (files or folders)."""
    found: list[dict[str, Any]] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*.y*ml") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            try:
                docs = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
            except (OSError, yaml.YAMLError):
                continue
            found += [d for d in docs if isinstance(d, dict) and d.get("kind") == "ConfigMap"
                      and isinstance(d.get("metadata"), dict) and d["metadata"].get("name")]
    return found


@dataclass
class Stats:
    """What moved between the run and the object store."""

    uploaded_bytes: int = 0
    downloaded_bytes: int = 0
    objects_written: int = 0
    objects_read: int = 0
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


class ArtifactStore:
    """One run's repository with a client built from the run's secrets."""

    def __init__(self, repository: Repository, secrets: dict[str, dict[str, str]]) -> None:
        self.repository = repository
        self.stats = Stats()
        self._secrets = secrets
        self._client: Any = None
        self._lock = threading.Lock()
        self.saved: list[str] = []  # every output key, in the order stored (what Argo's artifact GC goes through)

    def _secret(self, ref: tuple[str, str] | None, what: str) -> str | None:
        if ref is None:
            return None
        value = (self._secrets.get(ref[0]) or {}).get(ref[1])
        if value is None:
            raise RunError(f"artifact repository {self.repository.source}: {what} secret {ref[0]!r} key {ref[1]!r} "
                           "is missing (in a cluster the init and wait containers would not start); add it to "
                           "--secrets")
        return value

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config as BotoConfig

                repo = self.repository
                scheme = "http" if repo.insecure else "https"
                self._client = boto3.client(
                    "s3", endpoint_url=f"{scheme}://{repo.endpoint}", region_name=repo.region or "us-east-1",
                    aws_access_key_id=self._secret(repo.access_key, "access key"),
                    aws_secret_access_key=self._secret(repo.secret_key, "secret key"),
                    config=BotoConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 5},
                                      max_pool_connections=16))
            return self._client

    # -- outputs -------------------------------------------------------------------------------------------
    def save(self, local: Path, key: str, *, archive: bool) -> None:
        """Store ``local`` at ``key``: a folder as one object per file (or one tar.gz when ``archive``)."""
        with self._lock:
            self.saved.append(key)
        if archive:
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
                tar.add(local, arcname=local.name)
            self._put(key, buffer.getvalue())
        elif local.is_dir():
            for path in sorted(p for p in local.rglob("*") if p.is_file() and not p.is_symlink()):
                self._put(f"{key.rstrip('/')}/{path.relative_to(local).as_posix()}", path.read_bytes())
        else:
            self._put(key, local.read_bytes())

    def delete(self, key: str) -> int:
        """Delete an output as Argo's artifact GC does (its S3 driver's Delete): the one object named by ``key``,
        or, only for a key ending with ``/``, every object under it. A folder saved under a key without the ``/``
        keeps its objects (docs/upstream-facts.md#workflows-artifacts). Returns the objects deleted."""
        from botocore.exceptions import ClientError

        client, bucket = self.client, self.repository.bucket
        if not key.endswith("/"):
            try:
                client.head_object(Bucket=bucket, Key=key)
                found = 1
            except ClientError:
                found = 0
            client.delete_object(Bucket=bucket, Key=key)  # S3 answers success for a key that is not there
            self.stats.add(requests=2)
            return found
        keys: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            keys += [o["Key"] for o in page.get("Contents", [])]
        for object_key in keys:
            client.delete_object(Bucket=bucket, Key=object_key)
        self.stats.add(requests=len(keys) + 1)
        return len(keys)

    def _put(self, key: str, body: bytes) -> None:
        self.client.put_object(Bucket=self.repository.bucket, Key=key, Body=body)
        self.stats.add(uploaded_bytes=len(body), objects_written=1, requests=1)

    # -- inputs --------------------------------------------------------------------------------------------
    def load(self, key: str, dest: Path, *, archive_none: bool) -> bool:
        """Download ``key`` to ``dest`` as Argo's S3 driver does: the object, else every object under the prefix
        ``key/`` as a folder; False when neither exists."""
        from botocore.exceptions import ClientError

        client, bucket = self.client, self.repository.bucket
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            self.stats.add(downloaded_bytes=len(body), objects_read=1, requests=1)
        except ClientError as exc:
            self.stats.add(requests=1)
            if exc.response.get("Error", {}).get("Code") not in ("NoSuchKey", "404"):
                raise RunError(f"artifact {key}: {exc}") from None
            return self._load_prefix(key, dest)
        if not archive_none and _is_tar_gz(body):
            _untar(body, dest)
        else:
            dest.write_bytes(body)
        return True

    def _load_prefix(self, key: str, dest: Path) -> bool:
        prefix = key.rstrip("/") + "/"
        keys: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.repository.bucket,
                                                                          Prefix=prefix):
            self.stats.add(requests=1)
            keys += [o["Key"] for o in page.get("Contents", []) if not o["Key"].endswith("/")]
        if not keys:
            return False
        dest.mkdir(parents=True, exist_ok=True)
        for object_key in keys:
            target = dest / object_key[len(prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            body = self.client.get_object(Bucket=self.repository.bucket, Key=object_key)["Body"].read()
            self.stats.add(downloaded_bytes=len(body), objects_read=1, requests=1)
            target.write_bytes(body)
        return True


def _is_tar_gz(body: bytes) -> bool:
    if body[:2] != b"\x1f\x8b":
        return False
    try:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            tar.getmembers()
        return True
    except (tarfile.TarError, OSError, EOFError):
        return False


def _untar(body: bytes, dest: Path) -> None:
    """Unpack as Argo's ``untar`` does: a tarball with one top-level entry becomes ``dest`` itself (the file or
    folder the producer archived under its own name), anything else a folder ``dest`` holding the entries."""
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory(dir=dest.parent, prefix=".untar-") as scratch:
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            tar.extractall(scratch, filter="data")
        entries = list(Path(scratch).iterdir())
        if len(entries) == 1:
            shutil.move(str(entries[0]), dest)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            for entry in entries:
                shutil.move(str(entry), dest / entry.name)


def archived(artifact: dict[str, Any]) -> bool:
    """Whether an output artifact is stored as one tar.gz (Argo's default) rather than as it is."""
    strategy = artifact.get("archive")
    return not (isinstance(strategy, dict) and "none" in strategy)
