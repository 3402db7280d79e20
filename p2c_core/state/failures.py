"""Failure entries: one per failed record (or message), with the record kept for replay.

A stored record is split across properties: a table property holds at most 64 KiB (a
string in UTF-16) and an entity at most 1 MiB with at most 255 properties
(https://learn.microsoft.com/rest/api/storageservices/understanding-the-table-service-data-model).
A record that fits one property is stored as `record`, as before the split existed; a
longer one as `record_parts` (how many) and `record_0` ... `record_<n-1>`, names that a
reader of the single property ignores rather than replaying half a record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from p2c_core.state.tables import FAILURES, delete_rows, now, row_key, source_key, table

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from p2c_core.state.storage import Storage

# UTF-16 code units per property: 30,000 x 2 bytes keeps clear of 64 KiB.
PART_UNITS = 30_000
# Parts per entity: 16 x 60,000 bytes = 960,000 bytes, clear of 1 MiB with the other
# properties (the message is cut at 4,000 characters). A queue message holds ~48 KB.
MAX_PARTS = 16
MAX_MESSAGE = 4000
_TOO_LARGE = {"EntityTooLarge", "PropertyValueTooLarge", "RequestBodyTooLarge"}


@dataclass
class Failure:
    """A record (or message) that failed for good, why, and the record as JSON for replay."""

    flow: str
    source_key: str
    attempt: int
    error_class: str
    message: str
    status: int | None = None
    request_id: str | None = None
    first_seen: str = ""
    last_seen: str = ""
    record: str | None = None  # the envelope record as JSON, for replay


def _units(char: str) -> int:
    return 2 if ord(char) > 0xFFFF else 1  # beyond the BMP: a surrogate pair in UTF-16


def split_record(record: str, part_units: int = PART_UNITS) -> list[str]:
    """`record` in pieces of at most `part_units` UTF-16 code units, no surrogate pair cut."""
    if len(record.encode("utf-16-le")) <= 2 * part_units:  # the common case: one part
        return [record]
    parts, start, units = [], 0, 0
    for i, char in enumerate(record):
        size = _units(char)
        if units + size > part_units:
            parts.append(record[start:i])
            start, units = i, 0
        units += size
    parts.append(record[start:])
    return parts


def record_properties(record: str | None) -> dict[str, Any]:
    """The properties that store `record`; none if there is none or it is beyond `MAX_PARTS`."""
    if not record:
        return {}
    parts = split_record(record)
    if len(parts) == 1:
        return {"record": record}
    if len(parts) > MAX_PARTS:
        return {}
    return {"record_parts": len(parts)} | {f"record_{i}": part for i, part in enumerate(parts)}


def read_record(entity: Any) -> str | None:
    """The record stored by `record_properties`, in either form."""
    if entity.get("record"):
        return entity["record"]
    count = entity.get("record_parts")
    if not count:
        return None
    return "".join(entity[f"record_{i}"] for i in range(int(count)))


def _from_entity(e: Any) -> Failure:
    return Failure(
        flow=e["PartitionKey"],
        source_key=e.get("source_key") or source_key(e["RowKey"]),
        attempt=int(e.get("attempt") or 0),
        error_class=e.get("error_class") or "",
        message=e.get("message") or "",
        status=e.get("status"),
        request_id=e.get("request_id"),
        first_seen=e.get("first_seen") or "",
        last_seen=e.get("last_seen") or "",
        record=read_record(e),
    )


class FailureStore:
    """`p2cfailures`: one partition per flow, one row per source key (see `row_key`)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _table(self) -> TableClient:
        return table(self.storage, FAILURES)

    def record(self, failure: Failure) -> Failure:
        """Write (or overwrite) the record's entry, keeping when it was first seen."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        client = self._table()
        stamp = now().isoformat()
        try:
            prev = client.get_entity(failure.flow, row_key(failure.source_key), select=["first_seen"])
            failure.first_seen = prev.get("first_seen") or stamp
        except ResourceNotFoundError:
            failure.first_seen = stamp
        failure.last_seen = stamp
        stored = record_properties(failure.record)
        entity = self._entity(failure, stored)
        # REPLACE, not MERGE: no part of an earlier, longer record outlives this one.
        try:
            client.upsert_entity(entity, mode=UpdateMode.REPLACE)
        except HttpResponseError as exc:
            if not stored or getattr(exc, "error_code", None) not in _TOO_LARGE:
                raise
            # Sizes are counted differently by the emulator (the request's JSON); the entry
            # matters more than the record: keep it without.
            client.upsert_entity(self._entity(failure, {}), mode=UpdateMode.REPLACE)
        return failure

    @staticmethod
    def _entity(failure: Failure, stored: dict[str, Any]) -> dict[str, Any]:
        note = ""
        if failure.record and not stored:
            note = f" (the record, {len(failure.record)} characters, is too large to keep for replay)"
        message = failure.message[: MAX_MESSAGE - len(note)] + note
        return {
            "PartitionKey": failure.flow,
            "RowKey": row_key(failure.source_key),
            "source_key": failure.source_key,
            "attempt": failure.attempt,
            "error_class": failure.error_class,
            "status": failure.status,
            "request_id": failure.request_id,
            "message": message,
            "first_seen": failure.first_seen,
            "last_seen": failure.last_seen,
        } | stored

    def purge(self, flow: str, seen_before: datetime) -> int:
        """Forget failures last seen before a moment (the retention period); returns how many."""
        client = self._table()
        old = client.query_entities(
            "PartitionKey eq @f and last_seen lt @t",
            parameters={"f": flow, "t": seen_before.isoformat()},
            select=["PartitionKey", "RowKey"],
        )
        rows = [r["RowKey"] for r in old]
        delete_rows(client, flow, rows)
        return len(rows)

    def clear(self, flow: str, key: str) -> None:
        self._table().delete_entity(flow, row_key(key))

    def query(self, flow: str | None = None) -> list[Failure]:
        """The failures of one flow, or of all."""
        client = self._table()
        rows = client.query_entities("PartitionKey eq @f", parameters={"f": flow}) if flow else client.list_entities()
        return [_from_entity(r) for r in rows]
