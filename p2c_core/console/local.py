"""`p2c console`: the console on 127.0.0.1 only, for whoever runs it (an operator)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from p2c_core.console.api import Request, handle
from p2c_core.console.auth import local_principal

HOST = "127.0.0.1"  # never another interface: local use is trusted without a sign-in


class _Handler(BaseHTTPRequestHandler):
    server_version = "p2c-console"

    def _answer(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=parts.path.lstrip("/"),
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
        )
        principal = local_principal()
        response = handle(request, lambda _: principal)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:  # quiet: the CLI says where it serves
        pass


class ConsoleServer:
    """The console on a loopback port (0 = a free one), in a thread of its own."""

    def __init__(self, port: int = 0) -> None:
        self.httpd = ThreadingHTTPServer((HOST, port), _Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="p2c-console", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.httpd.server_address[1]}/"

    def start(self) -> ConsoleServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)

    def __enter__(self) -> ConsoleServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(port: int, announce: Callable[[str], None]) -> None:
    """Serve until Ctrl-C."""
    server = ConsoleServer(port)
    announce(server.url)
    try:
        server.httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.httpd.server_close()
