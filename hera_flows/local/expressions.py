"""The small expression language the generated templates use in `when`, `depends` and `retryStrategy`.

Grammar: ``expr := term (('&&' | '||') term)*``, ``term := '(' expr ')' | '!' term | operand (('=='|'!=') operand)?``,
operands are single-quoted strings, numbers or identifiers (``guard.Succeeded``, ``lastRetry.exitCode``).
Identifiers resolve through a callback; anything else is an error, never ``eval``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')"
    r"|(?P<op>&&|\|\||==|!=|!|\(|\))"
    r"|(?P<num>-?\d+(?:\.\d+)?)"
    r"|(?P<id>[A-Za-z_][\w.-]*))"
)


class ExpressionError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ExpressionError(f"cannot parse {text[pos:]!r} in {text!r}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "str":
            value = value[1:-1].replace("\\'", "'")
        out.append((kind, value))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


def evaluate(text: str, resolve: Callable[[str], Any]) -> bool:
    tokens = _tokens(text)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise ExpressionError(f"unexpected end of {text!r}")
        position += 1
        return tokens[position - 1]

    def operand() -> Any:
        kind, value = take()
        if kind in ("str", "num"):
            return value
        if kind == "id":
            return resolve(value)
        raise ExpressionError(f"unexpected {value!r} in {text!r}")

    def term() -> Any:
        token = peek()
        if token == ("op", "("):
            take()
            value = expr()
            if take() != ("op", ")"):
                raise ExpressionError(f"missing ')' in {text!r}")
            return value
        if token == ("op", "!"):
            take()
            return not term()
        left = operand()
        token = peek()
        if token in (("op", "=="), ("op", "!=")):
            take()
            right = operand()
            return (str(left) == str(right)) == (token[1] == "==")
        return left

    def expr() -> Any:
        value = term()
        while peek() in (("op", "&&"), ("op", "||")):
            _, op = take()
            right = term()
            value = (bool(value) and bool(right)) if op == "&&" else (bool(value) or bool(right))
        return value

    try:
        result = expr()
    except RecursionError:
        raise ExpressionError(f"the expression is nested too deeply ({len(tokens)} tokens)") from None
    if position != len(tokens):
        raise ExpressionError(f"trailing input in {text!r}")
    return bool(result)
