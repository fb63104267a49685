"""Names derived from untrusted event data: git branches, dedupe keys and Lease names.

Event fields (model names, feature names) are chosen by whoever can write to the registry, so every name built
from them is sanitised here, in one place. Each function is injective where it matters: two different models
never share a branch, a dedupe key or a Lease, even when sanitising had to drop characters.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata

from hera_flows.steps.common import StepError

LEASE_PREFIX = "hf-"
MAX_BRANCH_LENGTH = 120  # git has no limit, forges and UIs do (GitHub: 255 bytes); keep well under
_HASH_LENGTH = 8
_SEGMENT = re.compile(r"^[a-z0-9](?:[a-z0-9._-]*[a-z0-9])?$")
_KIND = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,18}[a-z0-9])?$")


def _short_hash(parts: tuple[str, ...]) -> str:
    # JSON keeps the parts apart ("a-b","c" vs "a","b-c") before hashing.
    encoded = json.dumps(list(parts), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(encoded).hexdigest()[:_HASH_LENGTH]


def _slug(part: str) -> str:
    """Lower-case; every run of characters outside [a-z0-9.] becomes one '-'; no '..'; no edge '-' or '.'."""
    text = part.lower()
    text = re.sub(r"[^a-z0-9.]+", "-", text)
    text = re.sub(r"\.{2,}", ".", text)
    text = text.strip("-.")
    if text.endswith(".lock"):
        text = text[: -len(".lock")] + "-lock"
    return text


def _check_prefix(prefix: str) -> None:
    segments = prefix.split("/")
    for segment in segments:
        if not _SEGMENT.match(segment) or ".." in segment or segment.endswith(".lock"):
            raise StepError(
                f"branch prefix {prefix!r} is not usable: each '/'-separated part must be lower-case letters, "
                "digits, '.', '_' or '-', starting and ending with a letter or digit"
            )


def branch_name(prefix: str, *parts: str, max_length: int = MAX_BRANCH_LENGTH) -> str:
    """``prefix/<slug of parts joined by '-'>``, a valid ``git check-ref-format --branch`` name.

    A short hash of the original parts is appended whenever the slug does not identify them exactly (a
    character was changed or dropped, a part is empty, a later part contains '-', or the slug was shortened),
    so that e.g.
    ``Fraud Detector`` and ``fraud-detector`` get different branches. Clean inputs keep clean names:
    ``branch_name("model-promotion", "fraud-detector", "v7") == "model-promotion/fraud-detector-v7"``.
    """
    _check_prefix(prefix)
    if not parts:
        raise ValueError("branch_name needs at least one part")
    slugs = [_slug(part) for part in parts]
    exact = (
        all(slug == part and slug for slug, part in zip(slugs, parts, strict=True))
        and all("-" not in part for part in parts[1:])
    )
    slug = "-".join(s for s in slugs if s)
    room = max_length - len(prefix) - 1
    if room < _HASH_LENGTH + 2:
        raise StepError(f"branch prefix {prefix!r} leaves no room for a name within {max_length} characters")
    if exact and slug and len(slug) <= room:
        return f"{prefix}/{slug}"
    suffix = _short_hash(parts)
    head = slug[: room - _HASH_LENGTH - 1].rstrip("-.")
    return f"{prefix}/{head}-{suffix}" if head else f"{prefix}/{suffix}"


def _escape_key_part(part: str) -> str:
    out: list[str] = []
    for ch in part:
        if ch in "%@" or unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp"):
            out.extend(f"%{byte:02X}" for byte in ch.encode("utf-8"))
        else:
            out.append(ch)
    return "".join(out)


def dedupe_key(*parts: str) -> str:
    """A readable, unambiguous key for one unit of work, e.g. ``fraud-detector@v7``.

    Parts are joined with '@'; '@', '%' and control characters inside a part are percent-encoded, so the key
    is injective and safe to print on one line. It is not a Kubernetes label value (use :func:`lease_name`
    or a hash for that).
    """
    if not parts:
        raise ValueError("dedupe_key needs at least one part")
    return "@".join(_escape_key_part(part) for part in parts)


def lease_name(kind: str, key: str) -> str:
    """``hf-<kind>-<sha256(key)[:20]>``: a DNS-1123 name for the Lease recording ``key`` (kept in an annotation)."""
    if not _KIND.match(kind):
        raise ValueError(f"lease kind {kind!r} must be 1-20 lower-case letters, digits or '-'")
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()[:20]
    return f"{LEASE_PREFIX}{kind}-{digest}"
