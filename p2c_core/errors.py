"""Typed errors. Each says whether retrying can help, and carries what an operator needs.

No message here ever includes a header, token or secret: only the service's own error
text, its status and request id.
"""

from __future__ import annotations


class P2CError(Exception):
    """Base of every p2c error."""

    transient: bool = False
    status: int | None = None
    request_id: str | None = None

    @property
    def error_class(self) -> str:
        return type(self).__name__


class SettingsError(P2CError):
    """A missing or invalid setting; the message names it."""


class MappingError(P2CError):
    """A record cannot be mapped (missing key, unmapped value, over-long value...)."""


class KeyChanged(P2CError):
    """A source row already written under one natural key now has another: not a new record."""


class MessageError(P2CError):
    """A queue message that is not a valid envelope."""


class DependencyMissing(P2CError):
    """A record refers to one that is not in the target yet; retried, then failed."""

    transient = True


class RecordBusy(P2CError):
    """Another worker is applying the same record right now; retried shortly. `leased`: a lease
    was seen unexpired (a waiting that spends no attempt: it ends with the lease)."""

    transient = True

    def __init__(self, message: str, *, leased: bool = False) -> None:
        super().__init__(message)
        self.leased = leased


class ODataError(P2CError):
    """An error answer (or no answer) from Dataverse or F&O."""

    def __init__(
        self,
        message: str,
        *,
        service: str,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.service = service
        self.status = status
        self.code = code
        self.request_id = request_id

    def __str__(self) -> str:
        parts = [f"{self.service}"]
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code:
            parts.append(f"code {self.code}")
        head = " ".join(parts)
        tail = f" (request id {self.request_id})" if self.request_id else ""
        return f"{head}: {self.message}{tail}"


class TransientError(ODataError):
    """5xx, timeouts, dropped connections: worth retrying."""

    transient = True


class ThrottledError(TransientError):
    """429 (or 503 with Retry-After): retry no earlier than `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class NotFoundError(ODataError):
    """404: the addressed record does not exist."""


class PreconditionFailedError(ODataError):
    """412: an If-Match / If-None-Match condition failed."""


class ConflictError(ODataError):
    """409 or a duplicate-key create."""


class PermanentError(ODataError):
    """Any other 4xx: validation, permissions; retrying will not help."""


class CursorConflict(P2CError):
    """Another poller advanced the flow's cursor first (ETag mismatch)."""


class FlowError(P2CError):
    """A flow definition that cannot work (an unknown value map, a dependency cycle...);
    raised when the flow is imported, naming the flow and the culprit."""
