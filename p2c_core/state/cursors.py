"""Cursors: where each flow's next poll starts (ETag-guarded), and the operator's pause flag."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache

from p2c_core.errors import CursorConflict
from p2c_core.state.tables import CURSORS, now, replace_if_unchanged, table

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from p2c_core.state.storage import Storage

_CURSOR, _PAUSED = "cursor", "paused"  # the two rows of a flow's partition
# How long a process trusts the pause flag it read: every message asks whether its flow is
# paused, and the answer changes only when an operator (or auto-pause) says so. A pause or
# resume in this process counts at once; one made elsewhere (`p2c pause`, the console, another
# instance) within this many seconds. Messages applied meanwhile are applied, as they would
# be had the pause come a moment later.
PAUSE_CACHE_S = 5.0


def cursor_row(company: str | None) -> str:
    """The RowKey of a flow's cursor: `cursor`, or `cursor|<company>` for an F&O flow's scan
    of a company other than the default one (whose scan keeps the row one company wrote)."""
    return _CURSOR if company is None else f"{_CURSOR}|{company}"


@dataclass
class Cursor:
    """Where a flow's next poll starts. `link` is a nextLink (scan under way) or deltaLink."""

    flow: str
    link: str | None = None
    watermark: str | None = None
    scan_started: str | None = None
    updated_at: str | None = None
    etag: str | None = None
    # A digest of the columns the source is read with: a delta link keeps the columns of the
    # read that began it, so a mapping that reads more must begin again (None: not recorded).
    columns: str | None = None
    # The legal entity an F&O flow's cursor scans (None: the default company, P2C_FNO_COMPANY,
    # and every Dataverse source: one change-tracking read serves every company).
    company: str | None = None


class CursorStore:
    """`p2ccursors`: per flow, a `cursor` row written only over the version last read (ETag)
    and a `paused` row beside it, so cursor writes never clobber an operator's pause."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._paused = TTLCache[str, bool](maxsize=1024, ttl=PAUSE_CACHE_S)
        self._lock = threading.Lock()

    def _table(self) -> TableClient:
        return table(self.storage, CURSORS)

    def get(self, flow: str, company: str | None = None) -> Cursor:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            e = self._table().get_entity(flow, cursor_row(company))
        except ResourceNotFoundError:
            return Cursor(flow=flow, company=company)
        return Cursor(
            flow=flow,
            link=e.get("link"),
            watermark=e.get("watermark"),
            scan_started=e.get("scan_started"),
            updated_at=e.get("updated_at"),
            etag=e.metadata["etag"],
            columns=e.get("columns"),
            company=company,
        )

    def put(self, cursor: Cursor) -> Cursor:
        """Write only if nobody else moved the cursor since we read it (ETag)."""
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError

        entity = {
            "PartitionKey": cursor.flow,
            "RowKey": cursor_row(cursor.company),
            "link": cursor.link,
            "watermark": cursor.watermark,
            "scan_started": cursor.scan_started,
            "updated_at": now().isoformat(),
        }
        if cursor.columns is not None:  # absent in cursors written before it was kept
            entity["columns"] = cursor.columns
        client = self._table()
        try:
            if cursor.etag is None:
                meta = client.create_entity(entity)
            else:
                meta = replace_if_unchanged(client, entity, cursor.etag)
        except (ResourceExistsError, ResourceModifiedError):
            raise CursorConflict(f"cursor of flow {cursor.flow!r} was moved by another poller") from None
        cursor.etag = meta["etag"]
        cursor.updated_at = entity["updated_at"]
        return cursor

    def set_paused(self, flow: str, paused: bool, reason: str | None = None) -> None:
        from azure.data.tables import UpdateMode

        with self._lock:
            self._paused.pop(flow, None)

        self._table().upsert_entity(
            {"PartitionKey": flow, "RowKey": _PAUSED, "paused": paused, "reason": reason,
             "updated_at": now().isoformat()},
            mode=UpdateMode.REPLACE,
        )  # fmt: skip

    def is_paused(self, flow: str) -> bool:
        """The pause flag, read at most once per `PAUSE_CACHE_S` per flow."""
        with self._lock:
            known = self._paused.get(flow)
        if known is not None:
            return known
        paused = bool(self.pause(flow).get("paused"))
        with self._lock:
            self._paused[flow] = paused
        return paused

    def pause(self, flow: str) -> dict[str, Any]:
        """The pause row: `paused`, `reason` (None for an operator's pause, and in rows
        written before reasons were kept), `updated_at`; {} when never paused."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            e = self._table().get_entity(flow, _PAUSED)
        except ResourceNotFoundError:
            return {}
        return {"paused": bool(e.get("paused")), "reason": e.get("reason"), "updated_at": e.get("updated_at")}
