"""The versioned queue message: a chunk of source records for one flow.

Messages travel base64-encoded (the Functions host's default) and must stay under the
64 KB queue limit, so chunks are packed by size as well as by count.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from p2c_core.errors import MessageError

# 2: signed by p2c (signing.py). 1: unsigned, as queued before signing; still read, so
# an upgrade loses none of them, and turned into failure entries, never applied.
VERSION = 2
VERSIONS = (1, 2)
# Versions are 64-bit signed in the key map (Dataverse row versions, F&O poll times in ms).
MAX_VERSION = 2**63 - 1
MAX_MESSAGE_BYTES = 64 * 1024
# base64 grows text by 4/3; keep the JSON under this so the encoded message fits.
MAX_JSON_BYTES = (MAX_MESSAGE_BYTES * 3) // 4 - 512


class Record(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str = Field(min_length=1)
    version: int = Field(ge=0, le=MAX_VERSION)
    op: Literal["upsert", "delete"] = "upsert"
    data: dict[str, Any] = Field(default_factory=dict)
    # How many times this record has been tried (0 = first delivery).
    attempt: int = Field(default=0, ge=0)
    # When this record first found a reference missing (epoch seconds): it waits for the
    # other flow up to P2C_DEPENDENCY_WAIT_MINUTES from then, spending no attempts.
    waiting_since: float | None = None
    # Put back by `replay`: a success clears the record's failure entry.
    replay: bool = False
    # A repair from `reconcile`: write even if the key map says this content is applied.
    force: bool = False
    # A document with more lines than one message holds travels without them; the queue
    # function reads them from the source when it applies the document.
    lines_later: bool = False
    # The F&O legal entity the record belongs to (P2C_COMPANIES, docs/companies.md); its key
    # is then `company|key`. None: the default company (P2C_FNO_COMPANY), as in every message
    # queued before several companies, and in every one of a one-company deployment.
    company: str | None = Field(default=None, pattern=r"^[a-z0-9]{1,4}$")

    def to_json(self) -> str:
        """Without the fields left at their defaults (op, attempt, flags): more records fit a message."""
        return self.model_dump_json(exclude_defaults=True)


class Envelope(BaseModel):
    model_config = ConfigDict(extra="forbid")

    v: Literal[1, 2] = VERSION
    flow: str
    records: list[Record] = Field(min_length=1)
    # When the poll enqueued these changes (epoch seconds), for the lag metric.
    sent: float | None = None
    # The HMAC that signing.seal appends; checked by signing.problem, not here.
    sig: str | None = Field(default=None, max_length=128)

    def encode(self) -> str:
        return base64.b64encode(self.to_json().encode()).decode()

    def to_json(self) -> str:
        records = ",".join(r.to_json() for r in self.records)
        head = self.model_dump_json(exclude={"records", "sig"})
        return f'{head[:-1]},"records":[{records}]}}'


def decode(body: bytes | str) -> Envelope:
    """Parse a message body (JSON; base64 already removed by the host), or MessageError."""
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_MESSAGE_BYTES:
        raise MessageError(f"message of {len(raw)} bytes is over the 64 KB queue limit")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise MessageError("message is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise MessageError(f"message is not JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        raise MessageError("message is JSON nested too deeply") from None
    if isinstance(data, dict) and "v" in data and data["v"] not in VERSIONS:
        raise MessageError(f"unknown message version {repr(data['v'])[:20]}; this p2c reads versions 1 and 2")
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "message"
        raise MessageError(f"message has the wrong shape: {where}: {first['msg']}") from None


def chunk(flow: str, records: Iterable[Record], max_records: int) -> Iterator[Envelope]:
    """Pack records into envelopes of at most `max_records` that fit in one message."""
    batch: list[Record] = []
    size = 0
    for record in records:
        rec_size = len(record.to_json()) + 1
        if rec_size > MAX_JSON_BYTES - 100:
            raise MessageError(f"record {record.key!r} is too large for one queue message ({rec_size} bytes)")
        if batch and (len(batch) >= max_records or size + rec_size > MAX_JSON_BYTES - 100):
            yield Envelope(flow=flow, records=batch)
            batch, size = [], 0
        batch.append(record)
        size += rec_size
    if batch:
        yield Envelope(flow=flow, records=batch)
