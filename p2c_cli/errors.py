"""What an operator sees when a command fails: one or two lines naming the cause, and an exit code.

Exit codes (docs/operations.md lists them too):
  0  ok
  1  records failed, or a check found problems (drift, unhealthy flows)
  2  bad usage or settings (an unknown flow, a missing or invalid setting)
  3  a service is unreachable (storage, Dataverse, F&O)
  4  an unexpected error (run again with --debug for the traceback)
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from p2c_core.settings import STORAGE

SERVICE_SETTINGS = {"dataverse": "P2C_DATAVERSE_URL", "fno": "P2C_FNO_URL", "storage": STORAGE}
SERVICE_NAMES = {"dataverse": "Dataverse", "fno": "F&O", "storage": "storage"}


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    UNREACHABLE = 3
    INTERNAL = 4
    INTERRUPTED = 130


@dataclass
class OperatorError(Exception):
    """An error worth showing as is: what went wrong, and what to look at."""

    code: ExitCode
    message: str
    hint: str | None = None
    service: str | None = None
    setting: str | None = None

    def __str__(self) -> str:
        return self.message

    def lines(self) -> list[str]:
        return [f"error: {self.message}", *([self.hint] if self.hint else [])]

    def as_json(self) -> str:
        body: dict[str, Any] = {"error": self.message, "exit_code": int(self.code)}
        for name in ("hint", "service", "setting"):
            if getattr(self, name):
                body[name] = getattr(self, name)
        return json.dumps(body)


def unreachable(service: str, url: str, detail: str = "") -> OperatorError:
    """A service that does not answer at the URL its setting gives."""
    setting = SERVICE_SETTINGS[service]
    name = SERVICE_NAMES[service]
    why = f" ({detail})" if detail else ""
    if service == "storage":
        hint = f"Is Azurite (or the storage account) running? The address comes from the setting {setting}."
    else:
        hint = f"Is {name} up and reachable from here? The address comes from the setting {setting}."
    return OperatorError(ExitCode.UNREACHABLE, f"{name} unreachable at {url}{why}", hint, service, setting)


def explain(exc: BaseException) -> OperatorError:
    """The operator's view of any exception a command raised."""
    from p2c_core.errors import ODataError, SettingsError

    if isinstance(exc, OperatorError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return OperatorError(ExitCode.INTERRUPTED, "interrupted; nothing is lost: queued records wait for the next run")
    if isinstance(exc, SettingsError):
        return OperatorError(
            ExitCode.USAGE,
            str(exc),
            "Set it in the environment or in a .env file in this folder (docs/operations.md lists the settings).",
        )
    if isinstance(exc, KeyError) and str(exc).strip("'\"").startswith("unknown flow"):
        return OperatorError(ExitCode.USAGE, str(exc).strip("'\""))
    if isinstance(exc, ODataError) and exc.transient and exc.status is None:
        from p2c_core.settings import get_settings

        settings = get_settings()
        url = settings.dataverse_url if exc.service == "dataverse" else settings.fno_url
        return unreachable(exc.service, url, exc.message)
    if isinstance(exc, ODataError):
        return OperatorError(ExitCode.FAILED, str(exc), service=exc.service)
    storage = _storage_error(exc)
    if storage is not None:
        return storage
    return OperatorError(
        ExitCode.INTERNAL, f"unexpected {type(exc).__name__}: {exc}", "Run again with --debug for the traceback."
    )


def _storage_error(exc: BaseException) -> OperatorError | None:
    """Azure SDK connection errors come from the storage clients (the only Azure SDK p2c calls)."""
    from azure.core.exceptions import ServiceRequestError

    if isinstance(exc, ServiceRequestError):
        return unreachable("storage", _storage_url(), type(exc).__name__)
    return None


def _storage_url() -> str:
    from p2c_core.settings import storage_settings

    try:
        values = storage_settings()
    except Exception:
        return "(no storage setting)"
    return storage_endpoint(values)


def storage_endpoint(values: dict[str, str]) -> str:
    """The queue endpoint a storage setting points at (no key: only the address)."""
    conn = values.get(STORAGE, "")
    if conn.replace(" ", "").lower() == "usedevelopmentstorage=true":
        return "http://127.0.0.1:10001/devstoreaccount1"
    parts = dict(p.split("=", 1) for p in conn.split(";") if "=" in p)
    if "QueueEndpoint" in parts:
        return parts["QueueEndpoint"]
    if "AccountName" in parts:
        suffix = parts.get("EndpointSuffix", "core.windows.net")
        return f"{parts.get('DefaultEndpointsProtocol', 'https')}://{parts['AccountName']}.queue.{suffix}"
    account = values.get("accountName") or conn
    return values.get("queueServiceUri") or f"https://{account}.queue.core.windows.net"
