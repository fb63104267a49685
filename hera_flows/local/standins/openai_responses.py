"""A scripted stand-in for the OpenAI Responses API, so a real coding-agent CLI (Codex) can run headless offline.

There is no model in the agent container: this server on 127.0.0.1 answers ``POST /v1/responses`` (streamed as
server-sent events, the way Codex asks for it) from a script, one ``Turn`` per model call. A turn is what the
"model" says that time: a function call (``FunctionCall``, e.g. Codex's ``exec_command``), a freeform tool call
(``CustomToolCall``, e.g. Codex's ``apply_patch``, which takes the patch text itself), or a final assistant text
(``Message``); a turn may hold several items (parallel calls).

Which turn to play is worked out from the tool results in the request's ``input`` (``function_call_output`` and
``custom_tool_call_output`` items), never from message counts: every call id the stand-in hands out names its
turn (``call_t<turn>_<item>``), so a request carrying the output of turn ``n`` gets turn ``n + 1``. A request
without any of our outputs gets turn 0; past the end of the script the stand-in ends the conversation with a
``Message`` saying so (``exhausted`` counts those), so a confused client cannot loop forever.

The events follow platform.openai.com/docs/api-reference/responses-streaming: ``response.created``,
``response.in_progress``, then per output item ``response.output_item.added``, its deltas
(``response.output_text.delta`` inside ``response.content_part.added/done``,
``response.function_call_arguments.delta/done``, ``response.custom_tool_call_input.delta/done``),
``response.output_item.done``, and last ``response.completed`` with ``usage``. ``GET /v1/models`` lists the
scripted model; any other path is answered 404 with OpenAI's error body and kept in ``unknown`` (so a new
client call shows up in a test). Requests are recorded and failures injected as for every stand-in
(``base.StandIn``); an ``api_key``, when given, is checked like OpenAI does (401 ``invalid_api_key``).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from hera_flows.local.standins.base import ApiError, RecordedRequest, Reply, StandIn, Stream

DEFAULT_MODEL = "gpt-5.5"  # a slug in Codex 0.171's bundled model catalog: it then offers its apply_patch tool
OUTPUT_TYPES = ("function_call_output", "custom_tool_call_output")
_CALL_ID = re.compile(r"call_t(\d+)_\d+")


@dataclass(frozen=True)
class FunctionCall:
    """A JSON-arguments tool call (``type: function`` in the request's ``tools``)."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class CustomToolCall:
    """A freeform tool call (``type: custom``): the tool gets ``input`` as is (Codex's ``apply_patch``)."""

    name: str
    input: str


@dataclass(frozen=True)
class Message:
    """A final assistant text: with no call in the turn the client's turn ends."""

    text: str


Item = FunctionCall | CustomToolCall | Message
Turn = Item | Sequence[Item]
ITEM_TYPES = (FunctionCall, CustomToolCall, Message)


def sse(event: dict[str, Any]) -> bytes:
    """One server-sent event named after its ``type``, as the Responses API streams them."""
    return f"event: {event['type']}\ndata: {json.dumps(event)}\n\n".encode()


def tool_outputs(request: RecordedRequest) -> list[dict[str, Any]]:
    """The tool results a client sent back in ``request`` (what the tools answered the "model")."""
    body = request.body if isinstance(request.body, dict) else {}
    items = body.get("input")
    if not isinstance(items, list):
        return []
    return [i for i in items if isinstance(i, dict) and i.get("type") in OUTPUT_TYPES]


class ResponsesStandIn(StandIn):
    """``url`` (``http://127.0.0.1:<port>/v1``) is the ``base_url`` of a client's model provider."""

    thread_name: ClassVar[str] = "ResponsesStandIn"

    def __init__(self, script: Sequence[Turn], *, model: str = DEFAULT_MODEL, api_key: str | None = None) -> None:
        super().__init__()
        self.script: list[list[Item]] = [[t] if isinstance(t, ITEM_TYPES) else list(t) for t in script]
        self.model = model
        self.api_key = api_key
        self.unknown: list[RecordedRequest] = []
        self.played: list[int] = []  # the turn index answered to each /responses request, in order
        self.exhausted = 0

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1"

    def responses(self) -> list[RecordedRequest]:
        return self.requests_to("POST", r"^/v1/responses$")

    # --- request handling (hooks of base.StandIn) ----------------------------------------------------------

    def error_reply(self, error: ApiError) -> Reply:
        if error.payload is not None:
            return error.status, error.payload, {}
        return error.status, {"error": {"message": str(error.message), "type": error.reason or "invalid_request_error",
                                        "param": None, "code": error.name}}, {}

    def failure_body(self, code: int) -> Any:
        kind = "rate_limit_exceeded" if code == 429 else "server_error" if code >= 500 else "invalid_request_error"
        return {"error": {"message": f"HTTP {code} (injected)", "type": kind, "param": None, "code": kind}}

    def respond(self, request: RecordedRequest) -> Reply:
        self._authenticate(request.headers.get("authorization", ""))
        if request.method == "POST" and request.path == "/v1/responses":
            return self._respond_stream(request)
        if request.method == "GET" and request.path == "/v1/models":
            return 200, {"object": "list", "data": [self._model_json()]}, {}
        if request.method == "GET" and request.path == f"/v1/models/{self.model}":
            return 200, self._model_json(), {}
        self.unknown.append(request)
        raise ApiError(404, f"Invalid URL ({request.method} {request.path})", name="unknown_url")

    def _authenticate(self, authorization: str) -> None:
        if self.api_key is None:
            return
        scheme, _, credential = authorization.partition(" ")
        if scheme.lower() != "bearer" or credential != self.api_key:
            raise ApiError(401, "Incorrect API key provided.", name="invalid_api_key")

    def _model_json(self) -> dict[str, Any]:
        return {"id": self.model, "object": "model", "created": 1_700_000_000, "owned_by": "stand-in"}

    def turn_of(self, request: RecordedRequest) -> int:
        """The scripted turn ``request`` asks for: one past the latest turn whose tool results it carries."""
        turns = [int(m.group(1)) for o in tool_outputs(request)
                 if (m := _CALL_ID.fullmatch(str(o.get("call_id", ""))))]
        return max(turns) + 1 if turns else 0

    def _respond_stream(self, request: RecordedRequest) -> Reply:
        body = request.body if isinstance(request.body, dict) else {}
        if not body.get("stream"):
            raise ApiError(400, "This stand-in only answers streamed responses (stream: true).")
        turn = self.turn_of(request)
        self.played.append(turn)
        if turn < len(self.script):
            items = self.script[turn]
        else:
            self.exhausted += 1
            items = [Message(f"(stand-in: the script has {len(self.script)} turns; nothing for turn {turn})")]
        model = str(body.get("model") or self.model)
        return 200, Stream("text/event-stream", self._events(turn, items, model)), {}

    # --- the event stream ----------------------------------------------------------------------------------

    def _events(self, turn: int, items: list[Item], model: str) -> Iterator[bytes]:
        response_id = f"resp_t{turn}_{int(time.time() * 1000)}"
        sequence = iter(range(10**9))
        shell = {"id": response_id, "object": "response", "created_at": int(time.time()), "model": model,
                 "status": "in_progress", "output": [], "usage": None}

        def event(kind: str, **fields: Any) -> bytes:
            return sse({"type": kind, "sequence_number": next(sequence), **fields})

        yield event("response.created", response=shell)
        yield event("response.in_progress", response=shell)
        done: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            final = self._item_json(turn, index, item)
            done.append(final)
            yield from self._item_events(event, index, item, final)
        usage = {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 20,
                 "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 120}
        yield event("response.completed", response={**shell, "status": "completed", "output": done, "usage": usage})

    @staticmethod
    def _item_json(turn: int, index: int, item: Item) -> dict[str, Any]:
        call_id = f"call_t{turn}_{index}"
        if isinstance(item, FunctionCall):
            return {"type": "function_call", "id": f"fc_t{turn}_{index}", "call_id": call_id, "name": item.name,
                    "arguments": json.dumps(item.arguments), "status": "completed"}
        if isinstance(item, CustomToolCall):
            return {"type": "custom_tool_call", "id": f"ctc_t{turn}_{index}", "call_id": call_id, "name": item.name,
                    "input": item.input, "status": "completed"}
        return {"type": "message", "id": f"msg_t{turn}_{index}", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": item.text, "annotations": []}]}

    @staticmethod
    def _item_events(event: Any, index: int, item: Item, final: dict[str, Any]) -> Iterator[bytes]:
        at = {"item_id": final["id"], "output_index": index}
        if isinstance(item, FunctionCall):
            yield event("response.output_item.added", output_index=index,
                        item={**final, "arguments": "", "status": "in_progress"})
            yield event("response.function_call_arguments.delta", **at, delta=final["arguments"])
            yield event("response.function_call_arguments.done", **at, arguments=final["arguments"])
        elif isinstance(item, CustomToolCall):
            yield event("response.output_item.added", output_index=index,
                        item={**final, "input": "", "status": "in_progress"})
            yield event("response.custom_tool_call_input.delta", **at, delta=item.input)
            yield event("response.custom_tool_call_input.done", **at, input=item.input)
        else:
            part = {"type": "output_text", "text": "", "annotations": []}
            yield event("response.output_item.added", output_index=index,
                        item={**final, "status": "in_progress", "content": []})
            yield event("response.content_part.added", **at, content_index=0, part=part)
            yield event("response.output_text.delta", **at, content_index=0, delta=item.text, logprobs=[])
            yield event("response.output_text.done", **at, content_index=0, text=item.text, logprobs=[])
            yield event("response.content_part.done", **at, content_index=0, part={**part, "text": item.text})
        yield event("response.output_item.done", output_index=index, item=final)
