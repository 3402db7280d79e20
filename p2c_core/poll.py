"""Poll: read the source's changes since the flow's cursor, enqueue them, then move the cursor.

DESIGN invariant 1: the cursor moves only after the changes it covers are enqueued.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from p2c_core import fanout, lifecycle, routing, signing, telemetry
from p2c_core.company_reads import owned_here, read_companies, reader_for, record_key, state_scope
from p2c_core.controls import paused
from p2c_core.envelope import MAX_JSON_BYTES, Record, chunk
from p2c_core.errors import MappingError, MessageError, ODataError, P2CError
from p2c_core.failing import record_failure
from p2c_core.flow import Flow, Where
from p2c_core.hashing import canonical_hash
from p2c_core.outcome import Outcome, count_metrics, log_fields, record_run
from p2c_core.sources import MODIFIED_COLUMN, ChangeReader, SourcePage
from p2c_core.state import Cursor, now
from p2c_core.state.buckets import bucket

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.engine")

# Dataverse's answer to a delta token older than the org keeps changes for.
EXPIRED_DELTA_TOKEN = "0x80044352"


def poll(rt: Runtime, flow: Flow) -> Outcome:
    """Read the source's changes since the cursor, enqueue them, then move the cursor."""
    out = Outcome(flow.name, "poll")
    if not rt.settings.flow(flow.name).enabled:
        log.info("flow %s is disabled; poll skipped", flow.name)
        return out
    if paused(rt, flow):
        log.info("flow %s is paused; poll skipped", flow.name)
        return out
    with telemetry.span("p2c poll", **{"p2c.flow": flow.name, "p2c.run_id": out.run_id}) as span:
        started = _poll(rt, flow, out)
        span.set_attributes({f"p2c.{k}": v for k, v in out.counts.as_dict().items()})
    retention = timedelta(days=rt.settings.failure_retention_days)
    # The run row, the key map entries still in the form before buckets (a slice a tick,
    # state/legacy.py) and the failure purge: other tables, none waits on another's answer.
    _, moved, purged = fanout.together(
        lambda: record_run(rt, out, started, None),
        lambda: rt.state.keymap.legacy.migrate(flow.name),
        lambda: rt.state.purge_failures(flow.name, now() - retention),
    )
    if moved:
        log.info("flow %s: %d key map entries moved to their bucket partitions", flow.name, moved)
    if purged:
        log.info("flow %s: %d failure entries older than %s forgotten", flow.name, purged, retention)
    count_metrics(flow, out)
    log.info("poll %s: %s", flow.name, out.counts.as_dict(), extra=log_fields(flow, out))
    return out


def _poll(rt: Runtime, flow: Flow, out: Outcome) -> str:
    """The companies' changes enqueued; returns when it started (its run row is written
    here only when it failed: `poll` writes it beside the tick's other writes)."""
    started = now().isoformat()
    try:
        for company in read_companies(rt.companies, flow):
            _poll_company(rt, flow, out, started, company)
    except BaseException as exc:
        error = f"{exc.error_class}: {exc}" if isinstance(exc, P2CError) else f"{type(exc).__name__}: {exc}"
        record_run(rt, out, started, error)
        raise
    return started


def _poll_company(rt: Runtime, flow: Flow, out: Outcome, started: str, company: str | None) -> None:
    """One company's changes (None: every company's, as one company or a Dataverse source reads)."""
    state = rt.state
    queue = rt.storage.queue(flow.queue)
    companies = rt.companies
    cursor = state.get_cursor(flow.name, state_scope(companies, company))
    reader = reader_for(rt, flow, company)
    _columns_changed(flow, cursor, reader, out)
    for page in _pages(flow, cursor, reader, out):
        rows = page.rows
        if cursor.watermark and flow.source.service == "dataverse":  # `reset-cursor --to`
            kept = [r for r in rows if str(r.get(MODIFIED_COLUMN) or "") >= cursor.watermark]
            out.counts.read += len(rows) - len(kept)
            out.counts.skipped += len(rows) - len(kept)
            rows = kept
        if len(kept := owned_here(rt, flow, company, rows)) < len(rows):  # another company's product
            out.counts.read += len(rows) - len(kept)
            out.counts.skipped += len(rows) - len(kept)
            rows = kept
        records = list(_records(rt, flow, rows, reader.version_of, out, company))
        page.rows.clear()  # the records hold what is needed; the rows can go before they are sent
        rows = []
        # Deleted rows: their flow's ON_DELETE says what happens (counted either way).
        gone = [record_key(companies, company, k) for k in page.deleted]
        records.extend(r.model_copy(update={"company": company}) for r in lifecycle.deleted(rt, flow, gone, out))
        rt.versions.note(flow, (r.version for r in records))  # before they are enqueued
        # Side by side: each send is a round trip, and nothing orders a page's messages (the
        # queue does not keep order; invariants 2 and 3 hold in any order). All are sent
        # before the cursor moves below (fanout.each returns once every send ended).
        fanout.each(_sends(rt, flow, queue, records))
        out.counts.enqueued += len(records)
        # Checkpoint only after this page is durably enqueued (invariant 1).
        if cursor.link is None and cursor.scan_started is None:
            cursor.scan_started = started
        cursor.link = page.resume
        if page.done:
            cursor.scan_started = cursor.watermark = None
        state.put_cursor(cursor)
        reader.enqueued(page)
        del page, rows, records  # before the next page is read, not after
        # Its HTTP answer (the page's JSON, MBs) is garbage in a reference cycle: httpx's
        # Response and its bound stream point at each other (encode/httpx#3733), so
        # refcounting never frees it, and having outlived the young generations while the
        # page was worked on, it waits for a full collection, which a scan triggers only
        # every few pages. Collected here, one page's answer is held at a time, not several;
        # a collection costs tens of ms beside the second or so a page takes.
        gc.collect()


def _sends(rt: Runtime, flow: Flow, queue: Any, records: list[Record]) -> Iterator[Callable[[], Any]]:
    """One call per message of the records, each sealing its message when it is sent."""
    for part in by_bucket(records, rt.settings.chunk_size):
        for envelope in chunk(flow.name, part, rt.settings.chunk_size):

            def send(envelope: Any = envelope) -> Any:
                envelope.sent = time.time()
                return queue.send_message(signing.seal(envelope, rt.signing_key))

            yield send


def _pages(flow: Flow, cursor: Cursor, reader: ChangeReader, out: Outcome) -> Iterator[SourcePage]:
    """The source's pages from the cursor, or from the start when the delta token expired."""
    try:
        pages = iter(reader.pages(cursor.link))
        first = next(pages, None)
    except ODataError as exc:
        if exc.code != EXPIRED_DELTA_TOKEN or cursor.link is None:
            raise
        # The org no longer keeps changes that far back: read everything again. Records
        # whose content did not change are dropped by the key map and write nothing.
        log.warning("flow %s: delta token expired; full resync", flow.name, extra=log_fields(flow, out))
        cursor.link = cursor.scan_started = None
        pages = iter(reader.pages(None))
        first = next(pages, None)
    # Hold one page at a time: memory stays flat however many pages a scan has.
    if first is not None:
        yield first
    del first
    yield from pages


def columns_digest(reader: ChangeReader) -> str:
    return canonical_hash(sorted(reader.select()), 16)


def columns_changed(flow: Flow, cursor: Cursor, reader: ChangeReader) -> bool:
    """Whether the cursor's delta link reads other columns than the flow now needs (a mapping
    overlay added a field): a delta link reads the columns its first read selected."""
    recorded = cursor.columns
    return flow.source.service == "dataverse" and bool(cursor.link) and recorded not in (None, columns_digest(reader))


def _columns_changed(flow: Flow, cursor: Cursor, reader: ChangeReader, out: Outcome) -> None:
    """Change tracking begins again when the flow reads other columns. Records whose mapped
    content did not change are dropped by the key map and write nothing."""
    if columns_changed(flow, cursor, reader):
        log.warning(
            "flow %s reads other columns than its delta link: reading all rows again", flow.name,
            extra=log_fields(flow, out),
        )  # fmt: skip
        cursor.link = cursor.scan_started = cursor.watermark = None
    cursor.columns = columns_digest(reader)


def _records(
    rt: Runtime, flow: Flow, rows: list[dict[str, Any]], version_of: Any, out: Outcome, read_from: str | None = None
) -> list[Record]:
    """The records of a page's rows; `read_from`: the company an F&O source was read from."""
    records: list[Record] = []
    where = flow.source.where
    routes = routing.routes(rt.companies, flow)
    wheres: dict[str, Where | None] = {}
    for row in rows:
        out.counts.read += 1
        key = row.get(flow.source.key)
        company = routing.company_of_row(rt.companies, row) if routes else read_from
        if routes and company is None:
            # Outside every mapped business unit / company: not p2c's to sync (docs/companies.md).
            out.counts.skipped += 1
            out.counts.outside += 1
            continue
        if company is not None:  # with the overlay's filter terms for this company
            if company not in wheres:
                wheres[company] = rt.company_flow(flow, company).source.where
            where = wheres[company]
        if where is not None and not where.matches(row):
            if lifecycle.deactivated(flow, row) and isinstance(key, str) and key.strip():
                stored = key if company is None else rt.companies.qualified(company, key)
                if (removed := lifecycle.removal(rt, flow, stored, version_of(row), out)) is not None:
                    records.append(removed.model_copy(update={"company": company}))
                continue
            out.counts.skipped += 1
            continue
        if not isinstance(key, str) or not key.strip():
            ident = _row_ident(flow, row)
            record_failure(
                rt,
                flow,
                ident,
                0,
                MappingError(
                    f"{flow.source.entity_set} record {ident} has no {flow.source.key}; "
                    f"it is the key of flow {flow.name} and must be set"
                ),
                record=None,
            )
            out.counts.failed += 1
            continue
        # Without its empty columns (a third of an account's record): every reader takes an
        # absent column as null, and more records fit a message, so fewer messages, leases
        # and commits (docs/benchmarks.md, storage).
        data = {k: v for k, v in row.items() if not k.startswith("@") and v is not None}
        record = Record(key=key, version=version_of(row), data=data)
        if company is not None:
            record = routing.routed(rt.companies, record, company)
        record = fit_message(flow, record)
        if _too_large(record):
            record_failure(rt, flow, key, 0, MessageError("record is too large for one queue message"), record=None)
            out.counts.failed += 1
            continue
        records.append(record)
    return records


def source_records(rt: Runtime, flow: Flow, rows: list[dict[str, Any]], version_of: Any, out: Outcome) -> list[Record]:
    """Source rows as the poll makes records of them (the nudge function reads rows too)."""
    return _records(rt, flow, rows, version_of, out)


def by_bucket(records: list[Record], size: int) -> list[list[Record]]:
    """The records to send, in groups of one key map partition each for as many whole
    messages (`size`) as the partition has, the rest together: a message's leases and
    commits are then one table transaction, not one per partition it touches, and a page
    makes one part-filled message, not one per partition (each is a request to the target,
    and a part-filled one spends a paced share's room that a whole one cannot use).
    Stable: a key's versions keep their order (one key, one bucket; its first whole
    messages' records come before its rest)."""
    groups: dict[int, list[Record]] = {}
    for r in records:
        groups.setdefault(bucket(r.key), []).append(r)
    whole: list[list[Record]] = []
    rest: list[Record] = []
    for _, group in sorted(groups.items()):
        cut = len(group) // size * size
        if cut:
            whole.append(group[:cut])
        rest += group[cut:]
    return [*whole, rest] if rest else whole


def fit_message(flow: Flow, record: Record) -> Record:
    """The record, or, when its lines are too many for one queue message, its header
    alone: the queue function reads the lines from the source when it applies it."""
    if not _too_large(record) or flow.lines is None or "lines" not in record.data:
        return record
    header = {k: v for k, v in record.data.items() if k != "lines"}
    return record.model_copy(update={"data": header, "lines_later": True})


def _too_large(record: Record) -> bool:
    return len(record.to_json()) > MAX_JSON_BYTES - 200


def _row_ident(flow: Flow, row: dict[str, Any]) -> str:
    for name, value in row.items():
        if name.endswith("id") and isinstance(value, str) and len(value) == 36:
            return f"{flow.source.entity_set}({value})"
    return f"{flow.source.entity_set}(?)"
