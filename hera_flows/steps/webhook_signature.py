"""Webhook signatures, shared by every guard that authenticates a signed delivery (promotion's MLflow and Databricks
webhooks: hera_flows/steps/promotion/verify.py; drift's signed sources: hera_flows/steps/drift/guard.py): HMAC
comparison over the forms the sender may have signed, timestamp tolerance and strict body parsing.

The workflow never sees the bytes the sender signed. Argo Events wraps the body in its event as a Go
``json.RawMessage``, and Go's encoder compacts it on the way (whitespace outside strings removed) and escapes
``<``, ``>``, ``&``, U+2028 and U+2029 as ``\\u003c``, ``\\u003e``, ``\\u0026``, ``\\u2028``, ``\\u2029``.
A Python sender (MLflow) signs ``json.dumps(payload)`` with Python's defaults (separators ``", "`` and ``": "``,
``ensure_ascii=True``), so the guard rebuilds those bytes token by token from what it received. It never
re-serialises parsed values: a ``json.loads``/``json.dumps`` round trip could render a number differently
(``1e-07`` vs ``1E-7``) and break the signature for the wrong reason.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable
from typing import Any

from hera_flows.steps.common import StepError

_HEX4 = re.compile(r"^[0-9a-fA-F]{4}$")
# What Go's encoder escapes (always lower-case hex) and what each escape stands for.
_GO_HTML_ESCAPES = {"003c": "<", "003e": ">", "0026": "&"}
_GO_LINE_ESCAPES = {"2028": "\u2028", "2029": "\u2029"}
_WHITESPACE = " \t\r\n"


class Rejected(StepError):
    """The delivery is not authentic, fresh and well-formed: the guard ends the run with decision=rejected."""


class MalformedBody(Rejected):
    pass


def _rebuild(body: str, *, python_separators: bool, unescape_line_separators: bool) -> str:
    """Undo Go's compaction token by token: unescape what Go escaped, restore the separators.

    Only the exact escapes Go emits (``\\u003c`` etc., lower-case) are turned back; every other escape and every
    number, literal and string character is copied verbatim. Whitespace outside strings is dropped, and with
    ``python_separators`` each ``,`` and ``:`` gets the space Python's ``json.dumps`` puts after it.
    """
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        ch = body[i]
        if ch == '"':
            out.append('"')
            i += 1
            while True:
                if i >= n:
                    raise MalformedBody("the event body is not valid JSON (unterminated string)")
                ch = body[i]
                if ch == '"':
                    out.append('"')
                    i += 1
                    break
                if ch == "\\":
                    escape = body[i + 1 : i + 2]
                    if escape == "u":
                        digits = body[i + 2 : i + 6]
                        if not _HEX4.match(digits):
                            raise MalformedBody("the event body is not valid JSON (bad \\u escape)")
                        if digits in _GO_HTML_ESCAPES:
                            out.append(_GO_HTML_ESCAPES[digits])
                        elif unescape_line_separators and digits in _GO_LINE_ESCAPES:
                            out.append(_GO_LINE_ESCAPES[digits])
                        else:
                            out.append(body[i : i + 6])
                        i += 6
                        continue
                    if escape == "" or escape not in '"\\/bfnrt':
                        raise MalformedBody("the event body is not valid JSON (bad escape in a string)")
                    out.append(body[i : i + 2])
                    i += 2
                    continue
                if ch < " ":
                    raise MalformedBody("the event body is not valid JSON (control character in a string)")
                out.append(ch)
                i += 1
            continue
        if ch in _WHITESPACE:
            i += 1
            continue
        if ch in ",:":
            out.append(ch + " " if python_separators else ch)
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def mlflow_signed_form(body: str) -> str:
    """The body as MLflow's ``json.dumps(payload)`` wrote it, rebuilt from the Go-compacted body."""
    return _rebuild(body, python_separators=True, unescape_line_separators=False)


def go_inverse_form(body: str) -> str:
    """The body as a sender writing compact, unescaped JSON wrote it (what Go's HTML escaping hides)."""
    return _rebuild(body, python_separators=False, unescape_line_separators=True)


def candidate_bodies(body: str) -> list[str]:
    """The forms the sender may have signed: as received, MLflow's ``json.dumps`` form, compact unescaped."""
    candidates = [body]
    for form in (mlflow_signed_form(body), go_inverse_form(body)):
        if form not in candidates:
            candidates.append(form)
    return candidates


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            # gjson (the Sensor's filters) reads the first, Python the last: refuse the ambiguity.
            raise MalformedBody(f"the event body has the key {key!r} twice")
        result[key] = value
    return result


def _reject_constant(name: str) -> Any:
    raise MalformedBody(f"the event body is not valid JSON ({name} is not a JSON number)")


def parse_body(body: str) -> dict[str, Any]:
    """Parse a JSON object strictly: no duplicate keys, no NaN/Infinity, an object at the top."""
    try:
        value = json.loads(body, object_pairs_hook=_reject_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedBody(f"the event body is not valid JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        raise MalformedBody("the event body is nested too deeply") from None
    if not isinstance(value, dict):
        raise MalformedBody("the event body is not a JSON object")
    return value


def utf8(text: str, what: str) -> bytes:
    """``text`` as the UTF-8 bytes a sender signed; a body that cannot be those bytes is malformed."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedBody(f"the {what} is not valid UTF-8 (a lone surrogate or undecodable bytes)") from None


def decoded_digest(encoded: str, encoding: str, what: str) -> bytes:
    """The HMAC-SHA256 value a signature header carries, ``encoding`` ``base64`` or ``hex``; Rejected, naming
    ``what`` (e.g. "the X-MLflow-Signature header"), when it is neither well-formed nor 32 bytes."""
    try:
        digest = base64.b64decode(encoded, validate=True) if encoding == "base64" else bytes.fromhex(encoded)
    except (binascii.Error, ValueError):
        raise Rejected(f"{what} is malformed (not {encoding})") from None
    if len(digest) != hashlib.sha256().digest_size:
        raise Rejected(f"{what} is malformed (not an HMAC-SHA256 value)")
    return digest


def hmac_sha256_matches(secret: str, candidates: list[str], message: Callable[[str], bytes], expected: bytes) -> bool:
    """Whether HMAC-SHA256(secret, message(c)) is ``expected`` for one of the candidate bodies."""
    if not secret:
        # An empty key would make every signature computed with the empty key valid: never verify with one.
        raise StepError("no webhook secret is configured (the Secret value is empty): cannot verify signatures")
    key = secret.encode("utf-8")
    found = False
    for candidate in candidates:
        digest = hmac.new(key, message(candidate), hashlib.sha256).digest()
        # compare every candidate (no early exit) so timing does not tell which form matched
        found |= hmac.compare_digest(digest, expected)
    return found


def check_timestamp(timestamp: int | float, now: float, tolerance_seconds: int, *, what: str) -> None:
    """Refuse a timestamp further than ``tolerance_seconds`` from ``now``, in the past or in the future."""
    skew = now - timestamp
    if skew > tolerance_seconds:
        raise Rejected(
            f"{what} is {int(skew)} s old, beyond the {tolerance_seconds} s tolerance (stale or replayed delivery)"
        )
    if -skew > tolerance_seconds:
        raise Rejected(
            f"{what} is {int(-skew)} s in the future, beyond the {tolerance_seconds} s tolerance (check clocks)"
        )
