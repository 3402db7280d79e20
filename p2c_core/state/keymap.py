"""The key map: per flow and source key, what was applied where, and who is applying it now.

Each entry holds the target key, the last applied source version (so an older version never
overwrites a newer one), the content hash, the master, and an apply lease: a worker claims
the entry (an ETag-guarded write) before it writes the target and commits after.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from p2c_core.errors import RecordBusy
from p2c_core.state.tables import KEYMAP, chunks, int64, now, read_int, replace_if_unchanged, row_key, source_key, table

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from p2c_core.state.storage import Storage


@dataclass
class KeyMapEntry:
    """One record's line in the key map, with the ETag it was read at."""

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


@dataclass(frozen=True)
class Claim:
    """A lease to take on one record: its entry as read (None if it has none yet), key and version."""

    entry: KeyMapEntry | None
    key: str
    version: int


@dataclass(frozen=True)
class Commit:
    """What one claimed record's write applied: the version, content hash, target key and master."""

    entry: KeyMapEntry
    version: int
    hash: str
    target_key: str | None
    master: str | None


@dataclass
class _Write:
    """An entry to write: created if there was none (`old` None), else over `old`'s ETag."""

    old: KeyMapEntry | None
    new: KeyMapEntry


def _entity(entry: KeyMapEntry) -> dict[str, Any]:
    # `failed` is left out on purpose: applying writes the entry without the failure mark.
    return {
        "PartitionKey": entry.flow,
        "RowKey": row_key(entry.source_key),
        "target_key": entry.target_key,
        "version": int64(entry.version),
        "hash": entry.hash,
        "master": entry.master,
        "lease_version": None if entry.lease_version is None else int64(entry.lease_version),
        "lease_until": entry.lease_until,
        "source_id": entry.source_id,
    }


def _from_entity(flow: str, e: Any) -> KeyMapEntry:
    return KeyMapEntry(
        flow=flow,
        source_key=source_key(e["RowKey"]),
        target_key=e.get("target_key"),
        version=read_int(e.get("version", -1)),
        hash=e.get("hash"),
        master=e.get("master"),
        lease_version=None if e.get("lease_version") is None else read_int(e["lease_version"]),
        lease_until=e.get("lease_until"),
        failed=bool(e.get("failed")),
        source_id=e.get("source_id"),
        etag=e.metadata["etag"],
    )


def _busy(key: str) -> RecordBusy:
    return RecordBusy(f"record {key!r} is being applied by another worker")


class KeyMapStore:
    """`p2ckeymap`: one partition per flow, one row per source key (see `row_key`)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _table(self) -> TableClient:
        return table(self.storage, KEYMAP)

    def get(self, flow: str, key: str) -> KeyMapEntry | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            e = self._table().get_entity(flow, row_key(key))
        except ResourceNotFoundError:
            return None
        return _from_entity(flow, e)

    def get_many(self, flow: str, keys: list[str]) -> dict[str, KeyMapEntry]:
        """The entries of many records, by point reads: a filter that ORs row keys is a
        partition scan in Table Storage, which grows with the key map."""
        found: dict[str, KeyMapEntry] = {}
        for key in keys:
            if (entry := self.get(flow, key)) is not None:
                found[key] = entry
        return found

    def entries(self, flow: str) -> list[KeyMapEntry]:
        """Every entry of a flow (a partition scan: for reports, not for the apply path)."""
        rows = self._table().query_entities("PartitionKey eq @f", parameters={"f": flow})
        return [replace(_from_entity(flow, r), lease_version=None, lease_until=None, failed=False, etag=None)
                for r in rows]  # fmt: skip

    def mark_failed(self, flow: str, key: str) -> None:
        """Mark the entry (creating it if need be) so the record's next success clears its failure."""
        from azure.data.tables import UpdateMode

        self._table().upsert_entity(
            {"PartitionKey": flow, "RowKey": row_key(key), "failed": True}, mode=UpdateMode.MERGE
        )

    def claim(self, entry: KeyMapEntry | None, flow: str, key: str, version: int, lease: timedelta) -> KeyMapEntry:
        """Take the apply lease on one record, so two workers never write it at once.

        Raises RecordBusy when another worker holds an unexpired lease or won the race.
        """
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        at = now()
        if entry is not None and entry.leased(at):
            raise _busy(key)
        claimed = entry or KeyMapEntry(flow=flow, source_key=key)
        claimed.lease_version = version
        claimed.lease_until = (at + lease).isoformat()
        client = self._table()
        try:
            if entry is None or entry.etag is None:  # no row yet (or one read under its old key)
                meta = client.create_entity(_entity(claimed))
            else:
                meta = replace_if_unchanged(client, _entity(claimed), entry.etag)
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
            meta = replace_if_unchanged(self._table(), _entity(entry), entry.etag)
        except (ResourceModifiedError, ResourceNotFoundError):
            raise RecordBusy(f"lease on record {entry.source_key!r} expired before commit") from None
        entry.etag = meta["etag"]

    def claim_many(self, flow: str, claims: list[Claim], lease: timedelta) -> list[KeyMapEntry | RecordBusy]:
        """`claim` for many records in one table transaction per 100.

        A transaction is all or nothing: if one claim lost a race, each is claimed
        alone, so only the record that lost waits.
        """
        at = now()
        out: list[KeyMapEntry | RecordBusy] = []
        todo: dict[int, _Write] = {}
        for c in claims:
            if c.entry is not None and c.entry.leased(at):
                out.append(_busy(c.key))
                continue
            claimed = replace(c.entry) if c.entry is not None else KeyMapEntry(flow=flow, source_key=c.key)
            claimed.lease_version, claimed.lease_until = c.version, (at + lease).isoformat()
            todo[len(out)] = _Write(c.entry, claimed)
            out.append(claimed)
        for n in self._transact(todo):
            entry, claimed = todo[n].old, todo[n].new
            try:
                out[n] = self.claim(entry, flow, claimed.source_key, claimed.lease_version or 0, lease)
            except RecordBusy as exc:
                out[n] = exc
        return out

    def commit_many(self, commits: list[Commit]) -> list[RecordBusy | None]:
        """`commit` for many records; None for each that committed, RecordBusy for each that
        lost its lease (only those: a failed transaction is redone record by record)."""
        out: list[RecordBusy | None] = [None] * len(commits)
        todo: dict[int, _Write] = {}
        for n, c in enumerate(commits):
            before = replace(c.entry)
            c.entry.version, c.entry.hash = c.version, c.hash
            c.entry.target_key, c.entry.master = c.target_key, c.master
            c.entry.lease_version = c.entry.lease_until = None
            todo[n] = _Write(before, c.entry)
        for n in self._transact(todo):
            c, before = commits[n], todo[n].old
            assert before is not None  # a commit is over a claimed entry
            try:
                self.commit(before, version=c.version, hash=c.hash, target_key=c.target_key, master=c.master)
                c.entry.etag = before.etag
            except RecordBusy as exc:
                out[n] = exc
        return out

    def _transact(self, todo: dict[int, _Write]) -> list[int]:
        """Write each entry in transactions of 100; returns the positions of those in a
        transaction that failed, to redo one by one (its writes were all undone)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError
        from azure.data.tables import UpdateMode

        client, redo = self._table(), []
        for part in chunks(list(todo.items())):
            ops: list[Any] = [
                ("create", _entity(w.new)) if w.old is None or w.old.etag is None else
                ("update", _entity(w.new),
                 {"mode": UpdateMode.REPLACE, "etag": w.old.etag, "match_condition": MatchConditions.IfNotModified})
                for _, w in part
            ]  # fmt: skip
            try:
                metas = client.submit_transaction(ops)
            except HttpResponseError:  # a lost race, or the same record twice in one message
                redo.extend(n for n, _ in part)
                continue
            for (_, w), meta in zip(part, metas, strict=True):
                w.new.etag = meta["etag"]
        return redo

    def release(self, entry: KeyMapEntry) -> None:
        """Drop our lease after a failed apply, keeping the last applied version."""
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        entry.lease_version = entry.lease_until = None
        # If someone took over after our lease expired, the record is theirs now.
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
            replace_if_unchanged(self._table(), _entity(entry), entry.etag)
