"""A scripted stand-in for Anthropic's Messages API, so the real Claude Code CLI can run here without a model.

The model cannot be reached from the tests (no internet, no key); everything else stays real: the CLI, its tools,
its permission checks, the files it edits. This server answers ``POST /v1/messages`` the way the public API does
with ``"stream": true`` (docs.anthropic.com, "Streaming Messages"): Server-Sent Events ``message_start``, per
content block ``content_block_start`` / ``content_block_delta`` (``text_delta`` or ``input_json_delta``) /
``content_block_stop``, then ``message_delta`` (``stop_reason`` ``tool_use`` or ``end_turn``, usage) and
``message_stop``; without streaming, the same message as one JSON object. ``POST /v1/messages/count_tokens``
answers an estimate.

The conversation is a **script**: a list of turns, each what the model says next. A turn is a list of blocks,
``text("...")`` or ``tool_use("Edit", {...})``. Which turn comes next is the number of ``tool_result`` blocks in
the request's messages (one per tool call answered so far), so a CLI that retries or re-sends the history gets the
same answer, and a script that ends keeps answering with its last turn (the CLI's own limits must stop it).
Every request is recorded (``requests``), with the tools the CLI offered and the tool results it sent back, which is
what tests assert on: what the CLI allowed, refused and did.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from hera_flows.local.standins.base import ApiError, Raw, RecordedRequest, Reply, StandIn

Block = dict[str, Any]
API_KEY_HEADER = "x-api-key"


def text(value: str) -> Block:
    """A text block the model says."""
    return {"type": "text", "text": value}


def tool_use(name: str, arguments: dict[str, Any]) -> Block:
    """A tool call the model makes (its id is assigned when it is sent)."""
    return {"type": "tool_use", "name": name, "input": arguments}


def sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def tool_results(body: Any) -> list[dict[str, Any]]:
    """The ``tool_result`` blocks of a Messages request, oldest first."""
    found: list[dict[str, Any]] = []
    for message in (body or {}).get("messages", []) if isinstance(body, dict) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            found.extend(c for c in content if isinstance(c, dict) and c.get("type") == "tool_result")
    return found


@dataclass
class AnthropicStandIn(StandIn):
    """``script``: the model's turns; ``api_key``: the key the CLI must send (``x-api-key``)."""

    script: Sequence[Sequence[Block]] = ()
    api_key: str = "sk-ant-standin-key"
    input_tokens: int = 120
    output_tokens: int = 40
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    thread_name = "anthropic-stand-in"

    def __post_init__(self) -> None:
        super().__init__()

    # --- what tests read -----------------------------------------------------------------------------------

    def message_requests(self) -> list[RecordedRequest]:
        return self.requests_to("POST", r"^/v1/messages$")

    def offered_tools(self) -> set[str]:
        """Every tool name the CLI offered the model in any request."""
        return {t.get("name", "") for r in self.message_requests() for t in (r.body or {}).get("tools", [])}

    def last_results(self) -> list[dict[str, Any]]:
        """The tool results the CLI sent with its last request (what happened to each call)."""
        requests = self.message_requests()
        return tool_results(requests[-1].body) if requests else []

    # --- the API ---------------------------------------------------------------------------------------------

    def respond(self, request: RecordedRequest) -> Reply:
        if request.headers.get(API_KEY_HEADER) != self.api_key and \
                request.headers.get("authorization") != f"Bearer {self.api_key}":
            raise ApiError(401, "invalid x-api-key", payload={
                "type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}})
        if request.method != "POST":
            raise ApiError(404, "not found", payload={"type": "error", "error": {
                "type": "not_found_error", "message": f"{request.method} {request.path}"}})
        body = request.body if isinstance(request.body, dict) else {}
        if request.path == "/v1/messages/count_tokens":
            return 200, {"input_tokens": self.input_tokens}, {}
        if request.path != "/v1/messages":
            raise ApiError(404, "not found", payload={"type": "error", "error": {
                "type": "not_found_error", "message": request.path}})
        if not self.script:
            raise ApiError(500, "the stand-in has no script")
        turn = self.script[min(len(tool_results(body)), len(self.script) - 1)]
        blocks = [dict(b, id=f"toolu_{next(self.ids):04d}") if b["type"] == "tool_use" else dict(b) for b in turn]
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        message = {"id": f"msg_{next(self.ids):04d}", "type": "message", "role": "assistant",
                   "model": body.get("model", ""), "content": blocks, "stop_reason": stop, "stop_sequence": None,
                   "usage": {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}}
        if not body.get("stream"):
            return 200, message, {}
        return 200, Raw(b"".join(self._events(message)), "text/event-stream"), {}

    def _events(self, message: dict[str, Any]) -> Iterator[bytes]:
        start = dict(message, content=[], stop_reason=None,
                     usage={"input_tokens": self.input_tokens, "output_tokens": 1})
        yield sse("message_start", {"type": "message_start", "message": start})
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                yield sse("content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": {"type": "text", "text": ""}})
                yield sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                  "delta": {"type": "text_delta", "text": block["text"]}})
            else:
                yield sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": {
                    "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
                yield sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": {
                    "type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
            yield sse("content_block_stop", {"type": "content_block_stop", "index": index})
        yield sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                                    "usage": {"output_tokens": self.output_tokens}})
        yield sse("message_stop", {"type": "message_stop"})
