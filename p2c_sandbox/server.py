"""Run an ASGI app with uvicorn on 127.0.0.1 (HTTP, or HTTPS when given a certificate) in a background
thread, and stop it."""

from __future__ import annotations

import logging
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from p2c_sandbox.tls import TlsFiles


class _DroppedConnections(logging.Filter):
    """Hide the traceback uvicorn logs for a response the fault injector cut short on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (exc is not None and "Too little data for declared Content-Length" in str(exc))


_DROPPED = _DroppedConnections()


class BackgroundServer:
    def __init__(self, app: ASGIApp, port: int = 0, host: str = "127.0.0.1", tls: TlsFiles | None = None) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="off", access_log=False,
            ssl_certfile=str(tls.cert) if tls else None, ssl_keyfile=str(tls.key) if tls else None,
        )  # fmt: skip
        self.scheme = "https" if tls else "http"
        self.server = uvicorn.Server(config)
        logging.getLogger("uvicorn.error").addFilter(_DROPPED)
        self.host = host
        self.thread = threading.Thread(target=self.server.run, name=f"sandbox-{port}", daemon=True)

    @property
    def port(self) -> int:
        return self.server.servers[0].sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, timeout: float = 15.0) -> None:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("the sandbox server failed to start (is the port in use?)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the sandbox server did not start within {timeout:.0f}s")
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
