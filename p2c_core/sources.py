"""Reading changes from a flow's source, page by page, with a resumable link."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from p2c_core.dataverse import DataverseClient
from p2c_core.flow import Flow, Lookup
from p2c_core.odata import Row

VERSION_COLUMN = "versionnumber"
# When a row last changed, for `reset-cursor --to TIME` (re-read changes since a moment).
MODIFIED_COLUMN = "modifiedon"


@dataclass
class SourcePage:
    rows: list[Row]
    # Where the next read resumes: a nextLink mid-scan, else the new deltaLink.
    resume: str | None
    done: bool
    deleted: list[str] = field(default_factory=list)


class ChangeReader(Protocol):
    def pages(self, link: str | None) -> Iterator[SourcePage]: ...

    def version_of(self, row: Row) -> int: ...


def _is_deleted(row: Row) -> bool:
    return str(row.get("@odata.context", "")).endswith("$deletedEntity") or row.get("reason") == "deleted"


class DataverseChanges:
    """Dataverse change tracking: initial full read, then delta links."""

    def __init__(self, client: DataverseClient, flow: Flow, lookups: LookupResolver) -> None:
        self.client = client
        self.flow = flow
        self.lookups = lookups

    def select(self) -> list[str]:
        return list(dict.fromkeys([*self.flow.source_columns(), VERSION_COLUMN, MODIFIED_COLUMN]))

    def pages(self, link: str | None) -> Iterator[SourcePage]:
        for page in self.client.track_changes(self.flow.source.entity_set, self.select(), link):
            rows = [r for r in page.rows if not _is_deleted(r)]
            deleted = [str(r.get("id")) for r in page.rows if _is_deleted(r)]
            self.lookups.resolve(self.flow, rows)
            link = page.next_link or page.delta_link
            yield SourcePage(
                rows=rows,
                resume=self.client.odata.relative(link) if link else None,
                done=page.next_link is None,
                deleted=deleted,
            )

    def version_of(self, row: Row) -> int:
        return int(row[VERSION_COLUMN])


class LookupResolver:
    """Resolves lookup GUIDs through small reference tables, cached per process.

    A table is read only when a page has a GUID it does not know, so an idle poll
    costs no extra request.
    """

    def __init__(self, client: DataverseClient, ttl_seconds: float = 900.0) -> None:
        self.client = client
        self.ttl = ttl_seconds
        self._cache: dict[tuple[str, str], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def _table(self, rule: Lookup, refresh: bool) -> dict[str, Any]:
        key = (rule.entity_set, rule.returns)
        with self._lock:
            cached = self._cache.get(key)
            if cached and not refresh and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
            values: dict[str, Any] = {}
            for page in self.client.query(rule.entity_set, select=[rule.id_column, rule.returns]):
                for row in page.rows:
                    values[str(row[rule.id_column]).lower()] = row.get(rule.returns)
            self._cache[key] = (time.monotonic(), values)
            return values

    def resolve(self, flow: Flow, rows: list[Row]) -> None:
        for rule in flow.rules().values():
            if not isinstance(rule, Lookup):
                continue
            column = f"_{rule.column}_value"
            ids = {str(r[column]).lower() for r in rows if r.get(column)}
            if not ids:
                for row in rows:
                    row.pop(column, None)
                    row[rule.column] = None
                continue
            table = self._table(rule, refresh=False)
            if not ids <= table.keys():
                table = self._table(rule, refresh=True)
            for row in rows:
                guid = row.pop(column, None)
                row[rule.column] = table.get(str(guid).lower()) if guid else None
