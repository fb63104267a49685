"""Bring-your-own event shape: map an untrusted event to named fields with a small, safe expression language.

A shared building block: the drift pattern maps any alert or detector output to its drift event with it, and any
other pattern can map its own fields (e.g. an Alertmanager SLI alert) the same way. A mapping is configuration
(trusted); the document it reads is event data (untrusted). Nothing is ever executed: an expression is parsed
into a tree once (a syntax error is a configuration error, reported with its position) and evaluated by walking
that tree over plain JSON values.

A mapping (``Mapping.from_spec``)::

    match:  body.version == "4"                    # optional: does the delivery have this shape at all?
    each:   body.alerts                            # optional: one record per element (``item``, ``index``)
    when:   item.status == "firing"                # optional: records for which it is false are not firing
    fields: {model: item.labels.model, feature: item.labels.feature ?? null, ...}
    vars:   {features: [age, income]}              # constants the expressions may read as ``vars.*``

Expressions::

    body.alerts[0].labels.model      paths over the document (``.name``, ``["any key"]``, ``[0]``, ``.0``);
                                      a missing key, a wrong type or an index out of range gives null
    a ?? b ?? "drift"                 the first that is neither null nor ""
    lower(x)  upper(x)  trim(x)  string(x)  number(x)  len(x)  first(x)  split(x, ",")  join(x, ",")
    regex(x, "pattern", 1)            a group of the first match (the pattern must be a literal), else null
    if(cond, then, else)              keys(x)  values(x)  inference_v2(x) (below)
    == != < <= > >= in  and or not    comparisons never fail: mismatched types compare false
    "text" 'text' 12 -0.5 true false null [a, b]

``inference_v2(x)`` decodes an Open Inference Protocol (V2) response, REST JSON (``outputs[].data``) or protobuf
JSON (``outputs[].contents.*Contents``, what Seldon Core 2 pipelines print), into ``{"data": {output name:
value}, "meta": parameters}``: tensors of shape ``[1, n]`` become lists, ``[1, 1]`` scalars — for Alibi-Detect
detectors served by MLServer this is exactly the detector's own ``predict()`` dict.

Limits keep a hostile document cheap: expressions of at most 1,000 characters nested at most 32 deep, at most
1,000 records per delivery, regexes run on the first 4,096 characters of a value.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Collection
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

MAX_EXPRESSION = 1000
MAX_DEPTH = 32
MAX_RECORDS = 1000
MAX_REGEX_INPUT = 4096


class MappingError(ValueError):
    """A mapping or expression that cannot be used: a configuration mistake, reported as one line."""


# --- tokens ----------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<name>[A-Za-z_][A-Za-z0-9_-]*)
  | (?P<op>\?\?|==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\.)
""", re.VERBOSE)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "/": "/"}


@dataclass(frozen=True)
class _Token:
    kind: str  # number | string | name | op | end
    text: str
    pos: int
    value: Any = None


def _unquote(text: str, pos: int) -> str:
    out, i = [], 1
    while i < len(text) - 1:
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1]
            if nxt not in _ESCAPES:
                raise MappingError(f"unknown escape \\{nxt} at character {pos + i + 1}")
            out.append(_ESCAPES[nxt])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _tokens(source: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if not match:
            raise MappingError(f"unexpected {source[pos]!r} at character {pos + 1}")
        kind = match.lastgroup or ""
        text = match.group(0)
        if kind == "number":
            number = float(text)
            value: Any = int(text) if re.fullmatch(r"-?\d+", text) else number
            tokens.append(_Token("number", text, pos, value))
        elif kind == "string":
            tokens.append(_Token("string", text, pos, _unquote(text, pos)))
        elif kind != "ws":
            tokens.append(_Token(kind, text, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(source)))
    return tokens


# --- parser: expression text -> tree of tuples -----------------------------------------------------------------

BUILTINS = ("lower", "upper", "trim", "string", "number", "len", "first", "split", "join", "regex", "if", "keys",
            "values", "inference_v2")


class _Parser:
    def __init__(self, source: str, functions: Collection[str]) -> None:
        self.tokens = _tokens(source)
        self.i = 0
        self.functions = functions
        self.depth = 0

    @property
    def token(self) -> _Token:
        return self.tokens[self.i]

    def take(self, kind: str, text: str | None = None) -> _Token | None:
        token = self.token
        if token.kind == kind and (text is None or token.text == text):
            self.i += 1
            return token
        return None

    def expect(self, kind: str, text: str) -> None:
        if not self.take(kind, text):
            raise self.error(f"expected {text!r}")

    def error(self, message: str) -> MappingError:
        token = self.token
        found = "the end" if token.kind == "end" else repr(token.text)
        return MappingError(f"{message} at character {token.pos + 1} (found {found})")

    def keyword(self, word: str) -> bool:
        if self.token.kind == "name" and self.token.text == word:
            self.i += 1
            return True
        return False

    def parse(self) -> tuple[Any, ...]:
        node = self.expression()
        if self.token.kind != "end":
            raise self.error("unexpected text after the expression")
        return node

    def expression(self) -> tuple[Any, ...]:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"nested more than {MAX_DEPTH} deep")
        node = self.or_()
        self.depth -= 1
        return node

    def or_(self) -> tuple[Any, ...]:
        node = self.and_()
        while self.keyword("or"):
            node = ("or", node, self.and_())
        return node

    def and_(self) -> tuple[Any, ...]:
        node = self.not_()
        while self.keyword("and"):
            node = ("and", node, self.not_())
        return node

    def not_(self) -> tuple[Any, ...]:
        if self.keyword("not"):
            return ("not", self.not_())
        return self.comparison()

    def comparison(self) -> tuple[Any, ...]:
        node = self.coalesce()
        for op in ("==", "!=", "<=", ">=", "<", ">"):
            if self.take("op", op):
                return ("cmp", op, node, self.coalesce())
        if self.keyword("in"):
            return ("in", node, self.coalesce())
        return node

    def coalesce(self) -> tuple[Any, ...]:
        node = self.postfix()
        while self.take("op", "??"):
            node = ("??", node, self.postfix())
        return node

    def postfix(self) -> tuple[Any, ...]:
        node = self.primary()
        while True:
            if self.take("op", "."):
                token = self.token
                if token.kind == "name":
                    self.i += 1
                    node = ("get", node, ("lit", token.text))
                elif token.kind == "number" and isinstance(token.value, int) and token.value >= 0:
                    self.i += 1
                    node = ("get", node, ("lit", token.value))
                else:
                    raise self.error("expected a name after '.'")
            elif self.take("op", "["):
                node = ("get", node, self.expression())
                self.expect("op", "]")
            else:
                return node

    def primary(self) -> tuple[Any, ...]:
        token = self.token
        if token.kind in ("number", "string"):
            self.i += 1
            return ("lit", token.value)
        if self.take("op", "("):
            node = self.expression()
            self.expect("op", ")")
            return node
        if self.take("op", "["):
            items: list[tuple[Any, ...]] = []
            if not self.take("op", "]"):
                items.append(self.expression())
                while self.take("op", ","):
                    items.append(self.expression())
                self.expect("op", "]")
            return ("list", tuple(items))
        if token.kind == "name":
            self.i += 1
            if token.text in ("true", "false", "null"):
                return ("lit", {"true": True, "false": False, "null": None}[token.text])
            if token.text in _KEYWORDS:
                raise MappingError(f"unexpected {token.text!r} at character {token.pos + 1}")
            if self.take("op", "("):
                if token.text not in self.functions:
                    raise MappingError(f"unknown function {token.text}() at character {token.pos + 1} (known: "
                                       f"{', '.join(sorted(self.functions))})")
                args: list[tuple[Any, ...]] = []
                if not self.take("op", ")"):
                    args.append(self.expression())
                    while self.take("op", ","):
                        args.append(self.expression())
                    self.expect("op", ")")
                return self.call(token, tuple(args))
            return ("var", token.text)
        raise self.error("expected a value")

    def call(self, token: _Token, args: tuple[tuple[Any, ...], ...]) -> tuple[Any, ...]:
        name = token.text
        if name == "regex":
            if not 2 <= len(args) <= 3 or args[1][0] != "lit" or not isinstance(args[1][1], str):
                raise MappingError(f"regex() at character {token.pos + 1} takes a value, a literal pattern and an "
                                   "optional group number")
            try:
                pattern = re.compile(args[1][1])
            except re.error as exc:
                raise MappingError(f"regex() at character {token.pos + 1}: bad pattern ({exc})") from None
            return ("regex", args[0], pattern, args[2] if len(args) == 3 else ("lit", 1))
        if name == "if" and len(args) != 3:
            raise MappingError(f"if() at character {token.pos + 1} takes three arguments (condition, then, else)")
        return ("call", name, args)


# --- values ----------------------------------------------------------------------------------------------------


def present(value: Any) -> bool:
    """Neither null nor the empty string: what ``??`` and a required field look for."""
    return value is not None and value != ""


def truthy(value: Any) -> bool:
    return value not in (None, False, "", 0) and value != [] and value != {}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str) and len(value) <= 40:
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _equal(left: Any, right: Any) -> bool:
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    return bool(left == right)


def _order(op: str, left: Any, right: Any) -> bool:
    numeric = (isinstance(left, (int, float)) and not isinstance(left, bool)
               and isinstance(right, (int, float)) and not isinstance(right, bool))
    if not numeric and not (isinstance(left, str) and isinstance(right, str)):
        return False
    return bool({"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[op])


def _string(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _get(container: Any, key: Any) -> Any:
    if isinstance(container, dict) and isinstance(key, str):
        return container.get(key)
    if isinstance(container, list) and isinstance(key, int) and not isinstance(key, bool):
        return container[key] if -len(container) <= key < len(container) else None
    return None


# --- Open Inference Protocol (V2) responses ---------------------------------------------------------------------

_CONTENTS = ("boolContents", "intContents", "int64Contents", "uintContents", "uint64Contents", "fp32Contents",
             "fp64Contents", "bytesContents")
_PARAMS = ("stringParam", "boolParam", "int64Param", "doubleParam", "uint64Param", "int32Param")


def _tensor_value(data: list[Any], shape: Any, datatype: str) -> Any:
    if datatype.upper().startswith(("INT", "UINT")):
        data = [int(v) if isinstance(v, str) and re.fullmatch(r"-?\d+", v) else v for v in data]
    dims = [int(d) for d in shape] if isinstance(shape, list) and all(
        isinstance(d, int) or (isinstance(d, str) and d.isdigit()) for d in shape) else []
    if len(dims) == 2 and dims[0] == 1:
        return data[0] if dims[1] == 1 and len(data) == 1 else data
    if dims == [1] and len(data) == 1:
        return data[0]
    return data


def inference_v2(response: Any) -> Any:
    """``{"data": {output: value}, "meta": parameters}`` of a V2 inference response, REST or protobuf JSON."""
    if not isinstance(response, dict) or not isinstance(response.get("outputs"), list):
        return None
    data: dict[str, Any] = {}
    for output in response["outputs"][:MAX_RECORDS]:
        if not isinstance(output, dict) or not isinstance(output.get("name"), str):
            continue
        values = output.get("data")
        if not isinstance(values, list):
            contents: dict[str, Any] = output["contents"] if isinstance(output.get("contents"), dict) else {}
            values = next((contents[k] for k in _CONTENTS if isinstance(contents.get(k), list)), None)
        if isinstance(values, list):
            data[output["name"]] = _tensor_value(values, output.get("shape"), str(output.get("datatype") or ""))
    meta: dict[str, Any] = {}
    parameters = response.get("parameters")
    if isinstance(parameters, dict):
        for key, value in parameters.items():
            if isinstance(value, dict):  # protobuf JSON: {"stringParam": "..."}
                value = next((value[k] for k in _PARAMS if k in value), None)
            meta[key] = value
    return {"data": data, "meta": meta, "model_name": response.get("model_name") or response.get("modelName")}


def _call(name: str, args: list[Any], functions: MappingABC[str, Callable[..., Any]]) -> Any:
    if name in functions:
        return functions[name](*args)
    first = args[0] if args else None
    if name in ("lower", "upper", "trim"):
        if not isinstance(first, str):
            return None
        return first.lower() if name == "lower" else first.upper() if name == "upper" else first.strip()
    if name == "string":
        return _string(first)
    if name == "number":
        return _number(first)
    if name == "len":
        return len(first) if isinstance(first, (str, list, dict)) else None
    if name == "first":
        return first[0] if isinstance(first, list) and first else (None if isinstance(first, list) else first)
    if name == "split":
        sep = args[1] if len(args) > 1 else ","
        return first.split(sep)[:MAX_RECORDS] if isinstance(first, str) and isinstance(sep, str) and sep else None
    if name == "join":
        sep = args[1] if len(args) > 1 else ","
        if isinstance(first, list) and isinstance(sep, str):
            return sep.join(s for s in (_string(v) for v in first) if s is not None)
        return None
    if name == "keys":
        return list(first) if isinstance(first, dict) else None
    if name == "values":
        return list(first.values()) if isinstance(first, dict) else None
    if name == "inference_v2":
        return inference_v2(first)
    raise MappingError(f"unknown function {name}()")  # the parser admits known names only


def _evaluate(node: tuple[Any, ...], scope: MappingABC[str, Any],
              functions: MappingABC[str, Callable[..., Any]]) -> Any:
    op = node[0]
    if op == "lit":
        return node[1]
    if op == "var":
        return scope.get(node[1])
    if op == "get":
        return _get(_evaluate(node[1], scope, functions), _evaluate(node[2], scope, functions))
    if op == "??":
        left = _evaluate(node[1], scope, functions)
        return left if present(left) else _evaluate(node[2], scope, functions)
    if op == "or":
        return truthy(_evaluate(node[1], scope, functions)) or truthy(_evaluate(node[2], scope, functions))
    if op == "and":
        return truthy(_evaluate(node[1], scope, functions)) and truthy(_evaluate(node[2], scope, functions))
    if op == "not":
        return not truthy(_evaluate(node[1], scope, functions))
    if op == "cmp":
        left, right = _evaluate(node[2], scope, functions), _evaluate(node[3], scope, functions)
        if node[1] == "==":
            return _equal(left, right)
        if node[1] == "!=":
            return not _equal(left, right)
        return _order(node[1], left, right)
    if op == "in":
        needle, haystack = _evaluate(node[1], scope, functions), _evaluate(node[2], scope, functions)
        if isinstance(haystack, list):
            return any(_equal(needle, v) for v in haystack)
        if isinstance(haystack, str) and isinstance(needle, str):
            return needle in haystack
        if isinstance(haystack, dict) and isinstance(needle, str):
            return needle in haystack
        return False
    if op == "list":
        return [_evaluate(item, scope, functions) for item in node[1]]
    if op == "regex":
        text = _string(_evaluate(node[1], scope, functions))
        group = _evaluate(node[3], scope, functions)
        if text is None:
            return None
        match = node[2].search(text[:MAX_REGEX_INPUT])
        if not match:
            return None
        try:
            return match.group(group if isinstance(group, (int, str)) and not isinstance(group, bool) else 0)
        except IndexError:  # no such group
            return None
    if op == "call":
        if node[1] == "if":
            branch = node[2][1] if truthy(_evaluate(node[2][0], scope, functions)) else node[2][2]
            return _evaluate(branch, scope, functions)
        return _call(node[1], [_evaluate(a, scope, functions) for a in node[2]], functions)
    raise MappingError(f"unknown expression node {op!r}")


@dataclass(frozen=True)
class Expression:
    """A parsed expression and its text (messages quote the text)."""

    source: str
    tree: tuple[Any, ...]

    def __call__(self, scope: MappingABC[str, Any],
                 functions: MappingABC[str, Callable[..., Any]] | None = None) -> Any:
        return _evaluate(self.tree, scope, functions or {})


def compile_expression(source: str, functions: Collection[str] = ()) -> Expression:
    """Parse ``source``; a MappingError says what is wrong and where. ``functions``: extra function names the
    caller will provide at evaluation (besides the builtins)."""
    if not isinstance(source, str) or not source.strip():
        raise MappingError("an expression must be a non-empty string")
    if len(source) > MAX_EXPRESSION:
        raise MappingError(f"an expression is limited to {MAX_EXPRESSION} characters")
    return Expression(source, _Parser(source, {*BUILTINS, *functions}).parse())


# --- mappings -------------------------------------------------------------------------------------------------

FIELD_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Record:
    """One mapped element of a delivery: where it came from, whether it is firing, and its field values."""

    where: str
    firing: bool
    values: dict[str, Any]
    sources: dict[str, str] = field(default_factory=dict)  # field -> the expression text it came from


@dataclass(frozen=True)
class Mapping:
    fields: dict[str, Expression]
    each: Expression | None = None
    when: Expression | None = None
    match: Expression | None = None
    vars: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: MappingABC[str, Any], functions: Collection[str] = ()) -> Mapping:
        """Compile a mapping (``match``, ``each``, ``when``, ``fields``, ``vars``); MappingError names the part."""
        unknown = sorted(set(spec) - {"match", "each", "when", "fields", "vars"})
        if unknown:
            raise MappingError(f"unknown mapping key(s) {', '.join(unknown)} (known: match, each, when, fields, vars)")

        def compiled(where: str, text: Any) -> Expression:
            try:
                return compile_expression(text, functions)
            except MappingError as exc:
                raise MappingError(f"{where}: {exc}") from None

        fields_spec = spec.get("fields") or {}
        if not isinstance(fields_spec, MappingABC):
            raise MappingError("fields must map field names to expressions")
        fields: dict[str, Expression] = {}
        for name, text in fields_spec.items():
            if not FIELD_NAME.match(str(name)):
                raise MappingError(f"fields: {name!r} is not a field name (lower case letters, digits, '_')")
            fields[str(name)] = compiled(f"fields.{name}", text)
        variables = spec.get("vars") or {}
        if not isinstance(variables, MappingABC):
            raise MappingError("vars must map names to values")
        return cls(
            fields=fields,
            each=compiled("each", spec["each"]) if spec.get("each") is not None else None,
            when=compiled("when", spec["when"]) if spec.get("when") is not None else None,
            match=compiled("match", spec["match"]) if spec.get("match") is not None else None,
            vars=json.loads(json.dumps(dict(variables))),
        )

    def apply(self, document: MappingABC[str, Any],
              functions: MappingABC[str, Callable[..., Any]] | None = None) -> tuple[list[Record], str]:
        """The records of ``document`` and, when the delivery has no records, why ("" otherwise)."""
        functions = functions or {}
        scope = {**document, "vars": self.vars}
        if self.match is not None and not truthy(self.match(scope, functions)):
            return [], f"it does not have the expected shape (match: {self.match.source})"
        if self.each is None:
            items: list[tuple[str, Any]] = [("the event", document.get("body"))]
        else:
            found = self.each(scope, functions)
            if found is None:
                return [], f"{self.each.source} is missing"
            if isinstance(found, dict):
                found = [found]  # one object where a list was expected: one record
            elif not isinstance(found, list):
                return [], f"{self.each.source} is not a list"
            if len(found) > MAX_RECORDS:
                return [], f"{self.each.source} has {len(found)} entries (more than {MAX_RECORDS})"
            items = [(f"{self.each.source}[{i}]", item) for i, item in enumerate(found)]
            if not items:
                return [], f"{self.each.source} is empty"
        records = []
        for index, (where, item) in enumerate(items):
            local = {**scope, "item": item, "index": index}
            firing = self.when is None or truthy(self.when(local, functions))
            values = {name: expression(local, functions) for name, expression in self.fields.items()} \
                if firing else {}
            records.append(Record(where, firing, values, {n: e.source for n, e in self.fields.items()}))
        return records, ""


def merge_specs(base: MappingABC[str, Any], override: MappingABC[str, Any] | None) -> dict[str, Any]:
    """``override`` over a preset ``base``: ``match``/``each``/``when`` replace, ``fields`` and ``vars`` merge key
    by key (a field set to null removes it)."""
    merged: dict[str, Any] = json.loads(json.dumps(dict(base)))
    for key, value in (override or {}).items():
        if key in ("fields", "vars") and isinstance(value, MappingABC):
            target = dict(merged.get(key) or {})
            for name, item in value.items():
                if item is None:
                    target.pop(name, None)
                else:
                    target[name] = item
            merged[key] = target
        else:
            merged[key] = value
    return {k: v for k, v in merged.items() if v is not None}
