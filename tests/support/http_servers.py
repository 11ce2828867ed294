"""Real HTTP servers on loopback for the network tests: they serve, redirect and trickle."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@contextlib.contextmanager
def serve(routes: dict[str, Callable[[BaseHTTPRequestHandler], None]]) -> Iterator[str]:
    """A threading HTTP server on 127.0.0.1; yields its base URL. Unknown paths answer 404."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                self.send_error(404)
                return
            route(self)

        do_POST = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def body(data: bytes, status: int = 200, content_type: str = "image/png"
         ) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    return answer


def redirect(location: str, status: int = 302) -> Callable[[BaseHTTPRequestHandler], None]:
    def answer(handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(status)
        handler.send_header("Location", location)
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    return answer


def trickle(every_s: float, *, in_headers: bool = False
            ) -> Callable[[BaseHTTPRequestHandler], None]:
    """A response that never ends: one byte every `every_s` seconds, in the body (or in the
    headers), each byte well inside any per-read timeout."""

    def answer(handler: BaseHTTPRequestHandler) -> None:
        try:
            if in_headers:
                handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while True:
                    handler.wfile.write(b"a")
                    handler.wfile.flush()
                    time.sleep(every_s)
            handler.send_response(200)
            handler.send_header("Content-Length", str(10**6))
            handler.end_headers()
            while True:
                handler.wfile.write(b"x")
                handler.wfile.flush()
                time.sleep(every_s)
        except OSError:
            pass  # the client hung up, as it should

    return answer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
