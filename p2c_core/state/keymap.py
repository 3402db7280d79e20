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
from p2c_core.state.buckets import partition, partition_range
from p2c_core.state.keyreads import read_rows
from p2c_core.state.legacy import LegacyPartitions
from p2c_core.state.tables import KEYMAP, chunks, int64, now, read_int, replace_if_unchanged, row_key, source_key, table
from p2c_core.state.transact import submit

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
    # Read from the flow's old single partition (state/legacy.py): its next write moves it.
    legacy: bool = False

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
        "PartitionKey": partition(entry.flow, entry.source_key),
        "RowKey": row_key(entry.source_key),
        "target_key": entry.target_key,
        "version": int64(entry.version),
        "hash": entry.hash,
        "master": entry.master,
        "lease_version": None if entry.lease_version is None else int64(entry.lease_version),
        "lease_until": entry.lease_until,
        "source_id": entry.source_id,
    }


def _from_entity(flow: str, e: Any, *, legacy: bool = False) -> KeyMapEntry:
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
        legacy=legacy,
    )


def own_claim(entry: KeyMapEntry | None, version: int, until: datetime) -> bool:
    """Whether `entry` is the one a `claim_new` leasing until `until` created for this version,
    read back because the transaction seemed to fail: the storage client retries a request
    whose answer it lost, and the retry of creates that went through meets them ("already
    exists"). Never applied and leased to the microsecond of this claim: no other claim's."""
    return (
        entry is not None and entry.etag is not None and not entry.legacy and entry.version == -1
        and entry.target_key is None and entry.lease_version == version and entry.lease_until == until.isoformat()
    )  # fmt: skip


def _busy(key: str) -> RecordBusy:
    return RecordBusy(f"record {key!r} is being applied by another worker", leased=True)


class KeyMapStore:
    """`p2ckeymap`: per flow `BUCKETS` partitions (state/buckets.py), one row per source key
    (see `row_key`); entries of the form before buckets are read and moved (state/legacy.py)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.legacy = LegacyPartitions(storage)

    def _table(self) -> TableClient:
        return table(self.storage, KEYMAP)

    def get(self, flow: str, key: str) -> KeyMapEntry | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            e = self._table().get_entity(partition(flow, key), row_key(key))
        except ResourceNotFoundError:
            if self.legacy.possible(flow) and (old := self.legacy.read(flow, row_key(key))) is not None:
                return _from_entity(flow, old, legacy=True)
            return None
        return _from_entity(flow, e)

    def get_many(self, flow: str, keys: list[str]) -> dict[str, KeyMapEntry]:
        """The entries of many records, each as `get` reads it (a key with none is absent),
        in few requests: per bucket partition a query per 14 keys, or a point read where a
        partition has one (state/keyreads.py); the old single partition likewise for those
        its bucket misses."""
        rows = {row_key(k): k for k in keys}
        by_partition: dict[str, list[str]] = {}
        for row, key in rows.items():
            by_partition.setdefault(partition(flow, key), []).append(row)
        client, found = self._table(), {}
        for name, wanted in by_partition.items():
            found |= {rows[r]: _from_entity(flow, e) for r, e in read_rows(client, name, wanted).items()}
        missing = [r for r, k in rows.items() if k not in found]
        if missing and self.legacy.possible(flow):
            found |= {rows[r]: _from_entity(flow, e, legacy=True) for r, e in read_rows(client, flow, missing).items()}
        return found

    def entries(self, flow: str) -> list[KeyMapEntry]:
        """Every entry of a flow (partition scans: for reports, not for the apply path)."""
        first, last = partition_range(flow)
        rows = self._table().query_entities(
            "PartitionKey ge @a and PartitionKey le @b", parameters={"a": first, "b": last}
        )
        found = {r["RowKey"]: r for r in rows}
        if self.legacy.possible(flow):  # not moved yet; a moved entry is the newer one
            old = self._table().query_entities("PartitionKey eq @f", parameters={"f": flow})
            found = {r["RowKey"]: r for r in old} | found
        return [replace(_from_entity(flow, r), lease_version=None, lease_until=None, failed=False, etag=None)
                for r in found.values()]  # fmt: skip

    def mark_failed(self, flow: str, key: str) -> None:
        """Mark the entry (creating it if need be) so the record's next success clears its failure."""
        from azure.data.tables import UpdateMode

        if self.legacy.possible(flow) and (entry := self.get(flow, key)) is not None and entry.legacy:
            self._move(entry, failed=True)
            return
        self._table().upsert_entity(
            {"PartitionKey": partition(flow, key), "RowKey": row_key(key), "failed": True}, mode=UpdateMode.MERGE
        )

    def _move(self, entry: KeyMapEntry, *, failed: bool) -> None:
        """An old-form entry into its bucket partition, as it is (and marked failed)."""
        from azure.core.exceptions import ResourceExistsError
        from azure.data.tables import UpdateMode

        entity = _entity(entry) | ({"failed": True} if failed or entry.failed else {})
        try:
            self._table().create_entity(entity)
        except ResourceExistsError:  # moved meanwhile: that one is newer; mark it
            if failed:
                self._table().upsert_entity(
                    {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"], "failed": True},
                    mode=UpdateMode.MERGE,
                )
        self._drop_legacy([entry])

    def _drop_legacy(self, entries: list[KeyMapEntry]) -> None:
        by_flow: dict[str, list[tuple[str, str]]] = {}
        for e in entries:
            if e.legacy and e.etag is not None:
                by_flow.setdefault(e.flow, []).append((row_key(e.source_key), e.etag))
        for flow, rows in by_flow.items():
            self.legacy.drop(flow, rows)

    def claim(self, entry: KeyMapEntry | None, flow: str, key: str, version: int, lease: timedelta) -> KeyMapEntry:
        """Take the apply lease on one record, so two workers never write it at once.

        Raises RecordBusy when another worker holds an unexpired lease or won the race.
        """
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        at = now()
        if entry is not None and entry.leased(at):
            raise _busy(key)
        old = replace(entry) if entry is not None and entry.legacy else None
        claimed = entry or KeyMapEntry(flow=flow, source_key=key)
        claimed.lease_version = version
        claimed.lease_until = (at + lease).isoformat()
        claimed.legacy = False
        client = self._table()
        try:
            # New, read under its key of before several companies (no ETag), or moving out of
            # the old single partition: created where it now belongs.
            if entry is None or entry.etag is None or old is not None:
                meta = client.create_entity(_entity(claimed))
            else:
                meta = replace_if_unchanged(client, _entity(claimed), entry.etag)
        except (ResourceExistsError, ResourceModifiedError):
            raise RecordBusy(f"record {key!r} was claimed by another worker") from None
        claimed.etag = meta["etag"]
        if old is not None:
            self._drop_legacy([old])
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
            claimed.legacy = False
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
        """Write each entry in transactions of 100 per partition; returns the positions of
        those in a transaction that failed, to redo one by one (its writes were all undone)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError
        from azure.data.tables import UpdateMode

        client, redo = self._table(), []
        by_partition: dict[str, list[tuple[int, _Write]]] = {}
        for n, w in todo.items():
            by_partition.setdefault(partition(w.new.flow, w.new.source_key), []).append((n, w))
        moved: list[KeyMapEntry] = []
        for part in (p for writes in by_partition.values() for p in chunks(writes)):
            ops: list[Any] = [
                ("create", _entity(w.new)) if w.old is None or w.old.etag is None or w.old.legacy else
                ("update", _entity(w.new),
                 {"mode": UpdateMode.REPLACE, "etag": w.old.etag, "match_condition": MatchConditions.IfNotModified})
                for _, w in part
            ]  # fmt: skip
            try:
                metas = submit(client, ops)
            except HttpResponseError:  # a lost race, or the same record twice in one message
                redo.extend(n for n, _ in part)
                continue
            for (_, w), meta in zip(part, metas, strict=True):
                w.new.etag = meta["etag"]
                if w.old is not None and w.old.legacy:
                    moved.append(w.old)
        self._drop_legacy(moved)
        return redo

    def release(self, entry: KeyMapEntry) -> None:
        """Drop our lease after a failed apply, keeping the last applied version."""
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

        entry.lease_version = entry.lease_until = None
        # If someone took over after our lease expired, the record is theirs now.
        with contextlib.suppress(ResourceModifiedError, ResourceNotFoundError):
            replace_if_unchanged(self._table(), _entity(entry), entry.etag)

    def claim_new(
        self, flow: str, claims: list[Claim], lease: timedelta, *, at: datetime | None = None
    ) -> list[KeyMapEntry | None]:
        """Claim records taken to be new by creating their entries, a transaction per partition
        and 100, with no read before: a create fails when the entry exists ("create; on
        conflict read"). Each gets its claimed entry, or None where its transaction failed
        (one of its records has an entry, or the same record came twice): read those and
        `claim_many` them. After the first failed transaction the rest are not tried (a
        message of known records costs one failed transaction, not one per partition).
        Not while the flow still has entries in the old form (they would be missed): then
        every result is None. The leases run from `at` (now): a caller that keeps it knows
        its own claims when a transaction's answer is lost (`own_claim`)."""
        out: list[KeyMapEntry | None] = [None] * len(claims)
        if self.legacy.possible(flow):
            return out
        until = ((at or now()) + lease).isoformat()
        by_partition: dict[str, dict[int, _Write]] = {}
        for n, c in enumerate(claims):
            new = KeyMapEntry(flow=flow, source_key=c.key, lease_version=c.version, lease_until=until)
            by_partition.setdefault(partition(flow, c.key), {})[n] = _Write(None, new)
        for writes in by_partition.values():
            for part in chunks(list(writes.items())):
                if self._transact(dict(part)):
                    return out
                for n, w in part:
                    out[n] = w.new
        return out

    def discard(self, entries: list[KeyMapEntry]) -> None:
        """Delete entries `claim_new` created for records that then wrote nothing (their
        lease still ours: never committed), so they read as never seen, as before the claim."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError

        client = self._table()
        by_partition: dict[str, list[KeyMapEntry]] = {}
        for e in entries:
            by_partition.setdefault(partition(e.flow, e.source_key), []).append(e)
        for name, group in by_partition.items():
            for part in chunks(group):
                ops: list[Any] = [
                    ("delete", {"PartitionKey": name, "RowKey": row_key(e.source_key)},
                     {"etag": e.etag, "match_condition": MatchConditions.IfNotModified})
                    for e in part
                ]  # fmt: skip
                try:
                    submit(client, ops)
                except HttpResponseError:  # one was taken over: the rest one by one
                    for e in part:
                        with contextlib.suppress(HttpResponseError):
                            client.delete_entity(name, row_key(e.source_key), etag=e.etag,
                                                 match_condition=MatchConditions.IfNotModified)  # fmt: skip
