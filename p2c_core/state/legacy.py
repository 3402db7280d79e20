"""Key map entries in the form before buckets: partition = the flow's name.

Installations upgraded from that form have entries there. While a flow's old partition holds
any, a key map read that misses the bucket partition reads the old one too, and a write
moves the entry (created in its bucket partition, then deleted from the old one). Each poll
also moves a bounded slice (`migrate`), so the old partition empties without waiting for
every record to change. Once it is empty (nothing writes it any more) the fallback costs
nothing: that is remembered per process.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import TYPE_CHECKING, Any

from p2c_core.state.buckets import partition
from p2c_core.state.tables import KEYMAP, chunks, source_key, table
from p2c_core.state.transact import submit

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from p2c_core.state.storage import Storage

# How long a process trusts "the old partition still has entries" before it looks again.
RECHECK_S = 60.0
# Entries a poll moves per tick: one query page.
MIGRATE_PER_TICK = 1000


class LegacyPartitions:
    """The old single partition of each flow: whether it still holds entries, and moving them."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._empty: set[str] = set()  # flows whose old partition is known empty (for good)
        self._checked: dict[str, float] = {}
        self._lock = threading.Lock()

    def _table(self) -> TableClient:
        return table(self.storage, KEYMAP)

    def possible(self, flow: str) -> bool:
        """Whether the flow's old partition may hold entries (one query per `RECHECK_S`)."""
        with self._lock:
            if flow in self._empty:
                return False
            if time.monotonic() - self._checked.get(flow, -RECHECK_S) < RECHECK_S:
                return True
        rows = self._table().query_entities(
            "PartitionKey eq @p", parameters={"p": flow}, select=["RowKey"], results_per_page=1
        )
        found = next(iter(rows.by_page()), [])
        with self._lock:
            if not list(found):
                self._empty.add(flow)
                return False
            self._checked[flow] = time.monotonic()
            return True

    def read(self, flow: str, row: str) -> Any | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self._table().get_entity(flow, row)
        except ResourceNotFoundError:
            return None

    def drop(self, flow: str, rows: list[tuple[str, str]]) -> None:
        """Delete moved entries from the old partition (`(row key, etag)`): only as they were
        read, so an entry written there since (by a process of the old version) stays."""
        from azure.core import MatchConditions
        from azure.core.exceptions import HttpResponseError

        client = self._table()
        for part in chunks(rows):
            ops: list[Any] = [
                ("delete", {"PartitionKey": flow, "RowKey": r},
                 {"etag": e, "match_condition": MatchConditions.IfNotModified})
                for r, e in part
            ]  # fmt: skip
            try:
                submit(client, ops)
            except HttpResponseError:  # one gone or changed: the rest one by one
                for r, e in part:
                    with contextlib.suppress(HttpResponseError):
                        client.delete_entity(flow, r, etag=e, match_condition=MatchConditions.IfNotModified)

    def migrate(self, flow: str, limit: int | None = None) -> int:
        """Move up to `limit` entries to their bucket partitions; returns how many were looked at.

        An entry already in its bucket partition (moved by a write) is left there: it is the
        newer one. Creates go per bucket in transactions, one by one where one conflicts."""
        limit = MIGRATE_PER_TICK if limit is None else limit
        if limit <= 0 or not self.possible(flow):
            return 0
        client = self._table()
        pages = client.query_entities("PartitionKey eq @p", parameters={"p": flow}, results_per_page=limit).by_page()
        old = list(next(iter(pages), []))
        by_bucket: dict[str, list[Any]] = {}
        for e in old:
            by_bucket.setdefault(partition(flow, source_key(e["RowKey"])), []).append(e)
        for target, entities in by_bucket.items():
            for part in chunks(entities):
                self._create(client, target, list(part))
        self.drop(flow, [(e["RowKey"], str(e.metadata["etag"])) for e in old])
        with self._lock:
            self._checked.pop(flow, None)  # look again next time
        return len(old)

    @staticmethod
    def _create(client: TableClient, target: str, entities: list[Any]) -> None:
        from azure.core.exceptions import HttpResponseError, ResourceExistsError

        moved = [{**dict(e), "PartitionKey": target} for e in entities]
        try:
            submit(client, [("create", m) for m in moved])
        except HttpResponseError:
            for m in moved:
                with contextlib.suppress(ResourceExistsError):
                    client.create_entity(m)
