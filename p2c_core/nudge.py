"""The nudge: a queue message naming one source row that changed (a pushed event's hint).

An event is a hint, not the truth: a nudge carries no data, only which row of which flow
to read again (`id` of a Dataverse row, `key` of an F&O one). The nudge function reads the
row's current state and applies it like a polled change (nudged.py). Nudges travel in a
queue of their own (`p2c-nudges`), so the flows' queue envelope (envelope.py) is unchanged:
no stored form changed, nothing old to read differently.

Signed like envelopes (signing.py), under the same key with a context of its own, so a
queue writer cannot send p2c reading rows on its behalf.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from p2c_core.errors import MessageError

QUEUE = "p2c-nudges"
POISON_QUEUE = f"{QUEUE}-poison"
MAX_BYTES = 4096
_CONTEXT = b"p2c-nudge-v1\n"
Op = Literal["Create", "Update", "Delete"]


class Nudge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["nudge"] = "nudge"
    v: Literal[1] = 1
    flow: str = Field(min_length=1, max_length=52)
    # The entity set the event named: the flow's source, or its lines' source (`line`).
    table: str = Field(min_length=1, max_length=128)
    id: str | None = Field(default=None, max_length=36)
    key: str | None = Field(default=None, max_length=256)
    company: str | None = Field(default=None, max_length=4)
    op: Op = "Update"
    # The row is a line: its document is read (for F&O lines, `key` is the document's already).
    line: bool = False
    # When the source changed (epoch s, from the event), for the lag metric; when p2c took it.
    changed: float | None = None
    received: float
    # What the event said of the version (Dataverse RowVersion, F&O ControlNumber): logged only;
    # the version applied is the one read from the source.
    version: int | None = None
    sig: str | None = Field(default=None, max_length=128)

    def row(self) -> tuple[str, str]:
        """What names the row for coalescing: (flow, table:id-or-key)."""
        return self.flow, f"{self.table}:{(self.id or self.key or '').lower()}"


def _canonical(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _mac(key: bytes, data: dict[str, Any]) -> str:
    return hmac.new(key, _CONTEXT + _canonical(data), hashlib.sha256).hexdigest()


def seal(nudge: Nudge, key: bytes) -> bytes:
    """The queue message body: the nudge with its signature (the queue client base64-encodes it)."""
    data = nudge.model_dump(mode="json", exclude={"sig"}, exclude_none=True)
    data["sig"] = _mac(key, data)
    return _canonical(data)


def open_sealed(body: bytes | str, key: bytes) -> Nudge:
    """The nudge in a message body (base64 already removed by the host), or MessageError."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_BYTES:
        raise MessageError(f"nudge of {len(raw)} bytes is over {MAX_BYTES}")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise MessageError("nudge is not JSON") from None
    if not isinstance(data, dict):
        raise MessageError("nudge is not a JSON object")
    sig = data.pop("sig", None)
    if not isinstance(sig, str) or not hmac.compare_digest(sig.encode(), _mac(key, data).encode()):
        raise MessageError("nudge signature does not match (not written by p2c, or changed)")
    try:
        return Nudge.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise MessageError(f"nudge has the wrong shape: {'.'.join(str(p) for p in first['loc'])}") from None
