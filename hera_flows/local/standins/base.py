"""The one base every HTTP stand-in builds on, so that they all record requests and inject failures the same way.

A stand-in is a real HTTP server on a free 127.0.0.1 port (``server``) whose answers come from
``StandIn.respond``. The base reads each request, records it in ``requests`` (one ``RecordedRequest`` each, with
``requests_to(method, path_regex)`` to pick them), answers with a failure injected by
``fail(method, path_regex, status, times=, body=, headers=)`` instead when one matches, turns an ``ApiError``
raised while answering into the service's error body, and writes the reply. A reply is ``(status, payload,
extra headers)``; the payload is JSON (``None``: no body), ``Raw`` bytes with their content type, a ``Stream``
of chunks (the body ends when the connection closes, like a streamed log), or ``DROP`` (the connection closes
unanswered: a response lost on the way).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler
from types import TracebackType
from typing import Any, ClassVar, TypeVar
from urllib.parse import parse_qs, urlsplit

from hera_flows.local.standins import server

Reply = tuple[int, Any, dict[str, str]]  # status, payload, extra response headers
S = TypeVar("S", bound="StandIn")


def timestamp(*, millis: bool = False) -> str:
    """Now in UTC as RFC 3339 with a ``Z`` (``2026-11-22T09:00:07Z``; ``...07.123Z`` with ``millis``)."""
    now = datetime.now(timezone.utc)
    return now.isoformat(timespec="milliseconds" if millis else "seconds").replace("+00:00", "Z")


class Headers(Mapping[str, str]):
    """Request headers under lower-case names; look-ups ignore case (``headers["Content-Type"]``)."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = {name.lower(): value for name, value in items}

    def __getitem__(self, name: str) -> str:
        return self._items[name.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


@dataclass
class RecordedRequest:
    method: str
    path: str  # as the stand-in routes it: without its API prefix and without the query (still URL-encoded)
    query: dict[str, list[str]]
    headers: Headers
    body: Any  # the JSON body decoded; its text when it is not JSON; None when there is none
    raw: bytes = b""

    def json(self) -> Any:
        return json.loads(self.raw)


@dataclass
class InjectedFailure:
    method: str
    path: re.Pattern[str]
    status: int
    body: Any
    headers: dict[str, str]
    remaining: int


class ApiError(Exception):
    """An error answer: ``status`` and the service's ``message`` (``errors``, ``reason`` and ``name`` for the
    services that say more); ``payload``, when given, is the exact body to answer."""

    def __init__(self, status: int, message: Any, errors: list[dict[str, Any]] | None = None, *,
                 reason: str = "", name: str | None = None, payload: Any = None) -> None:
        super().__init__(str(message))
        self.status, self.message, self.errors = status, message, errors
        self.reason, self.name, self.payload = reason, name, payload


@dataclass(frozen=True)
class Raw:
    """A reply body sent as is."""

    data: bytes
    content_type: str


def _ignore(total: int) -> None:
    pass


@dataclass
class Stream:
    """A reply body written chunk by chunk and ended by closing the connection; ``sent`` learns the running
    total of bytes written after each chunk (a client that stops reading ends the stream)."""

    content_type: str
    chunks: Iterable[bytes]
    sent: Callable[[int], None] = _ignore


class Dropped:
    """The reply payload that closes the connection without an answer."""


DROP = Dropped()


class StandIn:
    """Requests, failure injection, the server and its lifecycle. Subclasses implement ``respond`` and, as their
    service needs, ``api_path``, ``error_reply`` and ``failure_body``."""

    content_type: ClassVar[str] = "application/json"
    extra_headers: ClassVar[Mapping[str, str]] = {}  # sent with every answer
    keep_blank_values: ClassVar[bool] = False  # of the query string
    serialized: ClassVar[bool] = True  # answer one request at a time, under ``lock``
    thread_name: ClassVar[str] = "stand-in"

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.failures: list[InjectedFailure] = []
        self.lock = threading.RLock()
        self._server = server.bind(json_handler(self))
        self._stop: Callable[[], None] = lambda: None

    # --- lifecycle ---------------------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, known before the server starts."""
        return server.url_of(self._server)

    @property
    def url(self) -> str:
        """What a client is given (subclasses add their API prefix)."""
        return self.base_url

    def start(self: S) -> S:
        self._stop = server.serve(self._server, self.thread_name)
        return self

    def stop(self) -> None:
        stop, self._stop = self._stop, lambda: None
        stop()

    def __enter__(self: S) -> S:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    # --- test helpers ------------------------------------------------------------------------------------------

    def fail(self, method: str, path_regex: str, status: int, *, times: int = 1, body: Any = None,
             headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests whose path ``re.search``-matches with ``status`` (and ``body``,
        by default the service's own error body for that status)."""
        if body is None:
            body = self.failure_body(status)
        with self.lock:
            self.failures.append(
                InjectedFailure(method.upper(), re.compile(path_regex), status, body, dict(headers or {}), times))

    def clear_failures(self) -> None:
        """Forget the failures ``fail`` injected that have not been used up (the outage is over)."""
        with self.lock:
            self.failures.clear()

    def requests_to(self, method: str, path_regex: str = "") -> list[RecordedRequest]:
        """Recorded requests with ``method`` whose path ``re.search``-matches (anchor with ``$`` as needed)."""
        pattern = re.compile(path_regex)
        with self.lock:
            return [r for r in self.requests if r.method == method.upper() and pattern.search(r.path)]

    # --- hooks for the subclasses ------------------------------------------------------------------------------

    def respond(self, request: RecordedRequest) -> Reply:
        """The answer to ``request`` (raise ``ApiError`` for an error answer)."""
        raise NotImplementedError

    def api_path(self, path: str) -> str:
        """The path as recorded and routed (e.g. without the API prefix); raise ``ApiError`` to answer a path
        outside the API without recording it."""
        return path

    def decode_body(self, raw: bytes) -> Any:
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            return raw.decode("utf-8", "replace")

    def error_reply(self, error: ApiError) -> Reply:
        return error.status, error.payload if error.payload is not None else {"message": error.message}, {}

    def failure_body(self, code: int) -> Any:
        return {"message": "Server Error"} if code >= 500 else {"message": f"HTTP {code}"}

    def clock(self) -> float:
        """The server's time (its ``Date`` headers)."""
        return time.time()

    # --- the request path --------------------------------------------------------------------------------------

    def handle(self, method: str, raw_path: str, headers: Iterable[tuple[str, str]], raw: bytes) -> Reply:
        """Record the request, then answer an injected failure or ``respond``."""
        parts = urlsplit(raw_path)
        try:
            path = self.api_path(parts.path)
        except ApiError as error:
            return self.error_reply(error)
        method = method.upper()
        request = RecordedRequest(method, path, parse_qs(parts.query, keep_blank_values=self.keep_blank_values),
                                  Headers(headers), self.decode_body(raw), raw)
        with self.lock:
            self.requests.append(request)
            for failure in self.failures:
                if failure.remaining > 0 and failure.method == method and failure.path.search(path):
                    failure.remaining -= 1
                    return failure.status, failure.body, dict(failure.headers)
            if self.serialized:
                return self._respond(request)
        return self._respond(request)

    def _respond(self, request: RecordedRequest) -> Reply:
        try:
            return self.respond(request)
        except ApiError as error:
            return self.error_reply(error)


def json_handler(api: StandIn) -> type[BaseHTTPRequestHandler]:
    """The request handler class of ``api``'s server: read the body, ``api.handle`` it, write the reply."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are separate writes: avoid 40 ms delayed-ACK stalls

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output clean
            pass

        def date_time_string(self, timestamp: float | None = None) -> str:
            return formatdate(api.clock() if timestamp is None else timestamp, usegmt=True)

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, payload, headers = api.handle(self.command, self.path, self.headers.items(), raw)
            if isinstance(payload, Dropped):
                self.close_connection = True
                return
            if isinstance(payload, Stream):
                self._stream(status, payload, headers)
                return
            if isinstance(payload, Raw):
                data, content_type = payload.data, payload.content_type
            else:
                data, content_type = b"" if payload is None else json.dumps(payload).encode(), api.content_type
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in {**api.extra_headers, **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        def _stream(self, status: int, stream: Stream, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", stream.content_type)
            self.send_header("Connection", "close")  # the body ends when the connection closes
            for name, value in {**api.extra_headers, **headers}.items():
                self.send_header(name, value)
            self.end_headers()
            sent = 0
            try:
                for chunk in stream.chunks:
                    if chunk:
                        self.wfile.write(chunk)
                        sent += len(chunk)
                        stream.sent(sent)
            except (BrokenPipeError, ConnectionResetError):
                pass
            self.close_connection = True

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    return Handler
