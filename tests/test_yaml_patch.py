"""yaml_patch: a value changes, every other byte stays (comments, blank lines, quoting, indentation)."""

from __future__ import annotations

import difflib

import pytest
import yaml

from hera_flows.steps.yaml_patch import (
    MISSING,
    YamlPatchError,
    append_item,
    format_path,
    render_scalar,
    same_data,
    set_value,
    set_values,
)

ISVC = """\
# Fraud detector: online scoring.
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: fraud-detector
  namespace: risk   # production namespace
  annotations:
    serving.kserve.io/deploymentMode: "RawDeployment"
    hera-flows.io/mlflow-version: "6"

spec:
  predictor:
    maxReplicas: 3   # raise before Black Friday
    model:
      modelFormat:
        name: sklearn
      # pinned, see RUNBOOK.md
      runtimeVersion: '1.3.5'
      storageUri: "s3://bucket/models/6"   # v6
      resources:
        requests: {cpu: "500m", memory: 1Gi}
        limits:
          cpu: "1"

  # the transformer is managed by the platform team
  transformer:
    containers:
      - name: feast
        image: feast:0.40
"""


def diff(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed lines, added lines) between two texts."""
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def test_replacing_a_value_changes_only_its_text_span():
    after, changes = set_values(ISVC, [(["spec", "predictor", "model", "storageUri"], "s3://bucket/models/7")])

    assert diff(ISVC, after) == (
        ['      storageUri: "s3://bucket/models/6"   # v6\n'],
        ['      storageUri: "s3://bucket/models/7"   # v6\n'],
    )
    assert [(c.dotted, c.old, c.new) for c in changes] == [
        ("spec.predictor.model.storageUri", "s3://bucket/models/6", "s3://bucket/models/7")
    ]


def test_quoting_style_of_the_replaced_value_is_kept_and_strings_stay_strings():
    after = set_values(ISVC, [
        (["spec", "predictor", "model", "runtimeVersion"], "1.10"),
        (["metadata", "annotations", "hera-flows.io/mlflow-version"], "7"),
        (["spec", "predictor", "maxReplicas"], 6),
    ])[0]

    removed, added = diff(ISVC, after)
    assert added == [
        '    hera-flows.io/mlflow-version: "7"\n',
        "    maxReplicas: 6   # raise before Black Friday\n",
        "      runtimeVersion: '1.10'\n",
    ]
    data = yaml.safe_load(after)
    assert data["spec"]["predictor"]["model"]["runtimeVersion"] == "1.10"
    assert data["metadata"]["annotations"]["hera-flows.io/mlflow-version"] == "7"
    assert data["spec"]["predictor"]["maxReplicas"] == 6


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.10", '"1.10"'),
        ("7", '"7"'),
        ("yes", '"yes"'),
        ("null", '"null"'),
        ("0o17", '"0o17"'),
        ("1e3", '"1e3"'),
        ("1.4.0", "1.4.0"),
        ("2024-01-01", '"2024-01-01"'),
        ("", '""'),
        ("a: b", '"a: b"'),
        ("# not a comment", '"# not a comment"'),
        ("s3://bucket/models/7", "s3://bucket/models/7"),
        ("NVIDIA-A100-SXM4-80GB", "NVIDIA-A100-SXM4-80GB"),
        ("line\nbreak", '"line\\nbreak"'),
        (7, "7"),
        (True, "true"),
        (None, "null"),
        (0.5, "0.5"),
        (1e20, "1.0e+20"),
    ],
)
def test_rendered_scalars_read_back_as_the_same_value(value, expected):
    rendered = render_scalar(value, flow=False)
    assert rendered == expected
    assert same_data(yaml.safe_load(f"key: {rendered}\n")["key"], value)


@pytest.mark.parametrize("value", ["a,b", "{x}", "[0]", "plain", "a: b", "x#y", "ünïcödé", "\u2028", "tab\there"])
def test_values_in_flow_mappings_read_back_unchanged(value):
    text = "resources:\n  requests: {cpu: 1, memory: 1Gi}\n"
    after = set_values(text, [(["resources", "requests", "cpu"], value), (["resources", "requests", "new"], value)])[0]

    assert yaml.safe_load(after) == {"resources": {"requests": {"cpu": value, "memory": "1Gi", "new": value}}}
    assert after.count("\n") == text.count("\n")  # still one flow line


def test_missing_keys_and_nested_mappings_get_the_indentation_of_their_siblings():
    text = """\
spec:
    predictor:
        model:
            storageUri: s3://a   # four-space file
        # trailing comment stays put
"""
    after = set_values(text, [
        (["spec", "predictor", "minReplicas"], 2),
        (["spec", "predictor", "nodeSelector", "nvidia.com/gpu.product"], "NVIDIA-A100"),
        (["metadata", "annotations", "hera-flows.io/mlflow-version"], "7"),
    ])[0]

    assert after == """\
spec:
    predictor:
        model:
            storageUri: s3://a   # four-space file
        minReplicas: 2
        nodeSelector:
            nvidia.com/gpu.product: NVIDIA-A100
        # trailing comment stays put
metadata:
    annotations:
        hera-flows.io/mlflow-version: "7"
"""


def test_keys_are_added_inside_flow_mappings_including_empty_ones():
    text = "spec:\n  resources:\n    requests: {cpu: \"500m\", memory: 1Gi}   # small\n    limits: {}\n"
    after = set_values(text, [
        (["spec", "resources", "requests", "nvidia.com/gpu"], 1),
        (["spec", "resources", "requests", "cpu"], "2"),
        (["spec", "resources", "limits", "nvidia.com/gpu"], 1),
        (["spec", "resources", "limits", "extra", "deep"], "x"),
    ])[0]

    assert after == (
        "spec:\n  resources:\n    requests: {cpu: \"2\", memory: 1Gi, nvidia.com/gpu: 1}   # small\n"
        "    limits: {nvidia.com/gpu: 1, extra: {deep: x}}\n"
    )


def test_a_null_value_becomes_a_mapping_and_keeps_its_comment():
    text = "spec:\n  nodeSelector:   # none yet\n  tolerations: ~\n  affinity: null\nstatus:\n"
    after = set_values(text, [
        (["spec", "nodeSelector", "gpu"], "a100"),
        (["spec", "affinity", "x", "y"], 1),
        (["status", "phase"], "Ready"),
    ])[0]

    assert after == (
        "spec:\n  nodeSelector:   # none yet\n    gpu: a100\n  tolerations: ~\n  affinity:\n    x:\n      y: 1\n"
        "status:\n  phase: Ready\n"
    )


def test_only_the_chosen_document_of_a_multi_document_file_changes():
    doc = "apiVersion: v1\nkind: {kind}\nmetadata:\n  name: fraud   # same name in every document\n"
    text = (
        "---\n" + doc.replace("{kind}", "Service")
        + "---\n# the model\n" + doc.replace("{kind}", "InferenceService")
        + "...\n---\n" + doc.replace("{kind}", "ConfigMap")
    )
    after = set_values(text, [(["metadata", "name"], "fraud-v2"), (["metadata", "labels", "app"], "fraud")],
                       document=1)[0]

    removed, added = diff(text, after)
    assert removed == ["  name: fraud   # same name in every document\n"]
    assert added == ["  name: fraud-v2   # same name in every document\n", "  labels:\n", "    app: fraud\n"]
    assert after.index("fraud-v2") > after.index("kind: InferenceService") > after.index("kind: Service")
    docs = list(yaml.safe_load_all(after))
    assert [d["metadata"]["name"] for d in docs] == ["fraud", "fraud-v2", "fraud"]


def test_setting_a_value_that_is_already_there_is_a_no_op():
    edits = [(["spec", "predictor", "model", "storageUri"], "s3://bucket/models/7"),
             (["spec", "predictor", "nodeSelector", "gpu"], "a100")]
    once, changes = set_values(ISVC, edits)
    twice, again = set_values(once, edits)

    assert len(changes) == 2 and changes[1].old is MISSING
    assert twice == once and again == []
    # A value already in place keeps its original quoting, even where this module would quote differently.
    assert set_value("v: '6'\n", ["v"], "6") == "v: '6'\n"


def test_crlf_line_endings_and_a_missing_final_newline_are_kept():
    text = "a:\r\n  b: 1 # one\r\n  c: 2"
    after = set_values(text, [(["a", "b"], 5), (["a", "d"], "x")])[0]
    assert after == "a:\r\n  b: 5 # one\r\n  c: 2\r\n  d: x\r\n"


def test_block_scalars_sequences_and_anchors():
    text = "note: |\n  keep\n  this\n\nlist:\n  - name: a\n    image: old   # c\n  - name: b\nbase: &base x\n"
    after = set_values(text, [
        (["note"], "new"),
        (["list", 0, "image"], "new:1"),
        (["list", 1, "image"], "img"),
        (["base"], "y"),
    ])[0]

    assert after == (
        "note: new\n\nlist:\n  - name: a\n    image: new:1   # c\n  - name: b\n    image: img\nbase: &base y\n"
    )


def test_duplicate_keys_edit_the_occurrence_the_loader_keeps():
    assert set_value("a: 1\nb: 2\na: 3\n", ["a"], 9) == "a: 1\nb: 2\na: 9\n"


def test_edits_that_would_change_other_data_are_refused():
    aliased = "x: &v old\ny: *v\n"
    with pytest.raises(YamlPatchError, match="would change other data"):
        set_value(aliased, ["x"], "new")
    with pytest.raises(YamlPatchError, match="alias"):
        set_value(aliased, ["y"], "new")


@pytest.mark.parametrize(
    ("text", "path", "document", "message"),
    [
        ("a: 1\n", ["a", "b"], 0, "scalar"),
        ("a: [1]\n", ["a"], 0, "not a scalar"),
        ("a: [1]\n", ["a", 3], 0, "does not exist"),
        ("a: 1\n", ["a"], 2, "document 2 does not exist"),
        ("a: [1\n", ["a"], 0, "not valid YAML"),
        ("- 1\n", ["a"], 0, "not a mapping"),
    ],
)
def test_impossible_edits_raise_a_clear_error(text, path, document, message):
    with pytest.raises(YamlPatchError, match=message):
        set_value(text, path, "x", document=document)


def test_paths_are_formatted_for_humans():
    assert format_path(["spec", "predictor", "nodeSelector", "nvidia.com/gpu.product"]) == \
        'spec.predictor.nodeSelector["nvidia.com/gpu.product"]'
    assert format_path(["containers", 0, "image"]) == "containers[0].image"


PIPELINE = """\
spec:
  templates:
    - name: train   # the step
      container:
        image: x
        resources:
          limits:
            memory: 8Gi   # raised in March
      # volumes go here
    - name: other
      volumes:
      - name: cache
        emptyDir: {}
      container:
        volumeMounts: []   # none yet
"""
SHM = {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}}


def test_an_item_appended_to_a_missing_sequence_creates_it_and_keeps_every_other_byte():
    new = append_item(PIPELINE, ["spec", "templates", 0, "volumes"], SHM)
    assert yaml.safe_load(new)["spec"]["templates"][0]["volumes"] == [SHM]
    added = [line for line in difflib.ndiff(PIPELINE.splitlines(), new.splitlines()) if line[:2] in ("+ ", "- ")]
    assert added == ["+       volumes:", "+         - name: dshm", "+           emptyDir:",
                     "+             medium: Memory", "+             sizeLimit: 1Gi"]
    assert new.index("volumes:\n        - name: dshm") < new.index("# volumes go here")


def test_an_item_appended_to_an_existing_sequence_takes_its_dash_column():
    new = append_item(PIPELINE, ["spec", "templates", 1, "volumes"], SHM)
    assert yaml.safe_load(new)["spec"]["templates"][1]["volumes"] == [{"name": "cache", "emptyDir": {}}, SHM]
    assert "        emptyDir: {}\n      - name: dshm\n        emptyDir:\n" in new


def test_an_empty_flow_sequence_becomes_a_block_sequence_and_keeps_its_comment():
    mount = {"name": "dshm", "mountPath": "/dev/shm"}
    new = append_item(PIPELINE, ["spec", "templates", 1, "container", "volumeMounts"], mount)
    assert yaml.safe_load(new)["spec"]["templates"][1]["container"]["volumeMounts"] == [mount]
    assert "volumeMounts:   # none yet\n          - name: dshm\n            mountPath: /dev/shm\n" in new


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("a: [1, 2]\n", ["a"], "not a block sequence"),
        ("a: 1\n", ["a"], "not a sequence"),
        ("a: 1\n", ["b", "c"], "not a mapping"),
        ("a: {x: 1}\n", ["a", "y"], "not a block mapping"),
        ("- 1\n", [0], "ends in a mapping key"),
    ],
)
def test_appends_the_editor_cannot_make_safely_raise_a_clear_error(text, path, message):
    with pytest.raises(YamlPatchError, match=message):
        append_item(text, path, {"name": "x"})
# --- blocks, deletions and documents (canary steps) --------------------------------------------------------------

BASE = """\
# owned by the platform team
spec:
  predictor:
    minReplicas: 1  # warm
    model:
      storageUri: s3://a
  # trailing comment of spec
  other: 2
"""


def test_insert_block_adds_a_list_at_the_siblings_indentation_and_delete_key_restores_the_bytes() -> None:
    from hera_flows.steps.yaml_patch import delete_key, insert_block

    value = [{"trafficPercent": 5, "predictor": {"model": {"storageUri": "s3://b"}}}]
    added = insert_block(BASE, ["spec", "canary"], value)
    assert yaml.safe_load(added)["spec"]["canary"] == value
    assert added.startswith(BASE)  # nothing before it moved
    assert "\n  canary:\n  - trafficPercent: 5\n" in added
    assert delete_key(added, ["spec", "canary"]) == BASE
    assert delete_key(BASE, ["spec", "absent"]) == BASE


def test_delete_key_takes_the_nested_comments_of_the_value_with_it() -> None:
    from hera_flows.steps.yaml_patch import delete_key

    text = "a:\n  b: 1\n  c:\n    d: 2  # inner\n    # belongs to c\n  e: 3\n"
    assert delete_key(text, ["a", "c"]) == "a:\n  b: 1\n  e: 3\n"


def test_refusals_are_clear() -> None:
    from hera_flows.steps.yaml_patch import YamlPatchError, delete_key, insert_block

    with pytest.raises(YamlPatchError, match="exists already"):
        insert_block(BASE, ["spec", "other"], [1])
    with pytest.raises(YamlPatchError, match="with other keys"):
        delete_key("a:\n  only: 1\n", ["a", "only"])
    with pytest.raises(YamlPatchError, match="non-empty block mapping"):
        insert_block("a: {b: 1}\n", ["a", "c"], [1])


def test_documents_are_appended_and_removed_keeping_the_others_byte_for_byte() -> None:
    from hera_flows.steps.yaml_patch import append_document, remove_document

    two = append_document(BASE, {"kind": "Experiment", "spec": {"default": "m"}}, comment="added by hera-flows")
    assert list(yaml.safe_load_all(two))[1] == {"kind": "Experiment", "spec": {"default": "m"}}
    assert "---\n# added by hera-flows\nkind: Experiment\n" in two
    three = append_document(two, {"kind": "Model"})
    assert remove_document(three, 1) == append_document(BASE, {"kind": "Model"})
    assert remove_document(remove_document(three, 2), 1) == BASE
    marked = "---\n# first\na: 1\n---\nb: 2\n"
    assert remove_document(marked, 0) == "b: 2\n" and remove_document(marked, 1) == "---\n# first\na: 1\n"
