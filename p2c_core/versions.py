"""Bounds on the version a record may carry: no later than its source can have issued.

A version decides what is newer (invariant 3), so one too high pins a record: a message
with version 2^63-1 once made every later real change look older. Signed messages carry
only versions p2c read, but a failure entry (table state, writable by others) is re-signed
by `replay`, so the apply checks the version against the source itself:

- F&O records carry the poll's start time in ms: no later than now plus `FNO_SKEW_MS`
  (clocks of workers differ by seconds; minutes are plenty).
- Dataverse records carry the row's `versionnumber`, a SQL `rowversion`: one counter per
  database, incremented for each insert or update (learn.microsoft.com, "rowversion
  (Transact-SQL)"), so a version above the highest the org has issued is not a real one.
  The poll records the highest version it read in the cursor table *before* it enqueues
  the page (`note`), so no slack is needed for records p2c read itself; a version above
  that is asked of the service (`versionnumber ge v`, one request, cached), which covers
  state from before this bound existed (an upgrade) and `reconcile`'s snapshot reads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from p2c_core.errors import MessageError
from p2c_core.flow import Flow

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from p2c_core.clients.dataverse import DataverseClient
    from p2c_core.envelope import Record
    from p2c_core.state.storage import Storage

FNO_SKEW_MS = 5 * 60 * 1000
TABLE = "p2ccursors"  # beside each flow's cursor row, in its own row
ROW = "version-bound"


class VersionOutOfRange(MessageError):
    """A record's version is later than its source can have issued: not applied."""


class VersionBounds:
    """The highest Dataverse version known issued, per flow: cached, recorded, asked."""

    def __init__(self, storage: Storage, dataverse: Callable[[], DataverseClient]) -> None:
        self._storage = storage
        self._dataverse = dataverse
        self._known: dict[str, int] = {}
        self._lock = threading.Lock()
        self._table_ready = False

    def _table(self) -> TableClient:
        if not self._table_ready:
            self._storage.tables.create_table_if_not_exists(TABLE)
            self._table_ready = True
        return self._storage.table(TABLE)

    def _raise(self, flow: str, version: int) -> None:
        with self._lock:
            self._known[flow] = max(self._known.get(flow, -1), version)

    def note(self, flow: Flow, versions: Iterable[int]) -> None:
        """Record the highest version about to be enqueued, before it is (Dataverse sources)."""
        if flow.source.service != "dataverse":
            return
        top = max(versions, default=-1)
        if top <= self._known.get(flow.name, -1):
            return
        from azure.data.tables import EdmType, EntityProperty, UpdateMode

        self._table().upsert_entity(
            {"PartitionKey": flow.name, "RowKey": ROW, "version": EntityProperty(top, EdmType.INT64)},
            mode=UpdateMode.MERGE,
        )
        self._raise(flow.name, top)

    def check(self, flow: Flow, record: Record) -> None:
        """Raise VersionOutOfRange for a version the source cannot have issued."""
        if flow.source.service != "dataverse":
            limit = int(time.time() * 1000) + FNO_SKEW_MS
            if record.version > limit:
                raise VersionOutOfRange(f"version {record.version} is later than now: not an F&O poll time")
            return
        if record.version <= self._known.get(flow.name, -1):
            return
        self._raise(flow.name, self._recorded(flow.name))
        if record.version <= self._known[flow.name] or self._issued(flow, record.version):
            return
        raise VersionOutOfRange(
            f"version {record.version} is above any {flow.source.entity_set} row version the service has issued"
        )

    def _recorded(self, flow: str) -> int:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            entity = self._table().get_entity(flow, ROW)
        except ResourceNotFoundError:
            return -1
        value = entity.get("version", -1)
        return int(getattr(value, "value", value))

    def _issued(self, flow: Flow, version: int) -> bool:
        """Ask the service whether a row of the flow's source has this version or a later one."""
        from p2c_core.flow import id_column
        from p2c_core.sources import VERSION_COLUMN  # here: sources imports much more

        entity_set = flow.source.entity_set
        body = self._dataverse().odata.get_json(
            entity_set,
            params={"$select": id_column(entity_set), "$filter": f"{VERSION_COLUMN} ge {version}", "$top": "1"},
        )
        if body.get("value"):
            self._raise(flow.name, version)
            return True
        return False
