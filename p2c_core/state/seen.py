"""What F&O polls sent on: per flow, source key -> digest of the source row.

F&O entities have no change tracking p2c can read, so a poll compares each row's digest
with the one sent last time. The digests live in the key map table, in a side partition
`<flow>~seen` beside the flow's entries and never mixed with them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2c_core.state.tables import KEYMAP, chunks, delete_rows, row_key, source_key, table
from p2c_core.state.transact import submit

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from p2c_core.state.storage import Storage


def seen_partition(flow: str, company: str | None = None) -> str:
    """The key map partition of an F&O flow's sent digests: `<flow>~seen`, or
    `<flow>~seen|<company>` for a company other than the default one (P2C_FNO_COMPANY, whose
    digests stay where one company wrote them). Keys in it are the company's natural keys."""
    return f"{flow}~seen" if company is None else f"{flow}~seen|{company}"


class SeenStore:
    """The digests of the rows an F&O flow sent on, in the key map table's `<flow>~seen` partition."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _table(self) -> TableClient:
        return table(self.storage, KEYMAP)

    def get(self, flow: str, company: str | None = None) -> dict[str, str]:
        rows = self._table().query_entities(
            "PartitionKey eq @p", parameters={"p": seen_partition(flow, company)}, select=["RowKey", "digest"]
        )
        return {source_key(r["RowKey"]): r["digest"] for r in rows}

    def range(self, flow: str, keys: list[str], company: str | None = None) -> dict[str, str]:
        """The digests of the rows from the least to the greatest of `keys` (by row key), one
        range query: a window's, without reading the whole partition. {} for no keys."""
        if not keys:
            return {}
        rows_keys = sorted(row_key(k) for k in keys)
        rows = self._table().query_entities(
            "PartitionKey eq @p and RowKey ge @a and RowKey le @b",
            parameters={"p": seen_partition(flow, company), "a": rows_keys[0], "b": rows_keys[-1]},
            select=["RowKey", "digest"],
        )
        return {source_key(r["RowKey"]): r["digest"] for r in rows}

    def mark(self, flow: str, digests: dict[str, str], company: str | None = None) -> None:
        partition = seen_partition(flow, company)
        ops = [("upsert", {"PartitionKey": partition, "RowKey": row_key(k), "digest": d}) for k, d in digests.items()]
        client = self._table()
        for part in chunks(ops):
            submit(client, list(part))

    def clear(self, flow: str, company: str | None = None) -> None:
        partition = seen_partition(flow, company)
        client = self._table()
        rows = client.query_entities("PartitionKey eq @p", parameters={"p": partition}, select=["RowKey"])
        delete_rows(client, partition, [r["RowKey"] for r in rows])
