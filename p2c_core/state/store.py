"""Sync state in Azure Table Storage: cursors, the key map, run history and failures.

Tables: `p2ccursors` (one row per flow, ETag-guarded), `p2ckeymap` (per flow and source
key: target key, last applied source version, content hash, master, apply lease),
`p2cruns` (newest first) and `p2cfailures` (one row per failed record, replayable).
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote

from p2c_core.errors import CursorConflict, RecordBusy

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from p2c_core.state.storage import Storage

CURSORS, KEYMAP, RUNS, FAILURES = "p2ccursors", "p2ckeymap", "p2cruns", "p2cfailures"
TABLES = (CURSORS, KEYMAP, RUNS, FAILURES)

# Table properties hold at most 64 KB (32K UTF-16 chars); keep well below.
_MAX_TEXT = 30_000


def _seen(flow: str) -> str:
    """The key map partition of an F&O flow's sent digests (beside its entries, never mixed)."""
    return f"{flow}~seen"


def _int64(value: int) -> Any:
    """Versions are 64-bit (Dataverse row versions, F&O poll times in ms): say so to the table."""
    from azure.data.tables import EdmType, EntityProperty

    return EntityProperty(value, EdmType.INT64)


def _read_int(value: Any) -> int:
    return int(getattr(value, "value", value))


def now() -> datetime:
    return datetime.now(UTC)


def row_key(key: str) -> str:
    """A RowKey for any source key: `/ \\ # ?`, control and non-ASCII chars encoded."""
    return quote(key, safe=" -_.~'!*()@,;:=+$&")


def source_key(row: str) -> str:
    return unquote(row)


@dataclass
class Cursor:
    """Where a flow's next poll starts. `link` is a nextLink (scan under way) or deltaLink."""

    flow: str
    link: str | None = None
    watermark: str | None = None
    scan_started: str | None = None
    updated_at: str | None = None
    etag: str | None = None


@dataclass
class KeyMapEntry:
    flow: str
    source_key: str
    target_key: str | None = None
    version: int = -1  # last applied source version; -1 = never applied
    hash: str | None = None
    master: str | None = None
    lease_version: int | None = None
    lease_until: str | None = None
    # The record has a failure entry: its next success clears it.
    failed: bool = False
    # The source row's GUID (Dataverse sources; None for F&O's, and in entries written
    # before it was kept): see state/ids.py.
    source_id: str | None = None
    etag: str | None = None

    def leased(self, at: datetime) -> bool:
        return self.lease_until is not None and datetime.fromisoformat(self.lease_until) > at


@dataclass
class Failure:
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


@dataclass
class Run:
    flow: str
    kind: str  # "poll" | "apply"
    run_id: str
    started: str
    ended: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None


def _replace_if_unchanged(table: TableClient, entity: dict[str, Any], etag: str | None) -> dict[str, Any]:
    """Replace an entity only if nobody changed it since we read it (ETag); else 412."""
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    return dict(
        table.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified)
    )


def _entry(flow: str, key: str, e: Any) -> KeyMapEntry:
    return KeyMapEntry(
        flow=flow,
        source_key=key,
        target_key=e.get("target_key"),
        version=_read_int(e.get("version", -1)),
        hash=e.get("hash"),
        master=e.get("master"),
        lease_version=None if e.get("lease_version") is None else _read_int(e["lease_version"]),
        lease_until=e.get("lease_until"),
        failed=bool(e.get("failed")),
        source_id=e.get("source_id"),
        etag=e.metadata["etag"],
    )


class StateStore:
    """All sync state of one storage account; tables are created on first use."""

    _created: set[tuple[int, str]] = set()
    _lock = threading.Lock()

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _table(self, name: str) -> TableClient:
        client = self.storage.table(name)
        marker = (id(self.storage), name)
        if marker not in self._created:
            from azure.core.exceptions import ResourceExistsError

            with self._lock:
                with contextlib.suppress(ResourceExistsError):
                    self.storage.tables.create_table(name)
                self._created.add(marker)
        return client

    # --- cursors --------------------------------------------------------------

    def get_cursor(self, flow: str) -> Cursor:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            e = self._table(CURSORS).get_entity(flow, "cursor")
        except ResourceNotFoundError:
            return Cursor(flow=flow)
        return Cursor(
            flow=flow,
            link=e.get("link"),
            watermark=e.get("watermark"),
            scan_started=e.get("scan_started"),
            updated_at=e.get("updated_at"),
            etag=e.metadata["etag"],
        )

    def put_cursor(self, cursor: Cursor) -> Cursor:
        """Write only if nobody else moved the cursor since we read it (ETag)."""
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        entity = {
            "PartitionKey": cursor.flow,
            "RowKey": "cursor",
            "link": cursor.link,
            "watermark": cursor.watermark,
            "scan_started": cursor.scan_started,
            "updated_at": now().isoformat(),
        }
        table = self._table(CURSORS)
        try:
            if cursor.etag is None:
                meta = table.create_entity(entity)
            else:
                meta = _replace_if_unchanged(table, entity, cursor.etag)
        except (ResourceExistsError, ResourceModifiedError):
            raise CursorConflict(f"cursor of flow {cursor.flow!r} was moved by another poller") from None
        cursor.etag = meta["etag"]
        cursor.updated_at = entity["updated_at"]
        return cursor

    def delete_cursor(self, flow: str) -> None:
        self._table(CURSORS).delete_entity(flow, "cursor")

    # A pause set by an operator (`p2c pause`), beside the cursor but not in it, so cursor
    # writes (ETag-guarded) never clobber it.
    def set_paused(self, flow: str, paused: bool, reason: str | None = None) -> None:
        from azure.data.tables import UpdateMode

        self._table(CURSORS).upsert_entity(
            {"PartitionKey": flow, "RowKey": "paused", "paused": paused, "reason": reason,
             "updated_at": now().isoformat()},
            mode=UpdateMode.REPLACE,
        )  # fmt: skip

    def is_paused(self, flow: str) -> bool:
        return bool(self.pause(flow).get("paused"))

    def pause(self, flow: str) -> dict[str, Any]:
        """The pause row: `paused`, `reason` (None for an operator's pause, and in rows
        written before reasons were kept), `updated_at`; {} when never paused."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            e = self._table(CURSORS).get_entity(flow, "paused")
        except ResourceNotFoundError:
            return {}
        return {"paused": bool(e.get("paused")), "reason": e.get("reason"), "updated_at": e.get("updated_at")}

    # --- key map --------------------------------------------------------------

    # --- what F&O polls sent on: key -> digest of the source row ---------------------

    def seen(self, flow: str) -> dict[str, str]:
        rows = self._table(KEYMAP).query_entities(
            "PartitionKey eq @p", parameters={"p": _seen(flow)}, select=["RowKey", "digest"]
        )
        return {source_key(r["RowKey"]): r["digest"] for r in rows}

    def mark_seen(self, flow: str, digests: dict[str, str]) -> None:
        table = self._table(KEYMAP)
        ops = [("upsert", {"PartitionKey": _seen(flow), "RowKey": row_key(k), "digest": d}) for k, d in digests.items()]
        for i in range(0, len(ops), 100):  # a table transaction holds at most 100 operations
            table.submit_transaction(ops[i : i + 100])  # type: ignore[arg-type]

    def clear_seen(self, flow: str) -> None:
        table = self._table(KEYMAP)
        rows = list(table.query_entities("PartitionKey eq @p", parameters={"p": _seen(flow)}, select=["RowKey"]))
        for i in range(0, len(rows), 100):
            table.submit_transaction(
                [("delete", {"PartitionKey": _seen(flow), "RowKey": r["RowKey"]}) for r in rows[i : i + 100]]
            )  # type: ignore[arg-type]

    def get_entry(self, flow: str, key: str) -> KeyMapEntry | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            e = self._table(KEYMAP).get_entity(flow, row_key(key))
        except ResourceNotFoundError:
            return None
        return _entry(flow, key, e)

    def get_entries(self, flow: str, keys: list[str]) -> dict[str, KeyMapEntry]:
        """The entries of many records, by point reads: a filter that ORs row keys is a
        partition scan in Table Storage, which grows with the key map."""
        found: dict[str, KeyMapEntry] = {}
        for key in keys:
            if (entry := self.get_entry(flow, key)) is not None:
                found[key] = entry
        return found

    def entries(self, flow: str) -> list[KeyMapEntry]:
        rows = self._table(KEYMAP).query_entities("PartitionKey eq @f", parameters={"f": flow})
        return [
            KeyMapEntry(
                flow=flow,
                source_key=source_key(r["RowKey"]),
                target_key=r.get("target_key"),
                version=_read_int(r.get("version", -1)),
                hash=r.get("hash"),
                master=r.get("master"),
            )
            for r in rows
        ]

    def _entity(self, entry: KeyMapEntry) -> dict[str, Any]:
        return {
            "PartitionKey": entry.flow,
            "RowKey": row_key(entry.source_key),
            "target_key": entry.target_key,
            "version": _int64(entry.version),
            "hash": entry.hash,
            "master": entry.master,
            "lease_version": None if entry.lease_version is None else _int64(entry.lease_version),
            "lease_until": entry.lease_until,
            "source_id": entry.source_id,
        }

    def claim(self, entry: KeyMapEntry | None, flow: str, key: str, version: int, lease: timedelta) -> KeyMapEntry:
        """Take the apply lease on one record, so two workers never write it at once.

        Raises RecordBusy when another worker holds an unexpired lease or won the race.
        """
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        at = now()
        if entry is not None and entry.leased(at):
            raise RecordBusy(f"record {key!r} is being applied by another worker")
        claimed = entry or KeyMapEntry(flow=flow, source_key=key)
        claimed.lease_version = version
        claimed.lease_until = (at + lease).isoformat()
        table = self._table(KEYMAP)
        try:
            if entry is None:
                meta = table.create_entity(self._entity(claimed))
            else:
                meta = _replace_if_unchanged(table, self._entity(claimed), entry.etag)
        except (ResourceExistsError, ResourceModifiedError):
            raise RecordBusy(f"record {key!r} was claimed by another worker") from None
        claimed.etag = meta["etag"]
        return claimed

    def commit(
        self, entry: KeyMapEntry, *, version: int, hash: str, target_key: str | None, master: str | None
    ) -> None:
        """Record the applied version and release the lease (only if still ours)."""
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        entry.version, entry.hash = version, hash
        entry.target_key, entry.master = target_key, master
        entry.lease_version = entry.lease_until = None
        try:
            meta = _replace_if_unchanged(self._table(KEYMAP), self._entity(entry), entry.etag)
        except (ResourceModifiedError, ResourceNotFoundError):
            raise RecordBusy(f"lease on record {entry.source_key!r} expired before commit") from None
        entry.etag = meta["etag"]

    def claim_many(
        self, flow: str, claims: list[tuple[KeyMapEntry | None, str, int]], lease: timedelta
    ) -> list[KeyMapEntry | RecordBusy]:
        """`claim` for many records in one table transaction per 100.

        A transaction is all or nothing: if one claim lost a race, each is claimed
        alone, so only the record that lost waits.
        """
        at = now()
        out: list[KeyMapEntry | RecordBusy] = []
        todo: list[tuple[int, KeyMapEntry | None, KeyMapEntry]] = []
        for entry, key, version in claims:
            if entry is not None and entry.leased(at):
                out.append(RecordBusy(f"record {key!r} is being applied by another worker"))
                continue
            claimed = replace(entry) if entry is not None else KeyMapEntry(flow=flow, source_key=key)
            claimed.lease_version, claimed.lease_until = version, (at + lease).isoformat()
            todo.append((len(out), entry, claimed))
            out.append(claimed)

        def alone(n: int, entry: KeyMapEntry | None, claimed: KeyMapEntry) -> None:
            try:
                out[n] = self.claim(entry, flow, claimed.source_key, claimed.lease_version or 0, lease)
            except RecordBusy as exc:
                out[n] = exc

        self._transact([(n, entry, claimed, alone) for n, entry, claimed in todo])
        return out

    def commit_many(
        self, commits: list[tuple[KeyMapEntry, int, str, str | None, str | None]]
    ) -> list[RecordBusy | None]:
        """`commit` for many records: (claimed entry, version, hash, target key, master) each."""
        out: list[RecordBusy | None] = [None] * len(commits)
        todo = []
        for n, (entry, version, digest, target_key, master) in enumerate(commits):
            before = replace(entry)
            entry.version, entry.hash, entry.target_key, entry.master = version, digest, target_key, master
            entry.lease_version = entry.lease_until = None

            def alone(n: int, before: KeyMapEntry, entry: KeyMapEntry) -> None:
                try:
                    self.commit(before, version=entry.version, hash=entry.hash or "",
                                target_key=entry.target_key, master=entry.master)  # fmt: skip
                    entry.etag = before.etag
                except RecordBusy as exc:
                    out[n] = exc

            todo.append((n, before, entry, alone))
        self._transact(todo)
        return out

    def _transact(self, todo: list[tuple[int, KeyMapEntry | None, KeyMapEntry, Any]]) -> None:
        """Write each `new` entry (create, or replace if `old` is unchanged) in transactions of
        100; a failed transaction is redone entry by entry through its `alone` callback."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError
        from azure.data.tables import UpdateMode

        table = self._table(KEYMAP)
        for i in range(0, len(todo), 100):
            part = todo[i : i + 100]
            ops: list[Any] = [
                ("create", self._entity(new)) if old is None else
                ("update", self._entity(new),
                 {"mode": UpdateMode.REPLACE, "etag": old.etag, "match_condition": MatchConditions.IfNotModified})
                for _, old, new, _ in part
            ]  # fmt: skip
            try:
                metas = table.submit_transaction(ops)
            except HttpResponseError:  # a lost race, or the same record twice in one message
                for n, old, new, alone in part:
                    alone(n, old, new)
                continue
            for (_, _, new, _), meta in zip(part, metas, strict=True):
                new.etag = meta["etag"]

    def release(self, entry: KeyMapEntry) -> None:
        """Drop our lease after a failed apply, keeping the last applied version."""
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        entry.lease_version = entry.lease_until = None
        # If someone took over after our lease expired, the record is theirs now.
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
            _replace_if_unchanged(self._table(KEYMAP), self._entity(entry), entry.etag)

    # --- failures -------------------------------------------------------------

    def record_failure(self, failure: Failure) -> Failure:
        from azure.core.exceptions import ResourceNotFoundError
        from azure.data.tables import UpdateMode

        table = self._table(FAILURES)
        stamp = now().isoformat()
        try:
            prev = table.get_entity(failure.flow, row_key(failure.source_key))
            failure.first_seen = prev.get("first_seen") or stamp
        except ResourceNotFoundError:
            failure.first_seen = stamp
        failure.last_seen = stamp
        entity = {
            "PartitionKey": failure.flow,
            "RowKey": row_key(failure.source_key),
            "source_key": failure.source_key,
            "attempt": failure.attempt,
            "error_class": failure.error_class,
            "status": failure.status,
            "request_id": failure.request_id,
            "message": failure.message[:4000],
            "first_seen": failure.first_seen,
            "last_seen": failure.last_seen,
            "record": failure.record if failure.record and len(failure.record) <= _MAX_TEXT else None,
        }
        table.upsert_entity(entity, mode=UpdateMode.REPLACE)
        # Mark the key map so the record's next success (a fix at the source) clears this
        # entry; applying writes the key map without the mark.
        self._table(KEYMAP).upsert_entity(
            {"PartitionKey": failure.flow, "RowKey": row_key(failure.source_key), "failed": True},
            mode=UpdateMode.MERGE,
        )
        return failure

    def purge_failures(self, flow: str, seen_before: datetime) -> int:
        """Forget failures last seen before a moment (the retention period); returns how many."""
        table = self._table(FAILURES)
        old = list(
            table.query_entities(
                "PartitionKey eq @f and last_seen lt @t",
                parameters={"f": flow, "t": seen_before.isoformat()},
                select=["PartitionKey", "RowKey"],
            )
        )
        for i in range(0, len(old), 100):
            batch = [("delete", {"PartitionKey": flow, "RowKey": r["RowKey"]}) for r in old[i : i + 100]]
            table.submit_transaction(batch)  # type: ignore[arg-type]
        return len(old)

    def clear_failure(self, flow: str, key: str) -> None:
        self._table(FAILURES).delete_entity(flow, row_key(key))

    def failures(self, flow: str | None = None) -> list[Failure]:
        table = self._table(FAILURES)
        rows = table.query_entities("PartitionKey eq @f", parameters={"f": flow}) if flow else table.list_entities()
        return [
            Failure(
                flow=r["PartitionKey"],
                source_key=r.get("source_key") or source_key(r["RowKey"]),
                attempt=int(r.get("attempt") or 0),
                error_class=r.get("error_class") or "",
                message=r.get("message") or "",
                status=r.get("status"),
                request_id=r.get("request_id"),
                first_seen=r.get("first_seen") or "",
                last_seen=r.get("last_seen") or "",
                record=r.get("record"),
            )
            for r in rows
        ]

    # --- runs -----------------------------------------------------------------

    def record_run(self, run: Run) -> None:
        started = datetime.fromisoformat(run.started)
        inverted = 10**13 - int(started.timestamp() * 1000)
        self._table(RUNS).upsert_entity(
            {
                "PartitionKey": run.flow,
                "RowKey": f"{inverted:013d}-{run.run_id}",
                "kind": run.kind,
                "run_id": run.run_id,
                "started": run.started,
                "ended": run.ended,
                "status": run.status,
                "error": run.error,
                "counts": json.dumps(run.counts),
            }
        )

    def runs(self, flow: str, *, since: datetime | None = None, limit: int | None = None) -> list[Run]:
        query = "PartitionKey eq @f"
        params: dict[str, Any] = {"f": flow}
        if since is not None:
            query += " and RowKey le @r"
            params["r"] = f"{10**13 - int(since.timestamp() * 1000):013d}~"
        out: list[Run] = []
        for r in self._table(RUNS).query_entities(query, parameters=params):
            out.append(
                Run(
                    flow=flow,
                    kind=r["kind"],
                    run_id=r["run_id"],
                    started=r["started"],
                    ended=r.get("ended") or "",
                    counts=json.loads(r.get("counts") or "{}"),
                    status=r.get("status") or "ok",
                    error=r.get("error"),
                )
            )
            if limit is not None and len(out) >= limit:
                break
        return out
