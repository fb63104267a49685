"""The one escaping policy for everything hera-flows writes into a pull request, an issue or a comment.

Every value that came from outside (model and feature names, alert ids, metric names, paths, log lines, an
agent's summary or issue body) is untrusted text. It goes out in one of four forms, and only through here:

- :func:`inline_code` for a single value (a backtick fence the value cannot close, one line);
- :func:`table_cell` for plain text in a table cell or a sentence (markup characters escaped);
- :func:`one_line` for a capped, printable single line (titles render no markdown, so only length matters);
- :func:`contain` for free markdown written by an agent: raw HTML and comments defused (so it can neither hide
  the checklist in ``<!-- ... -->`` nor forge a dedupe marker), headings demoted below our ``###`` sections,
  an unclosed code fence closed, length capped.

The hidden dedupe marker (:func:`dedupe_marker`) is written by hera-flows only, always as the last line of a
body, and :func:`has_marker` accepts it only there.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MARKER_PREFIX = "hera-flows:dedupe-key="
MAX_CONTAINED_CHARS = 20_000
MAX_REFUSED_SHOWN = 20
MAX_FILES_SHOWN = 50
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_HEADING = re.compile(r"^ {0,3}(#{1,6})(?=\s|$)")
_HTML_START = re.compile(r"<(?=[A-Za-z/!?])")
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9@._:/+=-]")


def one_line(value: Any, limit: int = 200) -> str:
    """Printable characters only, whitespace folded to single spaces, at most ``limit`` characters."""
    text = " ".join("".join(c if c.isprintable() else " " for c in str(value)).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def inline_code(value: Any) -> str:
    """``value`` as inline code whose backtick fence the value cannot close; one line, markers defused."""
    text = " ".join(str(value).split()) or " "
    text = text.replace("<", "&lt;").replace(">", "&gt;") if "<!--" in text or "-->" in text else text
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_cell(value: Any, limit: int = 200) -> str:
    """Inline code inside a table cell: GFM splits cells on '|' even within code spans unless it is escaped."""
    return inline_code(one_line(value, limit)).replace("|", "\\|")


def table_cell(value: Any) -> str:
    """Plain text that stays inside one markdown table cell and renders no HTML or markup."""
    text = " ".join(str(value).split())
    for char, escape in (("\\", "\\\\"), ("|", "\\|"), ("<", "&lt;"), (">", "&gt;"), ("`", "\\`"),
                         ("*", "\\*"), ("_", "\\_"), ("[", "\\["), ("]", "\\]")):
        text = text.replace(char, escape)
    return text or " "


def contain(text: str, limit: int = MAX_CONTAINED_CHARS) -> str:
    """Untrusted markdown made safe to embed (see the module docstring)."""
    text = "".join(c if c.isprintable() or c in "\n\t" else " " for c in text.replace("\r\n", "\n").replace("\r", "\n"))
    truncated = len(text) > limit
    if truncated:
        text = text[:limit].rsplit("\n", 1)[0]
    out: list[str] = []
    fence: str | None = None
    for line in text.split("\n"):
        opener = _FENCE.match(line)
        if fence is None and opener:
            fence = opener.group(1)
        elif fence is not None and opener and opener.group(1)[0] == fence[0] and len(opener.group(1)) >= len(fence) \
                and not line.strip()[len(opener.group(1)):]:
            fence = None
        elif fence is None:
            line = _HTML_START.sub("&lt;", line)
            line = _HEADING.sub(lambda m: "#" * min(6, len(m.group(1)) + 3), line)
        out.append(line)
    if fence is not None:
        out.append(fence)
    body = "\n".join(out).strip("\n")
    if truncated:
        body += "\n\n*(truncated)*"
    return body


def dedupe_marker(key: str) -> str:
    """The hidden marker that identifies the PR or issue of one dedupe key (only safe characters inside)."""
    return f"<!-- {MARKER_PREFIX}{_KEY_UNSAFE.sub('_', key)[:200]} -->"


def with_marker(body: str, key: str) -> str:
    """``body`` ending with the dedupe marker of ``key`` as its last line."""
    return f"{body.rstrip()}\n\n{dedupe_marker(key)}\n"


def has_marker(body: str, key: str) -> bool:
    """True when ``body`` ends with the marker of ``key``: a marker anywhere else (planted in contained text,
    which :func:`contain` defuses anyway) never counts."""
    return body.rstrip().endswith(dedupe_marker(key))


def refused_section(refused: Sequence[Mapping[str, Any]]) -> list[str]:
    """The warning listing what the allow-list kept out of the change (empty when nothing was refused)."""
    if not refused:
        return []
    lines = [
        "> [!WARNING]",
        f"> The agent also changed {len(refused)} path(s) it is not allowed to change. They are **not** part of "
        "this change; look at the agent's instructions or the allow-list:",
        ">",
    ]
    for item in refused[:MAX_REFUSED_SHOWN]:
        lines.append(f"> - {inline_code(one_line(item.get('path', '?'), 200))}: "
                     f"{table_cell(one_line(item.get('reason', ''), 200))}")
    if len(refused) > MAX_REFUSED_SHOWN:
        lines.append(f"> - …and {len(refused) - MAX_REFUSED_SHOWN} more (see the workflow's publish step)")
    return ["", *lines]


def pushed_section(changes: Sequence[Mapping[str, Any]]) -> list[str]:
    """What publish actually pushed, path by path: the reviewer sees every file, whatever the description says."""
    lines = ["", "### Files in this change", ""]
    listed = [c for c in changes if c.get("kind") != "more"]
    # publish lists a large change's first paths, then {"kind": "more", "count": N}
    total = len(listed) + sum(int(c.get("count") or 0) for c in changes if c.get("kind") == "more")
    if not listed:
        return [*lines, "_No file was pushed._"]
    for item in listed[:MAX_FILES_SHOWN]:
        lines.append(f"- {table_cell(one_line(item.get('kind', 'changed'), 20))}: "
                     f"{inline_code(one_line(item.get('path', '?'), 300))}")
    if total > MAX_FILES_SHOWN:
        lines.append(f"- …and {total - min(len(listed), MAX_FILES_SHOWN)} more (see the branch)")
    return lines


def agent_section(record: Mapping[str, Any]) -> list[str]:
    """Who edited this change and at what cost: the named runtime's record (publish's ``agent`` output), with where
    the transcript is kept. Every value is the record's, contained: the model never writes this section."""
    facts = [f"runtime {inline_code(one_line(str(record.get('runtime', '?')), 40))}",
             f"model {inline_code(one_line(str(record.get('model', '?')), 100))}"]
    if isinstance(record.get("turns"), int):
        facts.append(f"{record['turns']} turns")
    if isinstance(record.get("duration_seconds"), (int, float)):
        facts.append(f"{record['duration_seconds']:.0f} s")
    if isinstance(record.get("tokens"), int):
        facts.append(f"{record['tokens']} tokens")
    if isinstance(record.get("cost_usd"), (int, float)):
        facts.append(f"${record['cost_usd']:.4f}")
    lines = ["", "### Agent run", "", "Edited by a coding agent: " + ", ".join(facts) + "."]
    denied = [d for d in record.get("denied", []) if isinstance(d, str)]
    count = record.get("denied_count", len(denied))
    if denied:
        lines += ["", f"Its permission rules denied {count} tool call(s):", ""]
        lines += [f"- {inline_code(one_line(d, 200))}" for d in denied[:10]]
    workflow = record.get("workflow")
    where = f" of workflow {inline_code(one_line(workflow, 100))}" if isinstance(workflow, str) and workflow else ""
    lines += ["", f"The transcript (redacted, bounded) is the `transcript` output of the `agent` step{where} and in "
              "the agent container's log."]
    return lines
