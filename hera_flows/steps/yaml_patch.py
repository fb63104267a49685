"""Surgical edits of YAML text: change one value, keep every other byte (comments, blank lines, quoting, indentation).

A PR that rewrites a whole manifest through a YAML dumper loses the team's comments and layout and buries the
one-line change in noise. Here a value is changed by replacing exactly its text span (PyYAML node marks give
character offsets into the stream) and a missing key is inserted as new lines with the indentation of its
siblings; nothing else is touched. Every edit is then re-parsed and compared, type-strict, with the data the
edit was meant to produce, so a layout this module does not understand fails loudly instead of silently
changing something else.

Paths are sequences of mapping keys (``str``) and sequence indexes (``int``), e.g.
``["spec", "predictor", "model", "storageUri"]``. Values are scalars: str, int, float, bool or None.

Besides scalars: ``append_item`` adds one element (a small mapping of plain data) to the end of a block sequence,
creating the sequence when its key is missing; :func:`insert_block` adds a missing key holding a mapping or a list
(rendered in block style at its siblings' indentation); :func:`delete_key` removes a key with its value;
:func:`append_document` and :func:`remove_document` add or drop a whole YAML document of a multi-document file.
Each is checked the same way.
"""

from __future__ import annotations

import copy
import io
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeGuard

import yaml

from hera_flows.steps.common import StepError

Scalar = str | int | float | bool | None
PathKey = str | int

STR_TAG = "tag:yaml.org,2002:str"
NULL_TAG = "tag:yaml.org,2002:null"
DEFAULT_INDENT = 2


class YamlPatchError(StepError):
    """The YAML could not be edited without changing more than the requested value."""


class _Missing:
    """Marks a key that does not exist (distinct from an explicit ``null``)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class FieldChange:
    path: tuple[PathKey, ...]
    old: Any  # MISSING when the key was absent
    new: Scalar

    @property
    def dotted(self) -> str:
        return format_path(self.path)


def format_path(path: Sequence[PathKey]) -> str:
    """``spec.predictor.nodeSelector["nvidia.com/gpu.product"]``: readable and unambiguous for summaries."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
            out += ("." if out else "") + key
        else:
            out += "[" + json.dumps(key) + "]"
    return out


def read_value(data: Any, path: Sequence[PathKey]) -> Any:
    """The value at ``path`` in already-loaded data, or MISSING."""
    node = data
    for key in path:
        if isinstance(key, int) and isinstance(node, list) and -len(node) <= key < len(node):
            node = node[key]
        elif isinstance(key, str) and isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return MISSING
    return node


def same_data(a: Any, b: Any) -> bool:
    """Deep equality that also compares types (``1``, ``1.0``, ``True`` and ``"1"`` all differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_data(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_data(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


def load_documents(text: str) -> list[Any]:
    try:
        return list(yaml.safe_load_all(text))
    except yaml.YAMLError as exc:
        raise YamlPatchError(f"not valid YAML: {_one_line(exc)}") from exc
    except RecursionError:
        raise YamlPatchError("not valid YAML: nested too deeply") from None


def find_document(root: Path, matches: Callable[[Any], bool]) -> tuple[Path, int, Any] | None:
    """(file, document index, data) of the first YAML document under ``root`` (any depth, ``*.yaml`` and ``*.yml``
    in path order) that ``matches``; symlinks and files that are no readable YAML are passed over."""
    if not root.is_dir():
        return None
    for path in sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")]):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            documents = load_documents(path.read_text(encoding="utf-8"))
        except (YamlPatchError, UnicodeDecodeError):
            continue
        for index, doc in enumerate(documents):
            if matches(doc):
                return path, index, doc
    return None


def set_values(
    text: str, edits: Sequence[tuple[Sequence[PathKey], Scalar]], *, document: int = 0
) -> tuple[str, list[FieldChange]]:
    """Apply ``(path, value)`` edits to YAML document ``document`` of ``text``.

    Returns the new text and the fields that actually changed (an edit whose value is already in place is a
    no-op, which keeps the original quoting and makes the operation idempotent).
    """
    changes: list[FieldChange] = []
    for path, value in edits:
        text, change = _set_one(text, tuple(path), value, document)
        if change is not None:
            changes.append(change)
    return text, changes


def set_value(text: str, path: Sequence[PathKey], value: Scalar, *, document: int = 0) -> str:
    return set_values(text, [(path, value)], document=document)[0]


Item = dict[str, Any]


def append_item(text: str, path: Sequence[PathKey], item: Item, *, document: int = 0) -> str:
    """Append ``item`` to the block sequence at ``path`` of YAML document ``document`` (created, as a block
    sequence under its parent mapping, when the key is missing). The new lines take the indentation of the
    sequence's existing dashes (or of the parent's keys); the result is re-parsed and must be exactly the old
    data plus the item."""
    path = tuple(path)
    if not path or not isinstance(path[-1], str):
        raise YamlPatchError("append_item needs a path that ends in a mapping key")
    if not item or not isinstance(item, dict):
        raise YamlPatchError("append_item appends a non-empty mapping")
    documents = load_documents(text)
    if not 0 <= document < len(documents):
        raise YamlPatchError(f"the file has {len(documents)} YAML document(s); document {document} does not exist")
    current = read_value(documents[document], path)
    parent = read_value(documents[document], path[:-1])
    if current is MISSING or current is None:
        if not isinstance(parent, dict):
            raise YamlPatchError(f"cannot append to {format_path(path)}: {format_path(path[:-1]) or 'the document'} "
                                 "is not a mapping")
        intended_value: list[Any] = [copy.deepcopy(item)]
    elif isinstance(current, list):
        intended_value = [*copy.deepcopy(current), copy.deepcopy(item)]
    else:
        raise YamlPatchError(f"cannot append to {format_path(path)}: it is not a sequence")
    intended = copy.deepcopy(documents)
    holder = read_value(intended[document], path[:-1])
    holder[path[-1]] = intended_value

    nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    editor = _Editor(text, nodes[document])
    new_text = editor.append(path, item)
    if not same_data(load_documents(new_text), intended):
        raise YamlPatchError(f"appending to {format_path(path)} in YAML document {document} would change other "
                             "data (a layout the editor does not handle); edit this field by hand")
    return new_text


def _item_lines(item: Item, dash_column: int, newline: str) -> str:
    """``- key: value`` lines of one sequence element, the dash at ``dash_column``."""
    dumped = yaml.safe_dump(item, default_flow_style=False, sort_keys=False, allow_unicode=True, width=10**6)
    lines = dumped.rstrip("\n").split("\n")
    pad = " " * dash_column
    return newline.join([pad + "- " + lines[0], *(pad + "  " + line for line in lines[1:])]) + newline


# --- one edit -----------------------------------------------------------------------------------------------


def _set_one(text: str, path: tuple[PathKey, ...], value: Scalar, document: int) -> tuple[str, FieldChange | None]:
    if not path:
        raise YamlPatchError("an empty path cannot be set")
    if not isinstance(value, (str, int, float, bool, type(None))):
        raise YamlPatchError(f"only scalar values can be set, not {type(value).__name__} at {format_path(path)}")
    documents = load_documents(text)
    if not 0 <= document < len(documents):
        raise YamlPatchError(f"the file has {len(documents)} YAML document(s); document {document} does not exist")
    old = read_value(documents[document], path)
    if old is not MISSING and same_data(old, value):
        return text, None

    intended = copy.deepcopy(documents)
    _assign(intended, document, path, value)
    nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    new_text = _Editor(text, nodes[document]).apply(path, value)

    result = load_documents(new_text)
    if not same_data(result, intended):
        raise YamlPatchError(
            f"setting {format_path(path)} in YAML document {document} would change other data "
            "(an alias, a merge key or a layout the editor does not handle); edit this field by hand"
        )
    return new_text, FieldChange(path, old, value)


def _assign(documents: list[Any], document: int, path: tuple[PathKey, ...], value: Scalar) -> None:
    """Set ``path`` in plain data the way the text edit should: missing mappings are created."""
    holder: Any = documents
    key: PathKey = document
    for depth, next_key in enumerate(path):
        node = holder[key]
        if node is None and isinstance(next_key, str):
            node = holder[key] = {}
        if isinstance(next_key, str) and isinstance(node, dict):
            node.setdefault(next_key, None)
        elif isinstance(next_key, int) and isinstance(node, list):
            if not -len(node) <= next_key < len(node):
                raise YamlPatchError(f"cannot set {format_path(path)}: {format_path(path[:depth + 1])} does not exist")
        else:
            where = format_path(path[:depth]) or "the document"
            kind = "a sequence" if isinstance(node, list) else "a mapping" if isinstance(node, dict) else "a scalar"
            wanted = "a sequence" if isinstance(next_key, int) else "a mapping"
            raise YamlPatchError(f"cannot set {format_path(path)}: {where} is {kind}, not {wanted}")
        holder, key = node, next_key
    holder[key] = value


class _Editor:
    """Locates spans in one document and produces the edited text for one path."""

    def __init__(self, text: str, root: yaml.Node | None) -> None:
        self.text = text
        self.root = root
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.step = _indent_step(root) if root is not None else DEFAULT_INDENT

    def node_at(self, path: tuple[PathKey, ...]) -> yaml.Node | None:
        """The node at ``path`` (None when a step is missing)."""
        node = self.root
        for key in path:
            if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and -len(node.value) <= key < len(
                    node.value):
                node = node.value[key]
            elif isinstance(node, yaml.MappingNode) and isinstance(key, str):
                found = _find_key(node, key)
                if found is None:
                    return None
                node = found[1]
            else:
                return None
        return node

    def apply(self, path: tuple[PathKey, ...], value: Scalar) -> str:
        node = self.root
        if not isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
            raise YamlPatchError("the YAML document is neither a mapping nor a sequence")
        in_flow = bool(node.flow_style)
        key_node: yaml.Node | None = None
        for depth, key in enumerate(path):
            rest = path[depth:]
            if isinstance(node, yaml.SequenceNode):
                if not isinstance(key, int) or not -len(node.value) <= key < len(node.value):
                    raise YamlPatchError(f"{format_path(path[:depth + 1])} does not exist in the sequence")
                key_node, node = None, node.value[key]
            elif isinstance(node, yaml.MappingNode):
                if not isinstance(key, str):
                    raise YamlPatchError(f"{format_path(path[:depth])} is a mapping; {key!r} is not a key")
                found = _find_key(node, key)
                if found is None:
                    return self._insert(node, rest, value, in_flow)
                key_node, child = found
                if child.start_mark.index < key_node.end_mark.index:
                    raise YamlPatchError(f"{format_path(path[:depth + 1])} is an alias; edit its anchor instead")
                node = child
            elif _is_null(node) and key_node is not None and isinstance(key, str):
                return self._replace_null(key_node, node, rest, value, in_flow)
            else:
                raise YamlPatchError(f"{format_path(path[:depth])} is a scalar, it has no key {key!r}")
            in_flow = in_flow or bool(getattr(node, "flow_style", False))
        if not isinstance(node, yaml.ScalarNode):
            kind = "mapping" if isinstance(node, yaml.MappingNode) else "sequence"
            raise YamlPatchError(f"{format_path(path)} is a {kind}, not a scalar")
        return self._replace_scalar(node, value, in_flow)

    def append(self, path: tuple[PathKey, ...], item: Item) -> str:
        node: yaml.Node | None = self.root
        for depth, key in enumerate(path[:-1]):
            if isinstance(node, yaml.SequenceNode) and isinstance(key, int):
                node = node.value[key]
            elif isinstance(node, yaml.MappingNode) and isinstance(key, str):
                found = _find_key(node, key)
                if found is None:
                    raise YamlPatchError(f"{format_path(path[:depth + 1])} does not exist")
                node = found[1]
            else:
                raise YamlPatchError(f"{format_path(path[:depth + 1])} cannot be followed")
        if not isinstance(node, yaml.MappingNode) or node.flow_style or not node.value:
            raise YamlPatchError(f"{format_path(path[:-1]) or 'the document'} is not a block mapping with keys")
        found = _find_key(node, str(path[-1]))
        empty = found is not None and (_is_null(found[1]) or isinstance(found[1], yaml.SequenceNode) and
                                       bool(found[1].flow_style) and not found[1].value)
        if found is None or empty:
            # a new key (or one holding null or []) followed by the sequence, dashes one step right of the key
            if found is not None:
                key_node = found[0]
                start = found[1].start_mark.index
                while start > 0 and self.text[start - 1] in " \t":
                    start -= 1
                text = self.text[:start] + self.text[found[1].end_mark.index:]
                pos = self._line_end(start, text)
                return text[:pos] + _item_lines(item, key_node.start_mark.column + self.step, self.newline) + \
                    text[pos:]
            column: int = node.value[0][0].start_mark.column
            pos = self._skip_nested_comments(self._line_end(_content_end(node.value[-1][1])), column)
            key_text: str = render_scalar(str(path[-1]), flow=False, key=True)
            block = " " * column + key_text + ":" + self.newline + _item_lines(item, column + self.step, self.newline)
            if pos == len(self.text) and self.text and not self.text.endswith("\n"):
                return self.text + self.newline + block
            return self.text[:pos] + block + self.text[pos:]
        sequence = found[1]
        if not isinstance(sequence, yaml.SequenceNode) or sequence.flow_style or not sequence.value:
            raise YamlPatchError(f"{format_path(path)} is not a block sequence")
        first = sequence.value[0]
        dash = self.text.rfind("-", 0, first.start_mark.index)
        line_start = self.text.rfind("\n", 0, dash) + 1
        dash_column = dash - line_start
        if dash < 0 or self.text[line_start:dash].strip(" "):
            raise YamlPatchError(f"{format_path(path)}: the sequence's layout is not one dash per line")
        pos = self._skip_nested_comments(self._line_end(_content_end(sequence.value[-1])), dash_column)
        block = _item_lines(item, dash_column, self.newline)
        if pos == len(self.text) and self.text and not self.text.endswith("\n"):
            return self.text + self.newline + block
        return self.text[:pos] + block + self.text[pos:]

    # Replacing an existing scalar: exactly its span (an anchor and trailing line breaks of a block scalar stay).
    def _replace_scalar(self, node: yaml.ScalarNode, value: Scalar, in_flow: bool) -> str:
        start, end = node.start_mark.index, node.end_mark.index
        span = self.text[start:end]
        anchor = re.match(r"&\S+\s+", span)
        prefix = anchor.group(0) if anchor else ""
        trailing = span[len(span.rstrip("\r\n")):] if node.style in ("|", ">") else ""
        keep_style = node.style if node.style in ("'", '"') else None
        rendered = render_scalar(value, flow=in_flow, prefer=keep_style)
        if start == end:  # the empty scalar of `key:` sits right after the colon
            rendered = " " + rendered
        return self.text[:start] + prefix + rendered + trailing + self.text[end:]

    # A missing key: new lines after the mapping's last entry, indented like its siblings (or ", k: v" in a flow).
    def _insert(self, mapping: yaml.MappingNode, rest: tuple[PathKey, ...], value: Scalar, in_flow: bool) -> str:
        if any(isinstance(k, int) for k in rest):
            raise YamlPatchError(f"cannot create the sequence element {format_path(rest)}")
        keys = [str(k) for k in rest]
        if in_flow or mapping.flow_style:
            close = mapping.end_mark.index - 1
            if self.text[close] != "}":
                raise YamlPatchError("unexpected flow mapping layout")
            entry = _flow_entry(keys, value)
            if not mapping.value:
                return self.text[:close] + entry + self.text[close:]
            pos = _content_end(mapping.value[-1][1])
            return self.text[:pos] + ", " + entry + self.text[pos:]
        column = mapping.value[0][0].start_mark.column
        pos = self._skip_nested_comments(self._line_end(_content_end(mapping.value[-1][1])), column)
        block = self._block_entry(keys, value, column)
        if pos == len(self.text) and self.text and not self.text.endswith("\n"):
            return self.text + self.newline + block
        return self.text[:pos] + block + self.text[pos:]

    # A key whose value is null (``resources:`` or ``resources: ~``) becomes a mapping holding the rest of the path.
    def _replace_null(
        self, key_node: yaml.Node, node: yaml.ScalarNode, rest: tuple[PathKey, ...], value: Scalar, in_flow: bool
    ) -> str:
        if any(isinstance(k, int) for k in rest):
            raise YamlPatchError(f"cannot create the sequence element {format_path(rest)}")
        keys = [str(k) for k in rest]
        start, end = node.start_mark.index, node.end_mark.index
        if in_flow:
            mapping = ("" if start < end else " ") + "{" + _flow_entry(keys, value) + "}"
            return self.text[:start] + mapping + self.text[end:]
        while start > 0 and self.text[start - 1] in " \t":
            start -= 1
        text = self.text[:start] + self.text[end:]
        pos = self._line_end(start, text)
        block = self._block_entry(keys, value, key_node.start_mark.column + self.step)
        if pos == len(text) and not text.endswith("\n"):
            return text + self.newline + block
        return text[:pos] + block + text[pos:]

    def _line_end(self, pos: int, text: str | None = None) -> int:
        """The start of the line after ``pos`` (``pos`` itself when it already starts a line)."""
        text = self.text if text is None else text
        if pos > 0 and text[pos - 1] == "\n":
            return pos
        newline = text.find("\n", pos)
        return len(text) if newline < 0 else newline + 1

    def _skip_nested_comments(self, pos: int, column: int) -> int:
        """Past comment lines right after ``pos`` that are indented deeper than ``column``: they belong to the
        entry above, so a new key goes below them."""
        while pos < len(self.text):
            end = self.text.find("\n", pos)
            line = self.text[pos:] if end < 0 else self.text[pos:end]
            stripped = line.lstrip(" ")
            if not stripped.startswith("#") or len(line) - len(stripped) <= column:
                break
            pos = len(self.text) if end < 0 else end + 1
        return pos

    def _block_entry(self, keys: list[str], value: Scalar, column: int) -> str:
        lines = []
        for depth, key in enumerate(keys):
            indent = " " * (column + depth * self.step)
            rendered_key = render_scalar(key, flow=False, key=True)
            if depth == len(keys) - 1:
                lines.append(f"{indent}{rendered_key}: {render_scalar(value, flow=False)}")
            else:
                lines.append(f"{indent}{rendered_key}:")
        return self.newline.join(lines) + self.newline


def _flow_entry(keys: list[str], value: Scalar) -> str:
    entry = render_scalar(value, flow=True)
    for depth in range(len(keys) - 1, -1, -1):
        entry = f"{render_scalar(keys[depth], flow=True, key=True)}: {entry}"
        if depth > 0:
            entry = "{" + entry + "}"
    return entry


def _find_key(mapping: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """The last entry with this key: a YAML loader keeps the last of duplicate keys."""
    found = None
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag == STR_TAG and key_node.value == key:
            found = (key_node, value_node)
    return found


def _is_null(node: yaml.Node) -> TypeGuard[yaml.ScalarNode]:
    return isinstance(node, yaml.ScalarNode) and node.tag == NULL_TAG


def _content_end(node: yaml.Node) -> int:
    """Where a node's own text ends. A block collection's end mark lies after trailing comments and blank
    lines (it is the position of the next token), so for those the last child's end is used."""
    if isinstance(node, yaml.MappingNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1][1])
    if isinstance(node, yaml.SequenceNode) and not node.flow_style and node.value:
        return _content_end(node.value[-1])
    return node.end_mark.index


def _indent_step(root: yaml.Node) -> int:
    """The file's indentation step: how far a nested block mapping sits right of its parent key."""
    stack = [root]
    while stack:
        node = stack.pop(0)
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(value_node, yaml.MappingNode) and not value_node.flow_style and value_node.value:
                    step: int = value_node.value[0][0].start_mark.column - key_node.start_mark.column
                    if step > 0 and value_node.value[0][0].start_mark.line > key_node.start_mark.line:
                        return step
                stack.append(value_node)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    return DEFAULT_INDENT


# --- blocks, deletions and documents ---------------------------------------------------------------------------


def insert_block(text: str, path: Sequence[PathKey], value: Any, *, document: int = 0) -> str:
    """Add the missing key at the end of ``path`` holding ``value`` (a mapping or a list) in block style, after the
    last entry of its (block) parent mapping."""
    path = tuple(path)
    if not path or not isinstance(path[-1], str):
        raise YamlPatchError("insert_block needs a path ending in a mapping key")
    documents = load_documents(text)
    if not 0 <= document < len(documents):
        raise YamlPatchError(f"the file has {len(documents)} YAML document(s); document {document} does not exist")
    parent = read_value(documents[document], path[:-1])
    if not isinstance(parent, dict):
        raise YamlPatchError(f"{format_path(path[:-1]) or 'the document'} is not a mapping")
    if path[-1] in parent:
        raise YamlPatchError(f"{format_path(path)} exists already")
    nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    editor = _Editor(text, nodes[document])
    mapping = editor.node_at(path[:-1])
    if not isinstance(mapping, yaml.MappingNode) or mapping.flow_style or not mapping.value:
        raise YamlPatchError(f"{format_path(path[:-1]) or 'the document'} is not a non-empty block mapping")
    column = mapping.value[0][0].start_mark.column
    pos = editor._skip_nested_comments(editor._line_end(_content_end(mapping.value[-1][1])), column)
    rendered = yaml.safe_dump({path[-1]: value}, default_flow_style=False, sort_keys=False, indent=editor.step,
                               allow_unicode=True, width=10_000)
    block = "".join((" " * column + line if line.strip() else line) + editor.newline
                    for line in rendered.splitlines())
    if pos == len(text) and text and not text.endswith("\n"):
        block = editor.newline + block
    new_text = text[:pos] + block + text[pos:]
    intended = copy.deepcopy(documents)
    read_value(intended[document], path[:-1])[path[-1]] = value
    _check(new_text, intended, f"adding {format_path(path)}")
    return new_text


def delete_key(text: str, path: Sequence[PathKey], *, document: int = 0) -> str:
    """Remove the key at the end of ``path`` and its whole value (the lines from the key to the value's end); a key
    that is absent leaves the text as it is."""
    path = tuple(path)
    documents = load_documents(text)
    if not path or not isinstance(path[-1], str) or not 0 <= document < len(documents):
        raise YamlPatchError(f"cannot delete {format_path(path)} of document {document}")
    parent = read_value(documents[document], path[:-1])
    if not isinstance(parent, dict) or path[-1] not in parent:
        return text
    nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    editor = _Editor(text, nodes[document])
    mapping = editor.node_at(path[:-1])
    if not isinstance(mapping, yaml.MappingNode):
        raise YamlPatchError(f"{format_path(path[:-1]) or 'the document'} is not a mapping")
    found = _find_key(mapping, path[-1])
    if found is None or mapping.flow_style or len(mapping.value) < 2:
        raise YamlPatchError(f"{format_path(path)} is not a key of a block mapping with other keys; edit it by hand")
    key_node, value_node = found
    start = text.rfind("\n", 0, key_node.start_mark.index) + 1
    if text[start:key_node.start_mark.index].strip():
        raise YamlPatchError(f"{format_path(path)} does not start its own line; edit it by hand")
    end = editor._skip_nested_comments(editor._line_end(_content_end(value_node)), key_node.start_mark.column)
    new_text = text[:start] + text[end:]
    intended = copy.deepcopy(documents)
    del read_value(intended[document], path[:-1])[path[-1]]
    _check(new_text, intended, f"deleting {format_path(path)}")
    return new_text


_DOCUMENT_START = re.compile(r"^---(?:[ \t].*)?$", re.M)


def _document_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each document's text, a ``---`` line starting the document it opens."""
    starts = [m.start() for m in _DOCUMENT_START.finditer(text)]
    before = text[:starts[0]] if starts else text
    if any(line.strip() and not line.lstrip().startswith("#") for line in before.splitlines()):
        starts = [0, *starts]  # an implicit first document (no marker)
    elif starts:
        starts[0] = 0  # only comments before the first marker: they belong to the first document
    return [(start, starts[i + 1] if i + 1 < len(starts) else len(text)) for i, start in enumerate(starts)]


def append_document(text: str, document: Any, *, comment: str = "") -> str:
    """``text`` with ``document`` added as a new YAML document at the end (``comment`` as its first line)."""
    documents = load_documents(text)
    rendered = yaml.safe_dump(document, default_flow_style=False, sort_keys=False, allow_unicode=True, width=10_000)
    newline = "\r\n" if "\r\n" in text else "\n"
    head = text if text.endswith("\n") or not text else text + newline
    note = "".join(f"# {line}{newline}" for line in comment.splitlines())
    new_text = head + "---" + newline + note + rendered.replace("\n", newline)
    _check(new_text, [*[d for d in documents if d is not None], document] if documents else [document],
           "adding a document", ignore_empty=True)
    return new_text


def remove_document(text: str, index: int) -> str:
    """``text`` without YAML document ``index`` (its ``---`` line and everything up to the next one)."""
    documents = load_documents(text)
    spans = _document_spans(text)
    if len(spans) != len(documents) or not 0 <= index < len(spans):
        raise YamlPatchError(f"cannot tell the file's {len(documents)} YAML documents apart; remove document "
                             f"{index} by hand")
    start, end = spans[index]
    new_text = text[:start] + text[end:]
    if index == 0 and new_text.startswith("---"):
        new_text = new_text[new_text.find("\n") + 1:] if "\n" in new_text else ""
    _check(new_text, documents[:index] + documents[index + 1:], f"removing document {index}")
    return new_text


def _check(new_text: str, intended: list[Any], what: str, *, ignore_empty: bool = False) -> None:
    result = load_documents(new_text)
    if ignore_empty:
        result = [d for d in result if d is not None]
    if not same_data(result, intended):
        raise YamlPatchError(f"{what} would change other data (a layout the editor does not handle); edit it by hand")


# --- rendering scalars ----------------------------------------------------------------------------------------


class _Resolver(Protocol):
    """The signature of ``yaml.resolver.Resolver.resolve`` (left unannotated by types-PyYAML)."""

    def resolve(self, kind: type[yaml.Node], value: str, implicit: tuple[bool, bool]) -> str: ...


_RESOLVER: _Resolver = yaml.resolver.Resolver()
# YAML 1.2 core-schema numbers: a YAML 1.1 resolver reads some as strings ("1e3", "0o17") but Go and YAML 1.2
# parsers read them as numbers, so they are quoted too.
_YAML12_NON_STRINGS = re.compile(
    r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+|[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_UNSAFE_IN_DOUBLE = {"\u2028": "\\L", "\u2029": "\\P", "\u0085": "\\N", "\ufeff": "\\ufeff"}


def render_scalar(value: Scalar, *, flow: bool, prefer: str | None = None, key: bool = False) -> str:
    """YAML text for a scalar that reads back as exactly ``value`` (a version "1.10" stays a string).

    Strings are plain when that is unambiguous, otherwise quoted; ``prefer`` ("'" or '"') keeps the quoting
    style of the value being replaced.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value).lower()
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
    if prefer == "'" and _single_quotable(value):
        return "'" + value.replace("'", "''") + "'"
    if prefer != '"' and _plain_ok(value, flow=flow, key=key):
        return value
    return _double_quoted(value)


def _plain_ok(value: str, *, flow: bool, key: bool) -> bool:
    if not value or _RESOLVER.resolve(yaml.ScalarNode, value, (True, False)) != STR_TAG:
        return False
    if _YAML12_NON_STRINGS.match(value) or (key and len(value) > 128):
        return False
    analysis = yaml.emitter.Emitter(io.StringIO()).analyze_scalar(value)
    if analysis.multiline:
        return False
    return bool(analysis.allow_flow_plain if flow else analysis.allow_block_plain)


def _single_quotable(value: str) -> bool:
    return value.isprintable() and not any(char in value for char in _UNSAFE_IN_DOUBLE)


def _double_quoted(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    for char, escape in _UNSAFE_IN_DOUBLE.items():
        text = text.replace(char, escape)
    return text


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]
