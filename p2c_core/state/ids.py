"""Source row id -> natural key, for Dataverse sources: how a delete (which names only the
row's GUID) finds its record, and how a changed natural key is told from a new record.

Kept in the key map table, in a side partition per flow (`<flow>~id`, like `~seen`), one
row per GUID: a point read, where a filter on an entry property would scan the partition.
Entries written before this existed have no row here; their next write adds it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from p2c_core.state.tables import KEYMAP, row_key
from p2c_core.state.transact import submit

if TYPE_CHECKING:
    from p2c_core.state.storage import Storage


def _partition(flow: str) -> str:
    return f"{flow}~id"


def key_of(storage: Storage, flow: str, source_id: str) -> str | None:
    """The natural key the row was last written under, or None."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return storage.table(KEYMAP).get_entity(_partition(flow), row_key(source_id.lower()))["key"]
    except ResourceNotFoundError:  # no such row (or no table yet)
        return None


def remember(storage: Storage, flow: str, ids: dict[str, str]) -> None:
    """Record `source id -> key` for rows just written (in transactions of 100)."""
    ops: list[Any] = [
        ("upsert", {"PartitionKey": _partition(flow), "RowKey": row_key(sid.lower()), "key": key})
        for sid, key in ids.items()
    ]
    table = storage.table(KEYMAP)
    for i in range(0, len(ops), 100):
        submit(table, ops[i : i + 100])


def reserve(storage: Storage, flow: str, ids: dict[str, str]) -> set[str]:
    """Create `source id -> key` rows for new records before they are written (in transactions
    of 100): returns the ids created. A transaction fails whole when one of its ids has a row;
    those records are checked one by one (`lifecycle.check_key`) and remembered after commit."""
    from azure.core.exceptions import HttpResponseError

    rows = [(sid, {"PartitionKey": _partition(flow), "RowKey": row_key(sid.lower()), "key": key})
            for sid, key in ids.items()]  # fmt: skip
    table = storage.table(KEYMAP)
    created: set[str] = set()
    for i in range(0, len(rows), 100):
        part = rows[i : i + 100]
        try:
            submit(table, [("create", row) for _, row in part])
        except HttpResponseError:
            continue
        created.update(sid for sid, _ in part)
    return created
