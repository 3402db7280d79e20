"""Table plumbing shared by the state stores: names, row keys, Int64 values, ETag writes.

Each table is created on its first use, once per `Storage` instance (its `created_tables`);
the state tables together, on the first use of any.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote, unquote

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from p2c_core.state.storage import Storage

CURSORS, KEYMAP, RUNS, FAILURES = "p2ccursors", "p2ckeymap", "p2cruns", "p2cfailures"
TABLES = (CURSORS, KEYMAP, RUNS, FAILURES)

# A table transaction (entity group transaction) holds at most 100 operations.
# https://learn.microsoft.com/azure/storage/tables/scalability-targets
TRANSACTION_SIZE = 100

_T = TypeVar("_T")
_creating = threading.Lock()


def now() -> datetime:
    return datetime.now(UTC)


def row_key(key: str) -> str:
    """A RowKey for any source key: `/ \\ # ?`, control and non-ASCII chars encoded."""
    return quote(key, safe=" -_.~'!*()@,;:=+$&")


def source_key(row: str) -> str:
    """The source key a `row_key` was made from."""
    return unquote(row)


def int64(value: int) -> Any:
    """Versions are 64-bit (Dataverse row versions, F&O poll times in ms): say so to the table."""
    from azure.data.tables import EdmType, EntityProperty

    return EntityProperty(value, EdmType.INT64)


def read_int(value: Any) -> int:
    """An integer property as read back: a plain int (Int32) or an `EntityProperty` (Int64)."""
    return int(getattr(value, "value", value))


def table(storage: Storage, name: str) -> TableClient:
    """A client of one state table; the table exists after this. The first use of any
    creates the state tables (TABLES) together: one round trip's wait at a process's start,
    not one per table on its first poll's or message's path."""
    if name not in storage.created_tables:
        from concurrent.futures import ThreadPoolExecutor

        with _creating:
            names = [n for n in dict.fromkeys((name, *TABLES)) if n not in storage.created_tables]
            # Threads of their own, not fanout's pool: its threads may be the ones waiting here.
            with ThreadPoolExecutor(max_workers=max(1, len(names)), thread_name_prefix="p2c-create") as pool:
                list(pool.map(functools.partial(_create, storage), names))
            storage.created_tables.update(names)
    return storage.table(name)


def _create(storage: Storage, name: str) -> None:
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        storage.tables.create_table(name)


def replace_if_unchanged(client: TableClient, entity: dict[str, Any], etag: str | None) -> dict[str, Any]:
    """Replace an entity only if nobody changed it since we read it (ETag); else 412."""
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode

    return dict(
        client.update_entity(entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified)
    )


def chunks(items: Sequence[_T], size: int = TRANSACTION_SIZE) -> Iterator[Sequence[_T]]:
    """`items` in slices of at most `size`, for one table transaction each."""
    for i in range(0, len(items), size):
        yield items[i : i + size]


def delete_rows(client: TableClient, partition: str, rows: Sequence[str]) -> None:
    """Delete rows of one partition, a transaction per 100."""
    from p2c_core.state.transact import submit  # transact imports nothing of the state: no cycle

    for part in chunks(rows):
        submit(client, [("delete", {"PartitionKey": partition, "RowKey": r}) for r in part])
