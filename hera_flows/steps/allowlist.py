"""Which repository paths an agent may change: glob patterns such as ``inference/**`` or ``model-cards/*.md``.

The patterns are matched against repository-relative POSIX paths, one ``/``-separated segment at a time, so
the rules are few and predictable (no dependency on the shell's or fnmatch's idea of ``*``):

- ``*`` matches any run of characters inside one segment (never a ``/``), ``?`` exactly one such character;
- a segment that is exactly ``**`` matches zero or more whole segments; a trailing ``/**`` needs at least one,
  so ``inference/**`` matches everything *inside* ``inference/`` but not a file named ``inference``;
- a trailing ``/`` means the same as ``/**``; every other character is literal.

The same list is used for the agent prompt and for the publish step, which alone decides what is pushed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from hera_flows.steps.common import StepError

_DOUBLE_STAR = "**"


def parse_patterns(value: str | Iterable[str]) -> list[str]:
    """A comma-separated flag value (or a list) -> validated, normalised patterns (empty entries dropped)."""
    items = value.split(",") if isinstance(value, str) else list(value)
    patterns: list[str] = []
    for raw in items:
        pattern = raw.strip()
        if not pattern:
            continue
        patterns.append(_normalise(pattern))
    return patterns


def _normalise(pattern: str) -> str:
    if "\\" in pattern or any(ord(c) < 32 or ord(c) == 127 for c in pattern):
        raise StepError(f"allowed path {pattern!r} contains a backslash or a control character")
    if pattern.startswith("/"):
        raise StepError(f"allowed path {pattern!r} must be relative to the repository root")
    if pattern.endswith("/"):
        pattern += _DOUBLE_STAR
    segments = pattern.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise StepError(f"allowed path {pattern!r} has an empty, '.' or '..' segment")
        if _DOUBLE_STAR in segment and segment != _DOUBLE_STAR:
            raise StepError(f"allowed path {pattern!r}: '**' must be a whole segment (like 'dir/**/x.yaml')")
    return pattern


@lru_cache(maxsize=512)
def _segment_regex(segment: str) -> re.Pattern[str]:
    parts = []
    for char in segment:
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


def _match(pattern: Sequence[str], path: Sequence[str]) -> bool:
    if not pattern:
        return not path
    head = pattern[0]
    if head == _DOUBLE_STAR:
        rest = pattern[1:]
        # A trailing ** must consume at least one segment: "dir/**" is the contents of dir, not dir itself.
        start = 1 if not rest else 0
        return any(_match(rest, path[i:]) for i in range(start, len(path) + 1))
    if not path or not _segment_regex(head).fullmatch(path[0]):
        return False
    return _match(pattern[1:], path[1:])


def _may_match_below(pattern: Sequence[str], directory: Sequence[str]) -> bool:
    """True when some path ``directory/...`` (at least one more segment) can match ``pattern``."""
    if not directory:
        return bool(pattern)
    if not pattern:
        return False
    if pattern[0] == _DOUBLE_STAR:
        return True
    if not _segment_regex(pattern[0]).fullmatch(directory[0]):
        return False
    return _may_match_below(pattern[1:], directory[1:])


def _segments(path: str) -> list[str]:
    segments = path.split("/")
    if path.startswith("/") or any(s in ("", ".", "..") for s in segments):
        raise ValueError(f"not a normalised repository-relative path: {path!r}")
    return segments


@dataclass(frozen=True)
class AllowList:
    """A set of glob patterns; ``allows(path)`` says whether a repository-relative POSIX path matches one."""

    patterns: tuple[str, ...]

    @classmethod
    def parse(cls, value: str | Iterable[str]) -> AllowList:
        return cls(tuple(parse_patterns(value)))

    def allows(self, path: str) -> bool:
        segments = _segments(path)
        return any(_match(p.split("/"), segments) for p in self.patterns)

    def may_contain(self, directory: str) -> bool:
        """Whether any path inside ``directory`` could be allowed (lets a walk skip a whole foreign folder)."""
        segments = _segments(directory)
        return any(_may_match_below(p.split("/"), segments) for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __str__(self) -> str:
        return ", ".join(self.patterns)
