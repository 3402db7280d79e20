"""Reference ids found in Sales, shared by every instance: a small table in Table Storage.

Each worker process remembers the reference rows it found (references.py), but N instances
starting together would each ask Sales for the same currency, unit and price list. So a
found id is also kept in table `p2crefs` (its own table, like `p2cpacing`): PartitionKey a
digest of the Dataverse URL (one org's ids), RowKey a SHA-256 digest of the natural key
(entity set, column, value: a value may hold `/ \\ # ?` or control characters, which keys
may not), and as columns the natural key, the id and when it was found. A row is honoured
for the same TTL as the process cache, counted from when the id was found in Sales.

So that instances starting together do not all ask: the first to create a key's row as
`pending` (or to replace an expired one, by its ETag) looks the id up and writes it; the
others read the row again every `poll_s` for up to `wait_s`, then ask Sales themselves.
A value Sales does not have is written as `missing`, honoured only by those waiting now
(a missing reference is never remembered: it may be added any time). Storage errors never
fail a look-up: Sales is asked, and the error is logged (its class only) at info.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("p2c.references")

TABLE = "p2crefs"
FOUND, PENDING, MISSING = "found", "pending", "missing"


class RefTable(Protocol):
    def get_entity(self, partition_key: str, row_key: str, **kwargs: Any) -> Any: ...
    def create_entity(self, entity: dict[str, Any], **kwargs: Any) -> Any: ...
    def upsert_entity(self, entity: dict[str, Any], **kwargs: Any) -> Any: ...
    def update_entity(self, entity: dict[str, Any], **kwargs: Any) -> Any: ...
    def delete_entity(self, partition_key: str, row_key: str, **kwargs: Any) -> Any: ...


def partition(org: str) -> str:
    return hashlib.sha256(org.rstrip("/").lower().encode()).hexdigest()[:32]


def row_key(natural: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(natural).encode()).hexdigest()


@dataclass(frozen=True)
class Found:
    """What a look-up settled: the id (None: not in Sales) and since when it is known."""

    id: str | None
    at: float


class SharedRefs:
    """`lookup(natural, find)`: the id from the table when fresh, else `find()` (Sales), shared."""

    def __init__(
        self,
        table: Callable[[], RefTable],
        org: str,
        *,
        ttl_s: float = 900.0,
        wait_s: float = 2.0,
        poll_s: float = 0.1,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._table = table
        self.partition = partition(org)
        self.ttl_s, self.wait_s, self.poll_s = ttl_s, wait_s, poll_s
        self.clock, self.sleep = clock, sleep

    def lookup(self, natural: Sequence[str], find: Callable[[], str | None]) -> Found:
        key = row_key(natural)
        try:
            table = self._table()
            settled = self._settle(table, key)
        except Exception as exc:  # the table is a shortcut, never a reason to fail
            log.info("reference table not reachable, asking Sales: %s", type(exc).__name__)
            return Found(find(), self.clock())
        if settled is not None:
            return settled
        # Ours to find (claimed, or the claimant took too long): Sales, then tell the others.
        try:
            found = Found(find(), self.clock())
        except Exception:
            self._quietly(lambda: table.delete_entity(self.partition, key))  # the others ask for themselves
            raise
        row = {"PartitionKey": self.partition, "RowKey": key, "natural": json.dumps(list(natural)), "at": found.at}
        state = {"state": FOUND, "id": found.id} if found.id is not None else {"state": MISSING}
        self._quietly(lambda: table.upsert_entity({**row, **state}))
        return found

    def forget(self, natural: Sequence[str]) -> None:
        """Drop a shared id that turned out wrong (deleted in Sales): the next look-up asks."""
        self._quietly(lambda: self._table().delete_entity(self.partition, row_key(natural)))

    def _settle(self, table: RefTable, key: str) -> Found | None:
        """A fresh answer from the table, or None when this instance is to ask Sales
        (it claimed the key, or waited `wait_s` for the instance that did)."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        deadline = self.clock() + self.wait_s
        while True:
            now = self.clock()
            try:
                row = table.get_entity(self.partition, key)
            except ResourceNotFoundError:
                row = None
            at = float((row or {}).get("at", 0.0))
            state = (row or {}).get("state")
            if state == FOUND and row and row.get("id") and now - at < self.ttl_s:
                return Found(str(row["id"]), at)
            if state == MISSING and now - at < self.wait_s:
                return Found(None, at)  # found missing just now, by the instance we waited for
            pending = {"PartitionKey": self.partition, "RowKey": key, "state": PENDING, "at": now}
            if row is None:
                try:
                    table.create_entity(pending)
                    return None
                except ResourceExistsError:
                    pass  # another instance claimed it first
            elif state == PENDING and now - at < self.wait_s:
                if now >= deadline:
                    return None
                self.sleep(self.poll_s)
            else:  # expired, or a claim left by an instance that stopped: claim it anew
                try:
                    etag = row.metadata["etag"]
                    table.update_entity(
                        pending, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                    )
                    return None
                except (ResourceModifiedError, ResourceNotFoundError):
                    pass  # another instance claimed it first
            if self.clock() >= deadline:
                return None

    def _quietly(self, write: Callable[[], Any]) -> None:
        try:
            write()
        except Exception as exc:
            log.info("reference table not written: %s", type(exc).__name__)
