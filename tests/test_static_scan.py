"""The checkov gate of `make scan` (docs/security.md, "Static scan"): it fails on a finding, honours the
suppressions our generator emits, and every suppression in the output carries a reason that the docs list.

checkov lives in its own virtualenv (`.venv-checkov`, created by `make scan`, which `make test` runs first);
without it the checkov tests skip, the suppression bookkeeping tests still run.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from hera_flows.blocks.security import checkov_skips
from tests.conftest import ROOT

CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"
OUTPUT_DIRS = ("generated", "eventsources", "sensors")
SKIP_ANNOTATION = re.compile(r"^checkov\.io/skip\d+$")


def _documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (str(path.relative_to(ROOT)), doc)
        for folder in OUTPUT_DIRS
        for path in sorted((ROOT / folder).rglob("*.y*ml"))
        for doc in yaml.safe_load_all(path.read_text(encoding="utf-8"))
        if isinstance(doc, dict)
    ]


def _checkov(folder: Path) -> tuple[int, dict[str, list[tuple[str, str]]]]:
    """Run checkov as `make scan` does; return its exit code and (check id, resource) per result kind."""
    result = subprocess.run(
        [str(CHECKOV), "-d", str(folder), "--framework", "kubernetes", "argo_workflows", "--skip-download",
         "-o", "json"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    reports = json.loads(result.stdout or "[]")
    reports = reports if isinstance(reports, list) else [reports]
    found: dict[str, list[tuple[str, str]]] = {"failed": [], "skipped": [], "passed": []}
    for report in reports:
        for kind in found:
            found[kind] += [(c["check_id"], c["resource"]) for c in report.get("results", {}).get(f"{kind}_checks", [])]
    return result.returncode, found


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov is not installed: run `make scan` once")
def test_checkov_fails_a_broken_copy_and_honours_our_suppressions(tmp_path: Path) -> None:
    template = copy.deepcopy(next(doc for _, doc in _documents() if doc["kind"] == "WorkflowTemplate"))
    template["spec"]["serviceAccountName"] = "default"  # CKV_ARGO_1
    (tmp_path / "workflowtemplate.yaml").write_text(yaml.safe_dump(template, sort_keys=False))
    wide = {"apiGroups": ["*"], "resources": ["*"], "verbs": ["get"]}  # CKV_K8S_49
    roles = [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": name, "namespace": "ns", **({"annotations": annotations} if annotations else {})},
         "rules": [wide]}
        for name, annotations in (("plain", None), ("suppressed", checkov_skips({"CKV_K8S_49": "test: reason"})))
    ]
    (tmp_path / "roles.yaml").write_text(yaml.safe_dump_all(roles, sort_keys=False))

    code, found = _checkov(tmp_path)

    assert code != 0
    assert any(check == "CKV_ARGO_1" for check, _ in found["failed"]), found
    assert ("CKV_K8S_49", "Role.ns.plain") in found["failed"]
    assert ("CKV_K8S_49", "Role.ns.suppressed") in found["skipped"]
    assert ("CKV_K8S_49", "Role.ns.suppressed") not in found["failed"]


def test_a_suppression_needs_a_check_id_and_a_reason() -> None:
    assert checkov_skips({"CKV_K8S_49": "why\n it is fine", "CKV2_K8S_5": "b"}) == {
        "checkov.io/skip1": "CKV2_K8S_5=b", "checkov.io/skip2": "CKV_K8S_49=why it is fine",
    }
    for bad in ({"CKV_K8S_49": " "}, {"K8S_49": "reason"}):
        with pytest.raises(ValueError, match="needs a check id and a reason"):
            checkov_skips(bad)


def test_every_suppression_in_the_output_has_a_reason_listed_in_the_docs() -> None:
    docs = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    section = docs.split("## Static scan", 1)[1].split("\n## ", 1)[0]
    for path, doc in _documents():
        annotations = (doc.get("metadata") or {}).get("annotations") or {}
        for key, value in annotations.items():
            if not SKIP_ANNOTATION.match(key):
                continue
            check, _, reason = value.partition("=")
            assert reason.strip(), f"{path}: {key} has no reason"
            assert check in section, f"{path}: {check} is suppressed but not listed in docs/security.md"
    for path in (ROOT / folder for folder in OUTPUT_DIRS):
        for file in path.rglob("*.y*ml"):
            assert "checkov:skip" not in file.read_text(encoding="utf-8") or "checkov:skip" in section, file
