"""How many instances talk to a service as one identity: a small lease table in Table Storage.

Every process that paces requests for an identity keeps one row in table `p2cpacing`
(its own table: nothing of the state stores' partitions): PartitionKey a digest of the
service and identity (no client id or secret in the table), RowKey the process's id, and
the time it last said it is alive, and what one operation costs as it learned it (pacing.py).
Counting the rows renewed within `ttl_s` gives the
number of peers that share the identity's budget; each then paces itself to 1/N of it
(pacing.py). A row is renewed, and the partition read, every second for the first `ttl_s` (instances
start together), then at most every `refresh_s`: two storage requests per process and
identity every 10 s. An instance that stops is no longer
counted after `ttl_s`. Storage errors keep the last count: pacing never fails a request.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

log = logging.getLogger("p2c.pacing")

TABLE = "p2cpacing"
# What one operation costs, as the row's instance learned it: a new instance paces by it from
# its first request, not after one request sent alone (a batch: seconds).
COST = "per_operation"
# This process, as its row names it.
INSTANCE = uuid.uuid4().hex


class LeaseTable(Protocol):
    def upsert_entity(self, entity: dict[str, Any], **kwargs: Any) -> Any: ...
    def query_entities(self, query_filter: str, **kwargs: Any) -> Any: ...


def partition(service: str, identity: str) -> str:
    return hashlib.sha256(f"{service}\n{identity}".encode()).hexdigest()[:32]


class TablePeers:
    """`count()`: live instances of one identity, this one included (at least 1)."""

    def __init__(
        self,
        table: Callable[[], LeaseTable],
        service: str,
        identity: str,
        *,
        instance: str = INSTANCE,
        refresh_s: float = 10.0,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._table = table
        self.partition = partition(service, identity)
        self.instance = instance
        self.refresh_s, self.ttl_s, self.clock = refresh_s, ttl_s, clock
        self._count = 1
        self._mine: float | None = None  # what one operation costs, as this instance learned it
        self._theirs: float | None = None  # the most a live peer says it costs
        self._checked: float | None = None
        self._first: float | None = None
        self._lock = threading.Lock()

    def count(self) -> int:
        now = self.clock()
        with self._lock:
            if self._first is None:
                self._first = now
            # Soon after start, instances start together: look every second until they all
            # have said so (one ttl), then every refresh_s.
            every = 1.0 if now - self._first < self.ttl_s else self.refresh_s
            if self._checked is not None and now - self._checked < every:
                return self._count
            self._checked = now
        try:
            table = self._table()
            row: dict[str, Any] = {"PartitionKey": self.partition, "RowKey": self.instance, "seen": now}
            if self._mine is not None:
                row[COST] = self._mine
            table.upsert_entity(row)
            rows = table.query_entities(f"PartitionKey eq '{self.partition}'", select=["RowKey", "seen", COST])
            live = [r for r in rows if float(r.get("seen", 0)) >= now - self.ttl_s]
            counted = max(1, len({r["RowKey"] for r in live} | {self.instance}))
            # Rows of before have no cost: they count, and say nothing of it.
            costs = [float(r[COST]) for r in live if r["RowKey"] != self.instance and r.get(COST)]
        except Exception as exc:  # pacing goes on with what it knew
            log.info("pacing lease table not reachable, keeping %d peer(s): %s", self._count, type(exc).__name__)
            return self._count
        with self._lock:
            self._count = counted
            self._theirs = max(costs, default=None)
        return counted

    def publish(self, per_operation: float) -> None:
        """What one operation costs, as this instance learned it: in its row from its next renewal."""
        self._mine = per_operation

    def cost(self) -> float | None:
        """What one operation costs, as live peers learned it (the most any says), if any has."""
        return self._theirs
