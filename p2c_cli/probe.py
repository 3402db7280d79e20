"""Is a service there at all? Asked before a command starts, and while a sync waits.

The Azure SDK retries a refused connection for more than a minute, and a record's
retries against an unreachable service last for many minutes: an operator should
learn in seconds that storage or a service does not answer, and which setting says where.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx

from p2c_cli.errors import OperatorError, storage_endpoint, unreachable

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

TIMEOUT_S = 3.0


def runtime(*names: str) -> Runtime:
    """Settings validated, storage (and the named services) answering, then the runtime:
    what a command that works on a deployment starts with."""
    from p2c_core.runtime import get_runtime
    from p2c_core.settings import get_settings, storage_settings

    settings = get_settings()
    storage(storage_settings())
    services(set(names), {"dataverse": settings.dataverse_url, "fno": settings.fno_url})
    return get_runtime()


def storage(values: dict[str, str], timeout: float = TIMEOUT_S) -> None:
    """Raise OperatorError when nothing listens at the storage queue endpoint."""
    url = storage_endpoint(values)
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            pass
    except OSError as exc:
        raise unreachable("storage", url, _reason(exc)) from None


def service(name: str, url: str, timeout: float = TIMEOUT_S) -> OperatorError | None:
    """None when the service answers HTTP at its root (any status: 401 and 404 answer too)."""
    try:
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            client.get(url.rstrip("/") + "/")
    except httpx.TransportError as exc:
        return unreachable(name, url, type(exc).__name__)
    return None


def services(names: set[str], urls: dict[str, str], timeout: float = TIMEOUT_S) -> None:
    """Raise for the first of the services (by name: dataverse, fno) that does not answer."""
    for name in sorted(names):
        problem = service(name, urls[name], timeout)
        if problem is not None:
            raise problem


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError | socket.timeout):
        return "no answer"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return type(exc).__name__
