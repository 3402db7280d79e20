"""Digests of whole windows of an F&O scan: per flow and window number, the key the window
starts after and one digest of every row in it (state/seen.py keeps the rows' own).

An idle window is told by one point read. Kept in the key map table, in a side partition
`<flow>~window` (like `~seen`), one row per window: as many rows as a scan has windows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2c_core.state.tables import KEYMAP, delete_rows, table

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from p2c_core.state.storage import Storage


def _partition(flow: str, company: str | None = None) -> str:
    # A company other than the default one has its own windows, as its own seen digests.
    return f"{flow}~window" if company is None else f"{flow}~window|{company}"


@dataclass(frozen=True)
class Window:
    """Window `number` of a scan: the rows after key `after` ("" for the first), and their digest."""

    number: int
    after: str
    digest: str


class WindowStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _table(self) -> TableClient:
        return table(self.storage, KEYMAP)

    def get(self, flow: str, number: int, company: str | None = None) -> Window | None:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            e = self._table().get_entity(_partition(flow, company), f"{number:08d}")
        except ResourceNotFoundError:
            return None
        return Window(number, e.get("after") or "", e.get("digest") or "")

    def put(self, flow: str, window: Window, company: str | None = None) -> None:
        self._table().upsert_entity(
            {"PartitionKey": _partition(flow, company), "RowKey": f"{window.number:08d}", "after": window.after,
             "digest": window.digest}
        )  # fmt: skip

    def clear(self, flow: str, company: str | None = None) -> None:
        client, partition = self._table(), _partition(flow, company)
        rows = client.query_entities("PartitionKey eq @p", parameters={"p": partition}, select=["RowKey"])
        delete_rows(client, partition, [r["RowKey"] for r in rows])
