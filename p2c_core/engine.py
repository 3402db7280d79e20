"""The one engine that runs every flow: poll (source -> queue) and apply (queue -> target).

Invariants kept here (DESIGN.md): the cursor moves only after the changes it covers are
enqueued (1); applying any delivery any number of times, in any order, has one effect
(2); an older source version never overwrites a newer one (3); every failure is a
failure entry plus a poison message, and replayable (6).
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import hashlib
import itertools
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from p2c_core import signing, telemetry
from p2c_core.clients.retry import Backoff
from p2c_core.envelope import MAX_JSON_BYTES, Envelope, Record, chunk, decode
from p2c_core.errors import DependencyMissing, MappingError, MessageError, ODataError, P2CError, ThrottledError
from p2c_core.flow import Flow
from p2c_core.mapping import document_hash
from p2c_core.poison import copy_of
from p2c_core.sources import MODIFIED_COLUMN
from p2c_core.state import Failure, KeyMapEntry, Run, now
from p2c_core.targets import BatchWriter, LineWrite, WriteItem, WriteResult
from p2c_core.trust import check_record, hold_unverified

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.engine")

# Dataverse's answer to a delta token older than the org keeps changes for.
EXPIRED_DELTA_TOKEN = "0x80044352"
# Delay for a record another worker is applying right now.
BUSY_DELAY_S = 5.0
# How often a paused flow's queued messages are looked at again.
PAUSED_DELAY_S = 60
RECORD_BACKOFF = Backoff(base=5.0, cap=900.0)


@dataclass
class Counts:
    read: int = 0
    enqueued: int = 0
    written: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if v}

    def add(self, other: Counts) -> None:
        for name, value in other.__dict__.items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class Outcome:
    flow: str
    kind: str
    counts: Counts = field(default_factory=Counts)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


# --- poll -------------------------------------------------------------------------


def poll(rt: Runtime, flow: Flow) -> Outcome:
    """Read the source's changes since the cursor, enqueue them, then move the cursor."""
    out = Outcome(flow.name, "poll")
    if not rt.settings.flows.get(flow.name).enabled:
        log.info("flow %s is disabled; poll skipped", flow.name)
        return out
    if paused(rt, flow):
        log.info("flow %s is paused; poll skipped", flow.name)
        return out
    with telemetry.span("p2c poll", **{"p2c.flow": flow.name, "p2c.run_id": out.run_id}) as span:
        _poll(rt, flow, out)
        span.set_attributes({f"p2c.{k}": v for k, v in out.counts.as_dict().items()})
    retention = timedelta(days=rt.settings.failure_retention_days)
    if purged := rt.state.purge_failures(flow.name, now() - retention):
        log.info("flow %s: %d failure entries older than %s forgotten", flow.name, purged, retention)
    _count(flow, out)
    log.info("poll %s: %s", flow.name, out.counts.as_dict(), extra=_extra(flow, out))
    return out


def _poll(rt: Runtime, flow: Flow, out: Outcome) -> None:
    started = now().isoformat()
    state = rt.state
    queue = rt.storage.queue(flow.queue)
    cursor = state.get_cursor(flow.name)
    reader = rt.reader(flow)
    error: str | None = None
    try:
        try:
            pages = iter(reader.pages(cursor.link))
            first = next(pages, None)
        except ODataError as exc:
            if exc.code != EXPIRED_DELTA_TOKEN or cursor.link is None:
                raise
            # The org no longer keeps changes that far back: read everything again. Records
            # whose content did not change are dropped by the key map and write nothing.
            log.warning("flow %s: delta token expired; full resync", flow.name, extra=_extra(flow, out))
            cursor.link = cursor.scan_started = None
            pages = iter(reader.pages(None))
            first = next(pages, None)
        # Hold one page at a time: memory stays flat however many pages a scan has.
        pages = itertools.chain([first] if first is not None else [], pages)
        first = None
        for page in pages:
            rows = page.rows
            if cursor.watermark and flow.source.service == "dataverse":  # `reset-cursor --to`
                kept = [r for r in rows if str(r.get(MODIFIED_COLUMN) or "") >= cursor.watermark]
                out.counts.read += len(rows) - len(kept)
                out.counts.skipped += len(rows) - len(kept)
                rows = kept
            records = list(_records(rt, flow, rows, reader.version_of, out))
            page.rows.clear()  # the records hold what is needed; the rows can go before they are sent
            rows = []
            out.counts.skipped += len(page.deleted)  # P2C carries no deletions
            rt.versions.note(flow, (r.version for r in records))  # before they are enqueued
            for envelope in chunk(flow.name, records, rt.settings.chunk_size):
                envelope.sent = time.time()
                queue.send_message(signing.seal(envelope, rt.signing_key))
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
    except Exception as exc:
        error = f"{exc.error_class}: {exc}" if isinstance(exc, P2CError) else f"{type(exc).__name__}: {exc}"
        raise
    finally:
        _record_run(rt, out, started, error)


def _extra(flow: Flow, out: Outcome, key: str | None = None) -> dict[str, str]:
    """Structured log fields (customDimensions in Application Insights)."""
    fields = {"p2c.flow": flow.name, "p2c.run_id": out.run_id, "p2c.kind": out.kind}
    if key is not None:
        fields["p2c.key"] = key
    return fields


def _count(flow: Flow, out: Outcome) -> None:
    meters = telemetry.instruments()
    for outcome, n in out.counts.as_dict().items():
        meters.records.add(n, {"flow": flow.name, "outcome": outcome})
    if out.counts.failed:
        meters.failures.add(out.counts.failed, {"flow": flow.name})


def _records(rt: Runtime, flow: Flow, rows: list[dict[str, Any]], version_of: Any, out: Outcome) -> list[Record]:
    records: list[Record] = []
    where = flow.source.where
    for row in rows:
        out.counts.read += 1
        if where is not None and not where.matches(row):
            out.counts.skipped += 1
            continue
        key = row.get(flow.source.key)
        if not isinstance(key, str) or not key.strip():
            ident = _row_ident(flow, row)
            _fail(
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
        data = {k: v for k, v in row.items() if not k.startswith("@")}
        record = fit_message(flow, Record(key=key, version=version_of(row), data=data))
        if _too_large(record):
            _fail(rt, flow, key, 0, MessageError("record is too large for one queue message"), record=None)
            out.counts.failed += 1
            continue
        records.append(record)
    return records


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


# --- apply ------------------------------------------------------------------------


def paused(rt: Runtime, flow: Flow) -> bool:
    return rt.settings.flows.get(flow.name).paused or rt.state.is_paused(flow.name)


def apply(rt: Runtime, flow: Flow, body: bytes | str) -> Outcome:
    """Apply one queue message. Never raises for bad input or a bad record."""
    out = Outcome(flow.name, "apply")
    if paused(rt, flow):
        # Keep the change: put the message back, unchanged, to be looked at again later.
        raw = body.encode() if isinstance(body, str) else body
        rt.storage.queue(flow.queue).send_message(raw, visibility_timeout=PAUSED_DELAY_S)
        out.counts.deferred += 1
        return out
    with telemetry.span("p2c apply", **{"p2c.flow": flow.name, "p2c.run_id": out.run_id}) as span:
        _apply(rt, flow, body, out)
        span.set_attributes({f"p2c.{k}": v for k, v in out.counts.as_dict().items()})
    _count(flow, out)
    return out


def _apply(rt: Runtime, flow: Flow, body: bytes | str, out: Outcome) -> None:
    started = now().isoformat()
    try:
        envelope = decode(body)
        if envelope.flow != flow.name:
            raise MessageError(f"message is for flow {envelope.flow!r}, not {flow.name!r}")
    except MessageError as exc:
        raw = body.encode() if isinstance(body, str) else body
        ident = "message-" + hashlib.sha256(raw).hexdigest()[:16]
        _fail(rt, flow, ident, 0, exc, record=None, poison=copy_of(raw, flow.name, ident))
        out.counts.failed += 1
        _record_run(rt, out, started, None)
        return
    if (problem := signing.problem(body, rt.signing_key)) is not None:  # before anything is read
        out.counts.failed += hold_unverified(rt, flow, envelope, problem)
        _record_run(rt, out, started, None)
        return
    writer = rt.writer(flow)
    size = rt.settings.batch_size
    if size > 1 and flow.lines is None and isinstance(writer, BatchWriter) and len(envelope.records) > 1:
        records = envelope.records
        for i in range(0, len(records), size):
            _apply_batch(rt, flow, writer, records[i : i + size], out)
    else:
        _apply_each(rt, flow, envelope.records, out)
    if envelope.sent is not None and out.counts.written:
        telemetry.instruments().lag.record(max(0.0, time.time() - envelope.sent), {"flow": flow.name})
    _record_run(rt, out, started, None)


@dataclass
class _Pending:
    """A record mapped and its references resolved: ready to claim and write."""

    record: Record
    entry: KeyMapEntry | None
    item: WriteItem
    digest: str
    claimed: KeyMapEntry | None = None


def _apply_each(rt: Runtime, flow: Flow, records: list[Record], out: Outcome) -> None:
    """The records of one message, several at once: a document spends its time waiting on
    round trips (look-ups, header, lines), one after another. Versions of one key stay in
    order, in one task; the key map's leases keep apart what other workers write."""
    by_key: dict[str, list[Record]] = {}
    for record in records:
        by_key.setdefault(record.key, []).append(record)
    workers = min(rt.settings.record_concurrency, len(by_key))
    if workers <= 1:
        for record in records:
            apply_record(rt, flow, record, out)
        return

    def apply_key(versions: list[Record]) -> Counts:
        part = Outcome(flow.name, "apply", run_id=out.run_id)
        for record in versions:
            apply_record(rt, flow, record, part)
        return part.counts

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"p2c-{flow.name}") as pool:
        # Each task runs in a copy of this context, so its spans and logs belong to this run.
        tasks = [pool.submit(contextvars.copy_context().run, apply_key, versions) for versions in by_key.values()]
        for task in tasks:
            out.counts.add(task.result())


def apply_record(rt: Runtime, flow: Flow, record: Record, out: Outcome) -> None:
    pending = _prepare(rt, flow, record, rt.state.get_entry(flow.name, record.key), out)
    if pending is None:
        return
    try:
        lease = timedelta(seconds=rt.settings.apply_lease_seconds)
        pending.claimed = rt.state.claim(pending.entry, flow.name, record.key, record.version, lease)
    except P2CError as exc:
        _failed_attempt(rt, flow, record, exc, out)
        return
    item = pending.item
    item.known = pending.claimed.version >= 0
    try:
        result: WriteResult | P2CError = rt.writer(flow).write(
            item.key, item.payload, item.create_only, known=item.known, lines=item.lines
        )
    except P2CError as exc:
        result = exc
    except BaseException:
        rt.state.release(pending.claimed)
        raise
    _finish(rt, flow, pending, result, out)


def _apply_batch(rt: Runtime, flow: Flow, writer: BatchWriter, records: list[Record], out: Outcome) -> None:
    """The records of one message in few round trips: leased in one table transaction,
    written in one `$batch`, committed in one transaction. Each record still succeeds,
    waits or fails alone."""
    state = rt.state
    entries = state.get_entries(flow.name, list(dict.fromkeys(r.key for r in records)))
    prepared = [_prepare(rt, flow, r, entries.get(r.key), out) for r in records]
    pending = [p for p in prepared if p is not None]
    lease = timedelta(seconds=rt.settings.apply_lease_seconds)
    claims = state.claim_many(flow.name, [(p.entry, p.record.key, p.record.version) for p in pending], lease)
    ready: list[_Pending] = []
    for p, claimed in zip(pending, claims, strict=True):
        if isinstance(claimed, P2CError):
            _failed_attempt(rt, flow, p.record, claimed, out)
            continue
        p.claimed, p.item.known = claimed, claimed.version >= 0
        ready.append(p)
    if not ready:
        return
    try:
        results = writer.write_many([p.item for p in ready])
    except P2CError as exc:  # the batch as a whole failed (after its retries)
        results = [exc] * len(ready)
    except BaseException:
        for p in ready:
            assert p.claimed is not None
            state.release(p.claimed)
        raise
    written: list[_Pending] = []
    commits: list[tuple[KeyMapEntry, int, str, str | None, str | None]] = []
    for p, result in zip(ready, results, strict=True):
        assert p.claimed is not None  # leased above
        if isinstance(result, P2CError):
            _finish(rt, flow, p, result, out)
        else:
            written.append(p)
            commits.append((p.claimed, p.record.version, p.digest, result.target_key, flow.source.service))
    for p, lost in zip(written, state.commit_many(commits), strict=True):
        if lost is not None:
            _failed_attempt(rt, flow, p.record, lost, out)
            continue
        out.counts.written += 1
        _cleared(rt, flow, p.record, p.entry)


def _prepare(rt: Runtime, flow: Flow, record: Record, entry: KeyMapEntry | None, out: Outcome) -> _Pending | None:
    """Everything before the claim; None when there is nothing to write (or it failed)."""
    state = rt.state
    try:
        check_record(rt, flow, record)
    except P2CError as exc:
        _failed_attempt(rt, flow, record, exc, out)
        return None
    if entry is not None and entry.version > record.version:
        out.counts.skipped += 1  # stale: a newer version is already applied (invariant 3)
        return None
    lease = timedelta(seconds=rt.settings.apply_lease_seconds)
    if flow.create_only and entry is not None and entry.version >= 0 and not record.force:
        # Written once; the target owns the record now. Later source edits are not carried.
        out.counts.skipped += 1
        _cleared(rt, flow, record, entry)
        return None
    try:
        data = record.data
        if record.lines_later:  # read now, into a copy: a retry must travel without them again
            data = dict(data)
            rt.reader(flow).add_lines([data])
        payload, create_only = rt.mapper.map(flow, record.key, data)
        lines = rt.mapper.map_lines(flow, data)
        digest = document_hash(payload, lines)
        if entry is not None and entry.hash == digest and entry.version >= 0 and not record.force:
            if entry.version < record.version:
                # Source changed in unmapped columns only: remember the version, write nothing.
                claimed = state.claim(entry, flow.name, record.key, record.version, lease)
                state.commit(
                    claimed,
                    version=record.version,
                    hash=digest,
                    target_key=entry.target_key,
                    master=entry.master,
                )
            out.counts.skipped += 1
            _cleared(rt, flow, record, entry)
            return None
        # References first: a missing customer or product waits before anything is written.
        refs = rt.references
        resolved_lines = None
        if lines is not None:
            resolved_lines = [
                LineWrite(line.key, refs.resolve(flow, line.payload), refs.resolve(flow, line.create_only))
                for line in lines
            ]
        payload, create_only = refs.resolve(flow, payload), refs.resolve(flow, create_only)
    except P2CError as exc:
        _failed_attempt(rt, flow, record, exc, out)
        return None
    item = WriteItem(record.key, payload, create_only, known=False, lines=resolved_lines)
    return _Pending(record, entry, item, digest)


def _finish(rt: Runtime, flow: Flow, pending: _Pending, result: WriteResult | P2CError, out: Outcome) -> None:
    """Record one write's outcome: commit the key map, or release the lease and retry/fail."""
    record, claimed = pending.record, pending.claimed
    assert claimed is not None
    if isinstance(result, P2CError):
        rt.state.release(claimed)
        _failed_attempt(rt, flow, record, result, out)
        return
    try:
        rt.state.commit(
            claimed, version=record.version, hash=pending.digest, target_key=result.target_key,
            master=flow.source.service,
        )  # fmt: skip
    except P2CError as exc:
        _failed_attempt(rt, flow, record, exc, out)
        return
    out.counts.written += 1
    _cleared(rt, flow, record, pending.entry)


def _cleared(rt: Runtime, flow: Flow, record: Record, entry: KeyMapEntry | None) -> None:
    """A record that failed before and now went through leaves the failure table."""
    if record.attempt > 0 or record.replay or (entry is not None and entry.failed):
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            rt.state.clear_failure(flow.name, record.key)


def _failed_attempt(rt: Runtime, flow: Flow, record: Record, exc: P2CError, out: Outcome) -> None:
    # A throttle says "later", not "wrong": it waits Retry-After and spends no attempt,
    # so a long throttle makes progress instead of pushing records into poison.
    attempt = record.attempt if isinstance(exc, ThrottledError) else record.attempt + 1
    backoff = Backoff(base=rt.settings.record_retry_base_seconds, cap=RECORD_BACKOFF.cap)
    if isinstance(exc, DependencyMissing):
        # Waiting for another flow is measured in time, not attempts: the parent flow may
        # be failing its polls for a while (throttled, down), and its children must outlast it.
        clock = time.time()
        since = record.waiting_since if record.waiting_since is not None else clock
        waited, budget = clock - since, rt.settings.dependency_wait_minutes * 60
        if waited < budget:
            # Wait about as long as already waited (so doubling), within the backoff's bounds.
            delay = min(backoff.cap, max(backoff.base, waited), budget - waited)
            _retry(rt, flow, record.model_copy(update={"waiting_since": since}), delay, exc, out)
            return
        prefix = f"gave up after waiting {budget / 60:g} minutes: "
    else:
        if exc.transient and (attempt < rt.settings.record_max_attempts or isinstance(exc, ThrottledError)):
            retry_after = exc.retry_after if isinstance(exc, ThrottledError) else None
            delay = BUSY_DELAY_S if exc.error_class == "RecordBusy" else backoff.delay(max(attempt, 1), retry_after)
            _retry(rt, flow, record.model_copy(update={"attempt": attempt}), delay, exc, out)
            return
        prefix = f"gave up after {attempt} attempts: " if exc.transient else ""
    _fail(
        rt,
        flow,
        record.key,
        attempt,
        exc,
        record=record,
        poison=signing.seal(Envelope(flow=flow.name, records=[record]), rt.signing_key),
        prefix=prefix,
    )
    out.counts.failed += 1


def _retry(rt: Runtime, flow: Flow, retry: Record, delay: float, exc: P2CError, out: Outcome) -> None:
    """Put the record back on its queue, invisible for `delay` seconds."""
    rt.storage.queue(flow.queue).send_message(
        signing.seal(Envelope(flow=flow.name, records=[retry]), rt.signing_key),
        visibility_timeout=int(min(delay, 7 * 24 * 3600)) or 1,
    )
    out.counts.retried += 1
    log.info(
        "record %s/%s retried in %.0fs: %s", flow.name, retry.key, delay, exc.error_class,
        extra=_extra(flow, out, retry.key),
    )  # fmt: skip


def _fail(
    rt: Runtime,
    flow: Flow,
    key: str,
    attempt: int,
    exc: P2CError,
    record: Record | None,
    poison: bytes | None = None,
    prefix: str = "",
) -> None:
    rt.state.record_failure(
        Failure(
            flow=flow.name,
            source_key=key,
            attempt=attempt,
            error_class=exc.error_class,
            message=prefix + str(exc),
            status=exc.status,
            request_id=exc.request_id,
            record=record.model_dump_json() if record is not None else None,
        )
    )
    if poison is not None:
        poison_copy(rt, flow, poison, key)
    log.warning(
        "record %s/%s failed (%s): %s", flow.name, key, exc.error_class, exc,
        extra={"p2c.flow": flow.name, "p2c.key": key, "p2c.error_class": exc.error_class, "p2c.attempt": attempt},
    )  # fmt: skip


def poison_copy(rt: Runtime, flow: Flow, body: bytes, key: str) -> None:
    """The poison queue's copy, after the failure entry is written: its loss is logged,
    never raised, so `apply` does not fail a message it has recorded."""
    try:
        rt.storage.queue(flow.poison_queue).send_message(body)
    except Exception as exc:
        log.warning("record %s/%s: poison copy not sent (%s)", flow.name, key, type(exc).__name__)


def _record_run(rt: Runtime, out: Outcome, started: str, error: str | None) -> None:
    rt.state.record_run(
        Run(
            flow=out.flow,
            kind=out.kind,
            run_id=out.run_id,
            started=started,
            ended=now().isoformat(),
            counts=out.counts.as_dict(),
            status="error" if error else "ok",
            error=error,
        )
    )


# --- replay -----------------------------------------------------------------------


def replay(rt: Runtime, flow: Flow, keys: set[str] | None = None) -> int:
    """Put failed records back on the flow's queue; returns how many messages were re-enqueued.

    Replaying a whole flow also empties its poison queue: copies of records just replayed
    are dropped, anything else (a message the host gave up on) goes back to the queue.
    """
    queue = rt.storage.queue(flow.queue)
    count = 0
    replayed: set[tuple[str, int]] = set()
    for failure in rt.state.failures(flow.name):
        if keys is not None and failure.source_key not in keys:
            continue
        if failure.record:
            record = Record.model_validate(json.loads(failure.record))
            # Re-signed: only `replay` is set by p2c here; `force` is never taken from state.
            record = record.model_copy(update={"attempt": 0, "waiting_since": None, "replay": True, "force": False})
            queue.send_message(signing.seal(Envelope(flow=flow.name, records=[record]), rt.signing_key))
            replayed.add((record.key, record.version))
            count += 1
        rt.state.clear_failure(flow.name, failure.source_key)
    if keys is None:
        count += _drain_poison(rt, flow, replayed)
    return count


def _drain_poison(rt: Runtime, flow: Flow, replayed: set[tuple[str, int]]) -> int:
    poison, queue = rt.storage.queue(flow.poison_queue), rt.storage.queue(flow.queue)
    moved = 0
    while True:
        batch = list(poison.receive_messages(messages_per_page=32, max_messages=32, visibility_timeout=60))
        if not batch:
            return moved
        for message in batch:
            try:
                envelope = decode(message.content)
                duplicate = all((r.key, r.version) in replayed for r in envelope.records)
            except MessageError:
                duplicate = False  # back it goes: it fails again, visibly, until discarded
            if not duplicate:
                queue.send_message(message.content)
                moved += 1
            poison.delete_message(message)
