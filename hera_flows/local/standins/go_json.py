"""What Argo Events (Go) does to a webhook request before a workflow sees it, reproduced for the demo and the tests
(the webhook EventSource itself cannot run on a laptop).

The webhook EventSource builds ``json.Marshal(WebhookEventData{Header: request.Header, Body: &rawBody,
Metadata: ...})`` (argo-events ``pkg/eventsources/sources/webhook/start.go``). Go's ``encoding/json``:

- writes a ``json.RawMessage`` through ``appendCompact(dst, src, escapeHTML=true)`` (``encode.go``,
  ``indent.go``): whitespace outside strings is dropped; the bytes ``<``, ``>``, ``&`` become ``\\u003c``,
  ``\\u003e``, ``\\u0026`` and the UTF-8 sequences of U+2028/U+2029 become ``\\u2028``/``\\u2029``; nothing else in
  the body changes (escapes, numbers and key order stay as sent); invalid JSON is an error;
- writes strings (header names and values) with ``appendString(..., escapeHTML=true)``;
- writes a map (``http.Header``) with its keys sorted.

``net/http`` canonicalises header names (``textproto.CanonicalMIMEHeaderKey``), keeps every value in a list,
and moves ``Host`` out of the header map. With ``authSecret`` set, the EventSource replaces the Authorization
value by ``*** Masked Auth Secret ***`` (``pkg/eventsources/common/webhook/webhook.go``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from hera_flows.steps.event_data import canonical_header

_HEX = "0123456789abcdef"
_WHITESPACE = b" \t\r\n"
MASKED_AUTHORIZATION = "*** Masked Auth Secret ***"


def _reject_constant(name: str) -> None:
    raise ValueError(f"Go's JSON scanner rejects {name}")


def go_compact(body: str | bytes, *, escape_html: bool = True) -> str:
    """``appendCompact(nil, body, escape_html)`` from Go's encoding/json, on the UTF-8 bytes of ``body``."""
    src = body.encode("utf-8") if isinstance(body, str) else body
    json.loads(src, parse_constant=_reject_constant)  # Go's scanner fails the same inputs (NaN, trailing data, ...)
    dst = bytearray()
    in_string = False
    escaped = False
    i = 0
    while i < len(src):
        c = src[i]
        if escape_html and c in b"<>&":
            dst += b"\\u00" + _HEX[c >> 4].encode() + _HEX[c & 0xF].encode()
            i += 1
            escaped = False
            continue
        if escape_html and c == 0xE2 and i + 2 < len(src) and src[i + 1] == 0x80 and src[i + 2] & ~1 == 0xA8:
            dst += b"\\u202" + _HEX[src[i + 2] & 0xF].encode()
            i += 3
            continue
        if in_string:
            if escaped:
                escaped = False
            elif c == ord("\\"):
                escaped = True
            elif c == ord('"'):
                in_string = False
            dst.append(c)
        elif c in _WHITESPACE:
            pass
        else:
            if c == ord('"'):
                in_string = True
            dst.append(c)
        i += 1
    return dst.decode("utf-8")


def go_string(value: str) -> str:
    """A Go-encoded JSON string (``appendString`` with escapeHTML, Go 1.22+)."""
    out = ['"']
    for ch in value:
        code = ord(ch)
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif code < 0x20 or ch in "<>&":
            out.append(f"\\u00{_HEX[code >> 4]}{_HEX[code & 0xF]}")
        elif ch in "\u2028\u2029":
            out.append(f"\\u202{_HEX[code & 0xF]}")
        elif 0xD800 <= code <= 0xDFFF:  # a lone surrogate is invalid UTF-8 in Go: RuneError
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def go_header(pairs: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    """The ``http.Header`` Go's server builds from raw header lines (``Host`` is moved out of it), after the
    EventSource masked a non-empty Authorization (``request.Header.Set``: a single value)."""
    header: dict[str, list[str]] = {}
    for key, value in pairs:
        name = canonical_header(key)  # textproto.CanonicalMIMEHeaderKey
        if name == "Host":
            continue
        header.setdefault(name, []).append(value)
    if header.get("Authorization", [""])[0] != "":
        header["Authorization"] = [MASKED_AUTHORIZATION]
    return header


def argo_event_data(
    headers: Iterable[tuple[str, str]] | dict[str, str],
    body: str | bytes,
    metadata: dict[str, str] | None = None,
) -> str:
    """The event data of an Argo Events webhook event, byte for byte as Go marshals it."""
    pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
    header = go_header(pairs)
    header_json = "{" + ",".join(
        go_string(name) + ":[" + ",".join(go_string(v) for v in header[name]) + "]" for name in sorted(header)
    ) + "}"
    parts = ['"header":' + header_json, '"body":' + go_compact(body)]
    if metadata:  # `json:"metadata,omitempty"`
        parts.append('"metadata":{' + ",".join(go_string(k) + ":" + go_string(metadata[k]) for k in sorted(metadata))
                     + "}")
    return "{" + ",".join(parts) + "}"


def argo_delivered(headers: Iterable[tuple[str, str]] | dict[str, str], body: str | bytes) -> dict[str, str]:
    """The promotion Sensor's trigger parameters for this request (``dataKey`` lookups on the event data, read
    with the project's gjson emulation): the body as the workflow receives it and the signature headers."""
    from hera_flows.local.sensor import gjson_string

    data = argo_event_data(headers, body)

    def value(path: str) -> str:
        return gjson_string(data, path) or ""

    return {
        "event-body": value("body"),
        "signature": value("header.X-Mlflow-Signature.0"),
        "delivery-id": value("header.X-Mlflow-Delivery-Id.0"),
        "timestamp": value("header.X-Mlflow-Timestamp.0"),
        "databricks-signature": value("header.X-Databricks-Signature.0"),
    }
