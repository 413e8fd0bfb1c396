"""The network side of the fake Yahoo: one port on 127.0.0.1 that is both

- an HTTPS forward proxy: `CONNECT <x>.yahoo.com:443` is answered by the fake itself, which
  terminates TLS with a certificate of its test CA and then reads HTTP/1.1 requests from the
  tunnel (keep-alive, many requests per tunnel, like curl does); there is no upstream;
- a plain HTTP server: `GET /v8/finance/chart/AAPL?...` straight to the port is served as if
  sent to query2.finance.yahoo.com (or to the Yahoo host named by the Host header).

Each request is handed to `app(Request) -> Response`; a response marked `drop` gets its headers
and half its body, then the connection is cut.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from tests.support.fake_yahoo.responses import Response

DEFAULT_HOST = "query2.finance.yahoo.com"
SERVED_DOMAIN = "yahoo.com"


@dataclass(frozen=True)
class Request:
    method: str
    host: str
    path: str
    #: Query parameters (the last value of a repeated name wins).
    params: dict[str, str]
    headers: dict[str, str]
    body: bytes
    tls: bool


def _is_yahoo(host: str) -> bool:
    return host == SERVED_DOMAIN or host.endswith("." + SERVED_DOMAIN)


class ProxyServer:
    def __init__(
        self,
        app: Callable[[Request], Response],
        tls: ssl.SSLContext,
        on_refused: Callable[[str], None],
    ) -> None:
        self.app = app
        self.tls = tls
        self.on_refused = on_refused
        self.errors: list[str] = []
        self._server = _TCPServer(self)
        self._thread: threading.Thread | None = None
        self._live: set[socket.socket] = set()
        self._lock = threading.Lock()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-yahoo",
            daemon=True,
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            live = list(self._live)
            self._live.clear()
        for sock in live:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)

    def track(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.add(sock)

    def untrack(self, sock: socket.socket) -> None:
        with self._lock:
            self._live.discard(sock)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, owner: ProxyServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):  # includes ssl.SSLError, resets, timeouts
            return
        self.owner.errors.append(traceback.format_exc())


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 60.0
    tunnel_host: str | None = None

    @property
    def owner(self) -> ProxyServer:
        return cast(_TCPServer, self.server).owner

    def setup(self) -> None:
        super().setup()
        self.tunnel_host = None
        self.owner.track(self.connection)

    def finish(self) -> None:
        try:
            with contextlib.suppress(OSError):
                super().finish()
        finally:
            self.owner.untrack(self.connection)
            if isinstance(self.connection, ssl.SSLSocket):
                with contextlib.suppress(OSError):
                    self.connection.close()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_CONNECT(self) -> None:
        host, _, port = self.path.rpartition(":")
        if self.tunnel_host is not None or not _is_yahoo(host) or port != "443":
            self.owner.on_refused(self.path)
            self.send_error(403, "The fake Yahoo has no upstream: only *.yahoo.com:443")
            self.close_connection = True
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        self.rfile.close()
        raw = self.connection
        try:
            tls = self.owner.tls.wrap_socket(raw, server_side=True)
        except (OSError, ValueError):
            self.close_connection = True
            return
        self.owner.untrack(raw)
        self.owner.track(tls)
        self.connection = tls
        self.rfile = tls.makefile("rb")
        self.wfile = tls.makefile("wb")
        self.tunnel_host = host
        self.close_connection = False

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def _serve(self) -> None:
        split = urlsplit(self.path)
        if split.scheme in ("http", "https"):
            host = split.hostname or ""
        elif self.tunnel_host is not None:
            host = self.tunnel_host
        else:
            named = urlsplit("//" + (self.headers.get("Host") or "")).hostname or ""
            host = named if _is_yahoo(named) else DEFAULT_HOST
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = Request(
            method=self.command,
            host=host.lower(),
            path=split.path or "/",
            params=dict(parse_qsl(split.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            tls=self.tunnel_host is not None,
        )
        try:
            response = self.owner.app(request)
        except Exception:
            self.owner.errors.append(traceback.format_exc())
            response = Response(500, b"fake Yahoo internal error", "text/plain")
        self._send(response)

    def _send(self, response: Response) -> None:
        self.send_response(response.status, response.reason)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if response.drop:
            self.wfile.write(response.body[: len(response.body) // 2])
            self.wfile.flush()
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        if self.command != "HEAD":
            self.wfile.write(response.body)
