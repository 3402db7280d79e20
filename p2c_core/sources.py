"""Reading changes from a flow's source, page by page, with a resumable link.

Dataverse sources are read by change tracking (delta links). F&O entities have no
delta links and no modified date-time, so they are scanned (or read from a date
watermark, for immutable documents) and a row goes on only when its content differs
from what the last poll sent.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from cachetools import TTLCache

from p2c_core import fno_window
from p2c_core.clients.dataverse import DataverseClient
from p2c_core.clients.fno import FnoClient
from p2c_core.clients.keys import is_guid, literal
from p2c_core.clients.odata import Row
from p2c_core.flow import Dataverse, FinOps, Flow, Lookup, id_column
from p2c_core.hashing import canonical_hash
from p2c_core.state.windows import Window

if TYPE_CHECKING:
    from p2c_core.state import StateStore

VERSION_COLUMN = "versionnumber"
# When a row last changed, for `reset-cursor --to TIME` (re-read changes since a moment).
MODIFIED_COLUMN = "modifiedon"
# Values per `or`-joined filter: keeps request URLs far below the services' limits.
IDS_PER_QUERY = 50
# The resume token of a watermark read: `since:<ISO date-time>`.
SINCE = "since:"
_MISSING = object()  # a GUID that is not in that table (polymorphic lookups try several)
_UNKNOWN = object()  # not asked yet (or forgotten)
# The seen digest of a row a full scan no longer found (reported once, sent again if it returns).
GONE = "gone"


@dataclass
class SourcePage:
    rows: list[Row]
    # Where the next read resumes: a nextLink mid-scan, else the new deltaLink.
    resume: str | None
    done: bool
    deleted: list[str] = field(default_factory=list)
    # F&O reads: digests of the rows sent on, recorded once they are enqueued.
    digests: dict[str, str] = field(default_factory=dict)
    # A windowed F&O scan (fno_window.py): the window's digest, recorded once it is enqueued.
    window: Window | None = None


class ChangeReader(Protocol):
    """Reads a flow's source: changes page by page from a resumable link, or a snapshot."""

    def select(self) -> list[str]: ...

    def pages(self, link: str | None) -> Iterator[SourcePage]: ...

    def version_of(self, row: Row) -> int: ...

    def enqueued(self, page: SourcePage) -> None: ...

    def snapshot(self) -> Iterator[list[Row]]: ...

    def add_lines(self, rows: list[Row]) -> None:
        """Read each document's lines into `row["lines"]` (nothing for flows without lines)."""
        ...


def _is_deleted(row: Row) -> bool:
    return str(row.get("@odata.context", "")).endswith("$deletedEntity") or row.get("reason") == "deleted"


def any_of(column: str, values: Iterable[Any]) -> str:
    """`column eq a or column eq b ...`: both services take it (F&O has no `in`)."""
    return " or ".join(f"{column} eq {_literal(v)}" for v in values)


def _literal(value: Any) -> str:
    if isinstance(value, str) and is_guid(value):
        return value  # a GUID is written bare; anything else is a quoted string literal
    return literal(value)


def _link_name(next_link: str | None) -> str:
    return "@odata.nextLink" if next_link else "@odata.deltaLink"


def _chunks(values: Sequence[Any], size: int = IDS_PER_QUERY) -> Iterator[Sequence[Any]]:
    for i in range(0, len(values), size):
        yield values[i : i + size]


class DataverseChanges:
    """Dataverse change tracking: initial full read, then delta links.

    Document lines are read for the headers of each page (Dataverse recalculates a
    document when a line changes, so a changed line shows up as a changed header).
    """

    def __init__(self, client: DataverseClient, flow: Flow, lookups: LookupResolver, extra: Sequence[str] = ()) -> None:
        self.client = client
        self.flow = flow
        self.lookups = lookups
        # Columns only some company's overlay changes read (Runtime.company_columns).
        self.extra = tuple(extra)

    def select(self) -> list[str]:
        # The row id too: the key map keeps it, to tell a changed key from a new record.
        assert isinstance(self.flow.source, Dataverse)
        columns = [*self.flow.source_columns(), *self.extra, self.flow.source.id_column]
        # Lookups read for p2c itself, not a field (the company column, routing.py).
        columns += [lookup.value_column for lookup in self.flow.resolve]
        columns += [VERSION_COLUMN, MODIFIED_COLUMN]
        return list(dict.fromkeys(columns))

    def pages(self, link: str | None) -> Iterator[SourcePage]:
        if link:  # from state, which others can write: the service's own origin or refused
            link = self.client.odata.relative(link, what=f"stored cursor of flow {self.flow.name}")
        for page in self.client.track_changes(self.flow.source.entity_set, self.select(), link):
            rows = [r for r in page.rows if not _is_deleted(r)]
            deleted = [str(r.get("id")) for r in page.rows if _is_deleted(r)]
            page.rows.clear()  # the rows live on in `rows` alone, so the poll can let them go
            self.resolve(rows)
            link = page.next_link or page.delta_link
            yield SourcePage(
                rows=rows,
                resume=self.client.odata.relative(link, what=_link_name(page.next_link)) if link else None,
                done=page.next_link is None,
                deleted=deleted,
            )
            del page, rows, deleted  # before the next page is read: one page in memory, not two

    def resolve(self, rows: list[Row]) -> None:
        """Lookups as natural keys, and each document's lines."""
        self.lookups.resolve(self.flow.lookups(), rows)
        self.add_lines(rows)

    def add_lines(self, rows: list[Row]) -> None:
        lines = self.flow.lines
        if lines is None or lines.source is None or not rows:
            return
        assert isinstance(self.flow.source, Dataverse)
        parent = f"_{lines.source_parent}_value"
        ids = [
            r[self.flow.source.id_column]
            for r in rows
            if self.flow.source.where is None or self.flow.source.where.matches(r)
        ]
        by_parent: dict[str, list[Row]] = {}
        select = [id_column(lines.source), parent, *lines.source_columns()]
        for part in _chunks(ids):
            for page in self.client.query(
                lines.source, select=list(dict.fromkeys(select)), filter=any_of(parent, part)
            ):
                self.lookups.resolve(lines.lookups, page.rows)
                for line in page.rows:
                    by_parent.setdefault(str(line.get(parent)).lower(), []).append(_plain(line))
        for row in rows:
            found = by_parent.get(str(row.get(self.flow.source.id_column)).lower(), [])
            row["lines"] = _in_order(found, lines.source_key)

    def version_of(self, row: Row) -> int:
        return int(row[VERSION_COLUMN])

    def snapshot(self) -> Iterator[list[Row]]:
        """Every source row that passes the filter, as now (reconcile): no cursor, no delta."""
        where = self.flow.source.where.odata() if self.flow.source.where else None
        for page in self.client.query(self.flow.source.entity_set, select=self.select(), filter=where):
            self.resolve(page.rows)
            yield page.rows

    def enqueued(self, page: SourcePage) -> None:
        return None


def _in_order(lines: list[Row], key: str | None) -> list[Row]:
    if key is None:
        return lines
    return sorted(lines, key=lambda r: (r.get(key) is None, str(r.get(key)).zfill(12)))


def _plain(row: Row) -> Row:
    return {k: v for k, v in row.items() if not k.startswith("@")}


def digest(row: Row) -> str:
    """What an F&O poll remembers of a row it sent on (stored beside the scan: fixed form)."""
    return canonical_hash(row, 24)


class FnoChanges:
    """An F&O entity read in full (a bounded scan) or from a date watermark.

    Rows whose content equals what an earlier poll sent on are dropped here, so an idle
    poll enqueues nothing; lines are read only for documents that changed. F&O adjusts
    a document's totals when its lines change, so a line change shows in the header.
    The version of every row is the poll's start time: a later read is a newer version.
    """

    def __init__(
        self,
        client: FnoClient,
        flow: Flow,
        state: StateStore,
        started: datetime | None = None,
        *,
        find_gone: bool = False,
        scope: str | None = None,
        window: int = 0,
    ) -> None:
        assert isinstance(flow.source, FinOps)
        # The company whose seen digests this read compares with (None: the default company's,
        # stored as one company stored them; p2c_core/company_reads.py).
        self.scope = scope
        self.client = client
        self.flow = flow
        self.source: FinOps = flow.source
        self.state = state
        self.started = started or datetime.now(UTC)
        self.version = int(self.started.timestamp() * 1000)
        self._seen: dict[str, str] | None = None
        # Report rows an earlier scan sent and this one no longer finds (their keys, as
        # `deleted`): only for a scan read whole in this poll, never for a date watermark.
        self.find_gone = find_gone and not self.source.since
        # Rows per tick of a windowed scan (fno_window.py); 0: the whole entity every tick.
        self.window = window

    def select(self) -> list[str]:
        cols = self.flow.source_columns()
        if self.source.since:
            cols.append(self.source.since)
        return list(dict.fromkeys(cols))

    def pages(self, link: str | None) -> Iterator[SourcePage]:
        if fno_window.applies(self, link):
            yield from fno_window.pages(self, link)
            return
        since = link[len(SINCE) :] if link and link.startswith(SINCE) else None
        latest = since
        visited: set[str] | None = set() if self.find_gone and not link else None
        if link and not link.startswith(SINCE):
            # From state, which others can write: the service's own origin or refused.
            pages = self.client.resume(self.client.odata.relative(link, what=f"stored cursor of flow {self.flow.name}"))
        else:
            pages = self.client.query(self.source.entity_set, select=self.select(), filter=self.filter(since))
        for page in pages:
            rows = [_plain(r) for r in page.rows]
            if visited is not None:
                visited.update(str(r[self.source.key]) for r in rows if r.get(self.source.key))
            if self.source.since:
                stamps = [str(r[self.source.since]) for r in rows if r.get(self.source.since)]
                latest = max([latest or "", *stamps]) or None
            changed, digests = self.changed(rows)
            self.add_lines(changed)
            done = page.next_link is None
            if done:
                resume = f"{SINCE}{latest}" if self.source.since and latest else None
            else:
                resume = self.client.odata.relative(page.next_link or "", what="@odata.nextLink")
            gone = self.gone(visited) if done and visited is not None else []
            digests.update(dict.fromkeys(gone, GONE))
            yield SourcePage(rows=changed, resume=resume, done=done, digests=digests, deleted=gone)
            del page, rows, changed, digests  # before the next page is read

    def gone(self, visited: set[str]) -> list[str]:
        if self._seen is None:
            self._seen = self.state.seen(self.flow.name, self.scope)
        return sorted(k for k, d in self._seen.items() if d != GONE and k not in visited)

    def filter(self, since: str | None) -> str | None:
        terms = [self.source.where.odata()] if self.source.where else []
        if self.source.since and since:
            start = datetime.fromisoformat(since.replace("Z", "+00:00")) - timedelta(days=self.source.overlap_days)
            terms.append(f"{self.source.since} ge {start.strftime('%Y-%m-%dT%H:%M:%SZ')}")
        return " and ".join(terms) or None

    def use_seen(self, seen: dict[str, str]) -> None:
        """Compare with these digests (a window's), not the whole `seen` partition."""
        self._seen = seen

    def changed(self, rows: list[Row]) -> tuple[list[Row], dict[str, str]]:
        if self._seen is None:
            self._seen = self.state.seen(self.flow.name, self.scope)
        out: list[Row] = []
        digests: dict[str, str] = {}
        for row in rows:
            key = row.get(self.source.key)
            d = digest(row)
            if isinstance(key, str) and self._seen.get(key) == d:
                continue
            out.append(row)
            if isinstance(key, str):
                digests[key] = d
        return out, digests

    def add_lines(self, rows: list[Row]) -> None:
        lines = self.flow.lines
        if lines is None or lines.source is None or not rows:
            return
        numbers = [r[self.source.key] for r in rows if r.get(self.source.key)]
        by_parent: dict[str, list[Row]] = {}
        select = list(dict.fromkeys([lines.source_parent, *lines.source_columns()]))
        for part in _chunks(numbers):
            for page in self.client.query(lines.source, select=select, filter=any_of(lines.source_parent, part)):
                for line in page.rows:
                    by_parent.setdefault(str(line.get(lines.source_parent)).casefold(), []).append(_plain(line))
        for row in rows:
            found = by_parent.get(str(row.get(self.source.key)).casefold(), [])
            row["lines"] = _in_order(found, lines.source_key)

    def version_of(self, row: Row) -> int:
        return self.version

    def snapshot(self) -> Iterator[list[Row]]:
        where = self.source.where.odata() if self.source.where else None
        for page in self.client.query(self.source.entity_set, select=self.select(), filter=where):
            rows = [_plain(r) for r in page.rows]
            self.add_lines(rows)
            yield rows

    def enqueued(self, page: SourcePage) -> None:
        if page.digests:
            self.state.mark_seen(self.flow.name, page.digests, self.scope)
            if self._seen is not None:
                self._seen.update(page.digests)
        if page.window is not None:
            self.state.windows.put(self.flow.name, page.window, self.scope)


class LookupResolver:
    """Turns lookup GUIDs into natural keys (currency -> ISO code, customer -> number).

    Only the GUIDs a page holds are read, a few dozen per request, and remembered for
    a while, so an idle poll costs no extra request.
    """

    def __init__(self, client: DataverseClient, ttl_seconds: float = 900.0, max_entries: int = 200_000) -> None:
        self.client = client
        self._cache = TTLCache[tuple[str, str, str], Any](maxsize=max_entries, ttl=ttl_seconds)
        self._lock = threading.Lock()

    def _known(self, entity_set: str, returns: str, guid: str) -> tuple[bool, Any]:
        with self._lock:
            hit = self._cache.get((entity_set, returns, guid), _UNKNOWN)
        return (False, None) if hit is _UNKNOWN else (True, hit)

    def _fetch(self, entity_set: str, returns: str, guids: list[str]) -> None:
        pk = id_column(entity_set)
        found: dict[str, Any] = {}
        for part in _chunks(guids):
            for page in self.client.query(entity_set, select=[pk, returns], filter=any_of(pk, part)):
                for row in page.rows:
                    found[str(row[pk]).lower()] = row.get(returns)
        with self._lock:
            for guid in guids:
                self._cache[(entity_set, returns, guid)] = found.get(guid, _MISSING)

    def resolve(self, lookups: Iterable[Lookup], rows: list[Row]) -> None:
        for lookup in lookups:
            column = lookup.value_column
            ids = sorted({str(r[column]).lower() for r in rows if r.get(column)})
            values: dict[str, Any] = {}
            for entity_set, returns in lookup.to.items():
                todo = [g for g in ids if g not in values and not self._known(entity_set, returns, g)[0]]
                if todo:
                    self._fetch(entity_set, returns, todo)
                for g in ids:
                    if g not in values:
                        known, value = self._known(entity_set, returns, g)
                        if known and value is not _MISSING:
                            values[g] = value
            for row in rows:
                guid = row.pop(column, None)
                row[lookup.column] = values.get(str(guid).lower()) if guid else None
