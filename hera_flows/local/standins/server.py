"""The loopback HTTP server every stand-in runs on: a free port on 127.0.0.1, one thread per request, a
listen queue deep enough for concurrent clients (the default 5 resets connections a real server would
accept), and teardown that never waits for a handler that is deliberately slow."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128


def bind(handler: type[BaseHTTPRequestHandler] | None = None) -> LoopbackServer:
    """A server bound to a free loopback port (its URL is known before it serves); set
    ``RequestHandlerClass`` later when the handler needs that URL."""
    return LoopbackServer(("127.0.0.1", 0), handler)  # type: ignore[arg-type]


def url_of(server: LoopbackServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def serve(server: LoopbackServer, name: str) -> Callable[[], None]:
    """Serve in a daemon thread; returns the function that stops the server and waits for the thread."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=name, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)

    return stop
