"""The local runner's artifacts (issue 13 item 4), against a real S3 server (SeaweedFS on 127.0.0.1): output
artifacts of container and containerSet templates stored at their key-only keys (a file, a folder as one object
per file, Argo's default tar.gz), input artifacts from a task's ``from`` and from a key-only prefix (a fan-in of a
``withItems`` fan-out as a folder), optional and missing ones, the repository resolved from
``artifactRepositoryRef`` or the namespace's default ConfigMap with its credentials from the run's Secrets.

The behaviour encoded is Argo's executor (argoproj/argo-workflows workflow/executor/executor.go@000d4883:
loadArtifacts, saveArtifact, stageArchiveFile) and S3 driver (workflow/artifacts/s3/s3.go@b53d1a30: Load falls
back to the key as a directory; PutDirectory stores one object per file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.local.artifacts import Repositories
from hera_flows.local.errors import RunError
from hera_flows.local.runner import LocalRun

pytestmark = pytest.mark.slow
NONE = {"none": {}}
TMP = [{"name": "tmp", "emptyDir": {}}]
TMP_MOUNT = [{"name": "tmp", "mountPath": "/tmp"}]


def _py(code: str) -> dict[str, Any]:
    return {"image": "step", "command": ["python", "-c", code], "volumeMounts": TMP_MOUNT}


PRODUCE = """
import json, os, pathlib
out = pathlib.Path('/tmp/out'.replace('/tmp', os.environ['TMPDIR'], 1))
(out / 'dir' / 'sub').mkdir(parents=True)
(out / 'result.json').write_text(json.dumps({'models': 5000}))
(out / 'dir' / 'a.json').write_text('[1]'); (out / 'dir' / 'sub' / 'b.json').write_text('[2]')
(out / 'packed').mkdir(); (out / 'packed' / 'p.txt').write_text('packed')
"""
FAN = """
import os, pathlib
out = pathlib.Path(os.environ['TMPDIR']) / 'out'; out.mkdir()
(out / 'r.json').write_text('{"item": "%s"}' % os.environ['ITEM'])
"""
CONSUME = """
import json, os, pathlib
tmp = pathlib.Path(os.environ['TMPDIR'])
inputs = tmp / 'inputs'
seen = {
  'result': json.loads((inputs / 'result').read_text()),
  'fan': sorted(p.name + '=' + p.read_text() for p in (inputs / 'fan').iterdir()),
  'packed': (inputs / 'packed' / 'p.txt').read_text(),
  'tree': sorted(str(p.relative_to(inputs / 'tree')) for p in (inputs / 'tree').rglob('*.json')),
  'missing': (inputs / 'missing').exists(),
}
(tmp / 'seen').write_text(json.dumps(seen, sort_keys=True))
"""


def _template(namespace: str = "ml", ref: dict[str, str] | None = None) -> dict[str, Any]:
    key = "runs/{{workflow.name}}"
    spec: dict[str, Any] = {
        "entrypoint": "main",
        "templates": [
            {"name": "main", "dag": {"tasks": [
                {"name": "produce", "template": "produce"},
                {"name": "fan", "template": "fan", "depends": "produce.Succeeded",
                 "withItems": ["a", "b", "c"], "arguments": {"parameters": [{"name": "item", "value": "{{item}}"}]}},
                {"name": "consume", "template": "consume", "depends": "fan.Succeeded",
                 "arguments": {"artifacts": [
                     {"name": "result", "from": "{{tasks.produce.outputs.artifacts.result}}"},
                     {"name": "packed", "from": "{{tasks.produce.outputs.artifacts.packed}}"},
                     {"name": "tree", "from": "{{tasks.produce.outputs.artifacts.tree}}"}]}},
                {"name": "pod", "template": "pod", "depends": "produce.Succeeded",
                 "arguments": {"artifacts": [{"name": "ctx", "from": "{{tasks.produce.outputs.artifacts.result}}"}]}},
            ]}},
            {"name": "produce", "volumes": TMP, "container": _py(PRODUCE), "outputs": {"artifacts": [
                {"name": "result", "path": "/tmp/out/result.json", "archive": NONE,
                 "s3": {"key": f"{key}/produce/result.json"}},
                {"name": "tree", "path": "/tmp/out/dir", "archive": NONE, "s3": {"key": f"{key}/produce/tree"}},
                {"name": "packed", "path": "/tmp/out/packed"},  # Argo's default: one tar.gz at the keyFormat
            ]}},
            {"name": "fan", "volumes": TMP, "inputs": {"parameters": [{"name": "item"}]},
             "container": {**_py(FAN), "env": [{"name": "ITEM", "value": "{{inputs.parameters.item}}"}]},
             "outputs": {"artifacts": [{"name": "r", "path": "/tmp/out/r.json", "archive": NONE,
                                        "s3": {"key": f"{key}/fan/{{{{inputs.parameters.item}}}}.json"}}]}},
            {"name": "consume", "volumes": TMP, "container": _py(CONSUME),
             "inputs": {"artifacts": [
                 {"name": "result", "path": "/tmp/inputs/result", "archive": NONE},
                 {"name": "packed", "path": "/tmp/inputs/packed"},
                 {"name": "tree", "path": "/tmp/inputs/tree", "archive": NONE},
                 {"name": "fan", "path": "/tmp/inputs/fan", "archive": NONE, "s3": {"key": f"{key}/fan"}},
                 {"name": "missing", "path": "/tmp/inputs/missing", "optional": True,
                  "s3": {"key": f"{key}/nothing-here"}}]},
             "outputs": {"parameters": [{"name": "seen", "valueFrom": {"path": "/tmp/seen"}}]}},
            # A containerSet: the input lands on the shared workspace volume, where a container that is not main
            # reads it; main's output artifact is read from that volume (docs/container-set-template.md).
            {"name": "pod", "volumes": [{"name": "workspace", "emptyDir": {}}],
             "inputs": {"artifacts": [{"name": "ctx", "path": "/workspace/in/ctx.json", "archive": NONE}]},
             "containerSet": {
                 "volumeMounts": [{"name": "workspace", "mountPath": "/workspace"}],
                 "containers": [
                     {"name": "prepare", "image": "step", "command": ["python", "-c",
                      "import os,pathlib; w=pathlib.Path(os.environ['W']); "
                      "(w/'out').mkdir(); (w/'out'/'copy.json').write_text((w/'in'/'ctx.json').read_text())"],
                      "env": [{"name": "W", "value": "/workspace"}]},
                     {"name": "main", "image": "step", "dependencies": ["prepare"], "command": ["python", "-c",
                      "import os,pathlib; w=pathlib.Path(os.environ['W']); "
                      "(w/'out'/'main.txt').write_text('main saw ' + (w/'out'/'copy.json').read_text())"],
                      "env": [{"name": "W", "value": "/workspace"}]},
                 ]},
             "outputs": {"artifacts": [{"name": "report", "path": "/workspace/out/main.txt", "archive": NONE,
                                        "s3": {"key": f"{key}/pod/report.txt"}}]}},
        ],
    }
    if ref:
        spec["artifactRepositoryRef"] = ref
    return {"apiVersion": "argoproj.io/v1alpha1", "kind": "WorkflowTemplate",
            "metadata": {"name": "artifacts", "namespace": namespace}, "spec": spec}


def _config_map(server: Any, bucket: str, *, name: str, key: str, default: bool = False) -> dict[str, Any]:
    repo = {"s3": {"endpoint": server.host, "bucket": bucket, "insecure": True,
                   "accessKeySecret": {"name": "s3-creds", "key": "accesskey"},
                   "secretKeySecret": {"name": "s3-creds", "key": "secretkey"},
                   "keyFormat": "defaults/{{workflow.name}}/{{pod.name}}"}}
    metadata: dict[str, Any] = {"name": name, "namespace": "ml"}
    if default:
        metadata["annotations"] = {"workflows.argoproj.io/default-artifact-repository": key}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {key: yaml.safe_dump(repo)}}


def _secrets(server: Any) -> dict[str, dict[str, str]]:
    return {"s3-creds": {"accesskey": server.access_key, "secretkey": server.secret_key}}


def _keys(server: Any, bucket: str) -> set[str]:
    return {o["Key"] for o in server.client().list_objects_v2(Bucket=bucket).get("Contents", [])}


def test_artifacts_flow_between_container_and_container_set_templates(s3_server, s3_bucket, tmp_path: Path) -> None:
    repositories = Repositories([_config_map(s3_server, s3_bucket, name="hera-flows-artifacts", key="s3")])
    run = LocalRun(_template(ref={"configMap": "hera-flows-artifacts", "key": "s3"}), {}, _secrets(s3_server),
                   tmp_path, echo=False, repositories=repositories)
    result = run.execute()
    assert result.phase == "Succeeded", [(t.name, t.message, t.log[-800:]) for t in result.tasks.values()]

    prefix = f"runs/{run.name}"
    keys = _keys(s3_server, s3_bucket)
    assert {f"{prefix}/produce/result.json", f"{prefix}/produce/tree/a.json", f"{prefix}/produce/tree/sub/b.json",
            f"{prefix}/fan/a.json", f"{prefix}/fan/b.json", f"{prefix}/fan/c.json",
            f"{prefix}/pod/report.txt"} <= keys
    packed = [k for k in keys if k.startswith(f"defaults/{run.name}/") and k.endswith("/packed.tgz")]
    assert len(packed) == 1  # no key: the repository's keyFormat and <name>.tgz, as Argo's wait container does
    assert result.tasks["produce"].artifacts["result"] == f"{prefix}/produce/result.json"

    seen = json.loads(result.tasks["consume"].outputs["seen"])
    assert seen == {
        "result": {"models": 5000},
        "fan": ['a.json={"item": "a"}', 'b.json={"item": "b"}', 'c.json={"item": "c"}'],  # the prefix as a folder
        "packed": "packed",  # the tarball unpacked to the artifact's path
        "tree": ["a.json", "sub/b.json"],
        "missing": False,  # optional and not there: skipped, as Argo's init container does
    }
    body = s3_server.client().get_object(Bucket=s3_bucket, Key=f"{prefix}/pod/report.txt")["Body"].read()
    assert body == b'main saw {"models": 5000}'  # prepare (not main) read the input on the shared volume
    store = run.artifact_store()
    assert store.stats.uploaded_bytes > 0 and store.stats.downloaded_bytes > 0


def test_the_namespace_default_repository_is_used_without_a_reference(s3_server, s3_bucket, tmp_path: Path) -> None:
    repositories = Repositories([_config_map(s3_server, s3_bucket, name="artifact-repositories", key="team",
                                             default=True)])
    run = LocalRun(_template(), {}, _secrets(s3_server), tmp_path, echo=False, repositories=repositories)
    assert run.execute().phase == "Succeeded"
    assert f"runs/{run.name}/produce/result.json" in _keys(s3_server, s3_bucket)


def test_a_required_input_that_is_not_there_fails_the_pod(s3_server, s3_bucket, tmp_path: Path) -> None:
    template = _template(ref={"configMap": "cm", "key": "s3"})
    consume = next(t for t in template["spec"]["templates"] if t["name"] == "consume")
    consume["inputs"]["artifacts"][-1].pop("optional")
    run = LocalRun(template, {}, _secrets(s3_server), tmp_path, echo=False,
                   repositories=Repositories([_config_map(s3_server, s3_bucket, name="cm", key="s3")]))
    result = run.execute()
    assert result.phase == "Failed"
    assert result.tasks["consume"].message.startswith("artifact missing failed to load: no object or prefix runs/")


def test_an_output_path_that_was_not_written_fails_the_pod(s3_server, s3_bucket, tmp_path: Path) -> None:
    template = _template(ref={"configMap": "cm", "key": "s3"})
    produce = next(t for t in template["spec"]["templates"] if t["name"] == "produce")
    produce["outputs"]["artifacts"].append({"name": "late", "path": "/tmp/out/never.json", "archive": NONE,
                                            "s3": {"key": "x/never.json"}})
    run = LocalRun(template, {}, _secrets(s3_server), tmp_path, echo=False,
                   repositories=Repositories([_config_map(s3_server, s3_bucket, name="cm", key="s3")]))
    result = run.execute()
    assert result.tasks["produce"].phase == "Failed"
    assert result.tasks["produce"].message == "output artifact late: /tmp/out/never.json no such file or directory"
    assert result.tasks["consume"].phase == "Omitted"


def test_no_repository_and_missing_credentials_are_one_clear_line(s3_server, s3_bucket, tmp_path: Path) -> None:
    run = LocalRun(_template(ref={"configMap": "absent", "key": "s3"}), {}, {}, tmp_path / "a", echo=False,
                   repositories=Repositories([]))
    with pytest.raises(RunError, match="artifactRepositoryRef absent in namespace ml: no artifact repository"):
        run.execute()
    run = LocalRun(_template(ref={"configMap": "cm", "key": "s3"}), {}, {}, tmp_path / "b", echo=False,
                   repositories=Repositories([_config_map(s3_server, s3_bucket, name="cm", key="s3")]))
    with pytest.raises(RunError, match="access key secret 's3-creds' key 'accesskey' is missing"):
        run.execute()


@pytest.mark.parametrize("folder_key_slash", [False, True])
def test_deleting_the_workflow_deletes_its_outputs_as_argos_artifact_gc_does(
    s3_server, s3_bucket, tmp_path: Path, folder_key_slash: bool,  # noqa: ANN001
) -> None:
    """Argo's GC deletes the object an output's key names; a folder's objects only when its key ends with "/"
    (workflow/artifacts/s3/s3.go Delete). The run stands in for the controller: same keys, same semantics."""
    template = _template(ref={"configMap": "hera-flows-artifacts", "key": "s3"})
    template["spec"]["artifactGC"] = {"strategy": "OnWorkflowDeletion", "serviceAccountName": "gc"}
    if folder_key_slash:
        tree = next(a for a in template["spec"]["templates"][1]["outputs"]["artifacts"] if a["name"] == "tree")
        tree["s3"]["key"] += "/"
    repositories = Repositories([_config_map(s3_server, s3_bucket, name="hera-flows-artifacts", key="s3")])
    run = LocalRun(template, {}, _secrets(s3_server), tmp_path, echo=False, repositories=repositories)
    result = run.execute()
    assert result.phase == "Succeeded" and result.delete_artifacts is not None
    prefix = f"runs/{run.name}/"
    before = {k for k in _keys(s3_server, s3_bucket) if k.startswith(prefix) or k.startswith(f"defaults/{run.name}/")}
    deleted = result.delete_artifacts()
    left = {k for k in _keys(s3_server, s3_bucket) if k in before}
    tree = {f"{prefix}produce/tree/a.json", f"{prefix}produce/tree/sub/b.json"}
    assert left == (set() if folder_key_slash else tree)
    assert deleted == len(before - left)
    assert result.delete_artifacts() == 0  # a second pass finds nothing


def test_without_artifact_gc_deleting_the_workflow_leaves_its_outputs(s3_server, s3_bucket, tmp_path: Path) -> None:
    repositories = Repositories([_config_map(s3_server, s3_bucket, name="hera-flows-artifacts", key="s3")])
    never = _template(ref={"configMap": "hera-flows-artifacts", "key": "s3"})
    never["spec"]["artifactGC"] = {"strategy": "Never"}
    for number, template in enumerate([_template(ref={"configMap": "hera-flows-artifacts", "key": "s3"}), never]):
        result = LocalRun(template, {}, _secrets(s3_server), tmp_path / str(number), echo=False,
                          repositories=repositories).execute()
        assert result.phase == "Succeeded" and result.delete_artifacts is None
