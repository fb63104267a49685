#!/usr/bin/env python3
"""Copy the official schemas the step image needs at runtime from ../shared/schemas into hera_flows/schemas.

The step image has no ../shared, so the smoke step carries its own copy of the schemas of the serving resources a
promotion edits: the KServe InferenceService and the Seldon Core v2 Model and Experiment.
The copy is the CRD's ``openAPIV3Schema`` exactly as published (only re-serialised: compact JSON with sorted
keys, gzipped with mtime 0), so this script is deterministic and a test can assert that the vendored file is
what the script derives from ../shared today: the copy cannot drift from the official schema.

    python tools/vendor_schemas.py            # (re)write the vendored files
    python tools/vendor_schemas.py --check    # exit 1 when a vendored file is missing or out of date
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHARED_SCHEMAS = ROOT.parent / "shared" / "schemas"
VENDORED = ROOT / "hera_flows" / "schemas"


@dataclass(frozen=True)
class CrdSchema:
    """One served version of a CustomResourceDefinition, vendored as its openAPIV3Schema."""

    source: str  # file name under ../shared/schemas
    kind: str
    version: str
    target: str  # file name under hera_flows/schemas


SCHEMAS = (
    CrdSchema(
        source="kserve-v0.20.0.crd-inferenceservices.yaml",
        kind="InferenceService",
        version="v1beta1",
        target="kserve-v0.20.0-inferenceservice-v1beta1.schema.json.gz",
    ),
    CrdSchema(
        source="seldon-core-v2-crds.yaml",
        kind="Model",
        version="v1alpha1",
        target="seldon-core-v2.10.2-model-v1alpha1.schema.json.gz",
    ),
    CrdSchema(
        source="seldon-core-v2-crds.yaml",
        kind="Experiment",
        version="v1alpha1",
        target="seldon-core-v2.10.2-experiment-v1alpha1.schema.json.gz",
    ),
)


def derive_json(entry: CrdSchema, shared_schemas: Path = SHARED_SCHEMAS) -> bytes:
    """The openAPIV3Schema of ``entry`` as compact, key-sorted JSON (the uncompressed vendored content)."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    with (shared_schemas / entry.source).open(encoding="utf-8") as stream:
        documents = [d for d in yaml.load_all(stream, Loader=loader) if isinstance(d, dict)]
    for crd in documents:
        if crd.get("kind") != "CustomResourceDefinition" or crd["spec"]["names"]["kind"] != entry.kind:
            continue
        for version in crd["spec"]["versions"]:
            if version["name"] == entry.version:
                schema = version["schema"]["openAPIV3Schema"]
                return json.dumps(schema, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    raise SystemExit(f"{entry.source}: no {entry.kind} {entry.version} schema found")


def compress(data: bytes) -> bytes:
    """Deterministic gzip: no file name, mtime 0."""
    return gzip.compress(data, compresslevel=9, mtime=0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=SHARED_SCHEMAS, help="folder holding the official schemas")
    parser.add_argument("--out", type=Path, default=VENDORED, help="package folder receiving the copies")
    parser.add_argument("--check", action="store_true", help="only report vendored files that are out of date")
    args = parser.parse_args(argv)

    stale = []
    for entry in SCHEMAS:
        data = derive_json(entry, args.shared)
        target = args.out / entry.target
        current = gzip.decompress(target.read_bytes()) if target.is_file() else None
        if current == data:
            continue
        if args.check:
            stale.append(entry.target)
            continue
        args.out.mkdir(parents=True, exist_ok=True)
        target.write_bytes(compress(data))
        print(f"wrote {target} ({len(data)} bytes of JSON)")
    for name in stale:
        print(f"{name} is out of date: run python tools/vendor_schemas.py", file=sys.stderr)
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
