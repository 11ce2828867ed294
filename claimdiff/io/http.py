"""A small HTTP/1.1 client with a deadline for the whole request, a byte limit and a host policy.

`urllib`'s timeout bounds each socket operation, not the request: a server that trickles a byte
every few seconds holds a request for ever. Here one deadline covers connecting, sending, the
status line and headers, and the body: a watchdog shuts the socket down when it passes, which
ends any read blocked on it at once, and the body is read in pieces with the time checked
between them. The body is refused past `max_bytes` without reading the rest.

With a `HostPolicy` (URLs from untrusted data: image URIs), the host is resolved and vetted
first and the connection goes to the vetted address (TLS still checks the certificate against
the host name), so a DNS answer cannot change between the check and the connection; every
redirect hop is vetted the same way, up to `max_redirects`. Such requests never go through a
proxy (a proxy would make the check meaningless). Without a policy (the operator's own endpoint:
the judge server), the environment's proxy settings apply as in `urllib`, and loopback is never
proxied.

Only the standard library is used.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import ssl
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import Message

from claimdiff.errors import (
    DeadlineExceededError,
    HostRefusedError,
    ResponseTooLargeError,
    TransportError,
)
from claimdiff.io.hosts import HostPolicy, is_loopback

_CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)


@dataclass(frozen=True)
class Response:
    status: int
    headers: Message
    body: bytes
    url: str


class _Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = clock() + seconds

    def left(self) -> float:
        remaining = self._end - self._clock()
        if remaining <= 0:
            raise DeadlineExceededError(f"timed out after {self.seconds:g} s")
        return remaining


class _Pinned(http.client.HTTPConnection):
    """An HTTP connection to a vetted address, whatever the host name resolves to now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedTLS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str, timeout: float,
                 context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address
        self._tls_context = context

    def connect(self) -> None:
        raw = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._tls_context.wrap_socket(raw, server_hostname=self.host)


def _connection(url: urllib.parse.SplitResult, timeout: float, policy: HostPolicy | None
                ) -> http.client.HTTPConnection:
    host = url.hostname or ""
    tls = url.scheme == "https"
    port = url.port or (443 if tls else 80)
    if policy is not None:
        address = policy.vet(host, port)[0]
        if tls:
            return _PinnedTLS(host, port, address, timeout, ssl.create_default_context())
        return _Pinned(host, port, address, timeout)
    proxy = None if is_loopback(host) or urllib.request.proxy_bypass(host) else \
        urllib.request.getproxies().get(url.scheme)
    if proxy:
        target = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        connection: http.client.HTTPConnection = (
            http.client.HTTPSConnection if tls else http.client.HTTPConnection)(
            target.hostname or "", target.port or 8080, timeout=timeout)
        connection.set_tunnel(host, port)
        return connection
    if tls:
        return http.client.HTTPSConnection(host, port, timeout=timeout)
    return http.client.HTTPConnection(host, port, timeout=timeout)


def request(
    method: str,
    url: str,
    *,
    deadline_s: float,
    max_bytes: int,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    policy: HostPolicy | None = None,
    max_redirects: int = 0,
    clock: Callable[[], float] = time.monotonic,
) -> Response:
    """One request and its whole body, within `deadline_s` seconds and `max_bytes` bytes.

    Raises `DeadlineExceededError`, `ResponseTooLargeError`, `HostRefusedError` (nothing was
    sent) or `TransportError`; an HTTP error status is a `Response`, not an exception.
    """
    deadline = _Deadline(deadline_s, clock)
    for _ in range(max_redirects + 1):
        response = _once(method, url, body, headers or {}, deadline, max_bytes, policy)
        if response.status not in _REDIRECTS or max_redirects == 0:
            return response
        location = response.headers.get("Location")
        if not location:
            return response
        url = urllib.parse.urljoin(url, location)
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise HostRefusedError(f"a redirect leads to a URL that is not http(s): {url[:200]}")
        if response.status == 303 or (response.status in (301, 302) and method == "POST"):
            method, body = "GET", None
    raise TransportError(f"more than {max_redirects} redirects")


def _once(method: str, url: str, body: bytes | None, headers: Mapping[str, str],
          deadline: _Deadline, max_bytes: int, policy: HostPolicy | None) -> Response:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise TransportError(f"not an http(s) URL: {parts.scheme}://")
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    connection = _connection(parts, deadline.left(), policy)
    watchdog: threading.Timer | None = None
    expired = threading.Event()
    # Held here: http.client hands the socket to the response (and drops its own reference)
    # when the server will close the connection after it.
    sockets: list[socket.socket] = []

    def expire() -> None:
        expired.set()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    try:
        try:
            connection.connect()
            assert connection.sock is not None
            sockets.append(connection.sock)
            watchdog = threading.Timer(deadline.left(), expire)
            watchdog.daemon = True
            watchdog.start()
            connection.request(method, target, body=body, headers=dict(headers))
            response = connection.getresponse()
            length = response.getheader("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise ResponseTooLargeError(
                    f"the response is {int(length)} bytes, over the limit of {max_bytes}")
            pieces: list[bytes] = []
            size = 0
            while True:
                sockets[0].settimeout(deadline.left())
                piece = response.read1(_CHUNK)
                if not piece:
                    break
                size += len(piece)
                if size > max_bytes:
                    raise ResponseTooLargeError(
                        f"the response is larger than the limit of {max_bytes} bytes")
                pieces.append(piece)
            deadline.left()
            return Response(response.status, response.headers, b"".join(pieces), url)
        except (OSError, http.client.HTTPException) as exc:
            if expired.is_set() or isinstance(exc, TimeoutError):
                raise DeadlineExceededError(f"timed out after {deadline.seconds:g} s") from exc
            raise TransportError(f"{type(exc).__name__}: {exc}"[:300]) from exc
    finally:
        if watchdog is not None:
            watchdog.cancel()
        connection.close()
