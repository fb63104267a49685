#!/usr/bin/env python3
"""Vendor the Argo Workflows WorkflowTemplate JSON schema (v3.7.18 and v4.1.2) into hera_flows/schemas.

The failure-triage smoke step validates the WorkflowTemplate a fix changed, inside the step image, which has no
../shared. The copy is the transitive closure of ``io.argoproj.workflow.v1alpha1.WorkflowTemplate`` in the
official ``api/jsonschema/schema.json`` (definitions only, unchanged), compact sorted JSON, gzipped with mtime 0
— deterministic, so a test asserts the vendored files are what this script derives today.

    python tools/vendor_workflow_schemas.py            # (re)write
    python tools/vendor_workflow_schemas.py --check    # exit 1 when out of date
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED_SCHEMAS = ROOT.parent / "shared" / "schemas"
VENDORED = ROOT / "hera_flows" / "schemas"
ROOT_DEFINITION = "io.argoproj.workflow.v1alpha1.WorkflowTemplate"
VERSIONS = {
    "v3.7.18": ("argo-workflows-v3.7.18.schema.json", "argo-workflows-v3.7.18-workflowtemplate.schema.json.gz"),
    "v4.1.2": ("argo-workflows-v4.1.2.schema.json", "argo-workflows-v4.1.2-workflowtemplate.schema.json.gz"),
}


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            found.add(ref.removeprefix("#/definitions/"))
        for value in node.values():
            found |= _refs(value)
    elif isinstance(node, list):
        for value in node:
            found |= _refs(value)
    return found


def derive_json(source: str, shared: Path = SHARED_SCHEMAS) -> bytes:
    definitions = json.loads((shared / source).read_text(encoding="utf-8"))["definitions"]
    wanted, pending = set(), [ROOT_DEFINITION]
    while pending:
        name = pending.pop()
        if name in wanted:
            continue
        wanted.add(name)
        pending.extend(_refs(definitions[name]) - wanted)
    schema = {"root": ROOT_DEFINITION, "definitions": {k: definitions[k] for k in sorted(wanted)}}
    return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED_SCHEMAS)
    parser.add_argument("--out", type=Path, default=VENDORED)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for source, target_name in VERSIONS.values():
        data = derive_json(source, args.shared)
        target = args.out / target_name
        if target.is_file() and gzip.decompress(target.read_bytes()) == data:
            continue
        if args.check:
            stale.append(target_name)
            continue
        target.write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
        print(f"wrote {target} ({len(data)} bytes of JSON)")
    for name in stale:
        print(f"{name} is out of date: run python tools/vendor_workflow_schemas.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
