"""Apply one queue message: per record, key map check -> map -> lease -> idempotent write -> commit.

DESIGN invariants 2 and 3: any delivery, any number of times, in any order, has one effect,
and an older source version never overwrites a newer one. A message's header-only records
go together: leases and commits in table transactions, writes in one `$batch`.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from p2c_core import autopause, claims, lifecycle, routing, signing, telemetry, waiting
from p2c_core.company_reads import reader_for
from p2c_core.controls import paused
from p2c_core.envelope import Record, decode
from p2c_core.errors import MessageError, P2CError
from p2c_core.failing import cleared, failed_attempt, record_failure
from p2c_core.flow import Flow
from p2c_core.mapping import MappedLine, document_hash
from p2c_core.outcome import Counts, Outcome, count_metrics, record_run
from p2c_core.poison import copy_of
from p2c_core.state import Claim, Commit, KeyMapEntry, ids, now
from p2c_core.targets import BatchWriter, LineWrite, TargetWriter, WriteItem, WriteResult
from p2c_core.trust import check_record, hold_unverified

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

Row = dict[str, Any]

# How often a paused flow's queued messages are looked at again.
PAUSED_DELAY_S = 60


def apply(rt: Runtime, flow: Flow, body: bytes | str) -> Outcome:
    """Apply one queue message. Never raises for bad input or a bad record."""
    out = Outcome(flow.name, "apply")
    if paused(rt, flow):
        # Keep the change: put the message back, unchanged, to be looked at again later.
        raw = body.encode() if isinstance(body, str) else body
        rt.storage.queue(flow.queue).send_message(raw, visibility_timeout=PAUSED_DELAY_S)
        out.counts.deferred += 1
        waiting.park(flow.name, _message_ident(raw), f"flow {flow.name} to be resumed")
        return out
    if waiting.active():
        waiting.taken(flow.name, _message_ident(body.encode() if isinstance(body, str) else body))
    with telemetry.span("p2c apply", **{"p2c.flow": flow.name, "p2c.run_id": out.run_id}) as span:
        _apply(rt, flow, body, out)
        span.set_attributes({f"p2c.{k}": v for k, v in out.counts.as_dict().items()})
    count_metrics(flow, out)
    autopause.check(rt, flow, out)
    return out


def _apply(rt: Runtime, flow: Flow, body: bytes | str, out: Outcome) -> None:
    started = now().isoformat()
    try:
        envelope = decode(body)
        if envelope.flow != flow.name:
            raise MessageError(f"message is for flow {envelope.flow!r}, not {flow.name!r}")
    except MessageError as exc:
        raw = body.encode() if isinstance(body, str) else body
        ident = _message_ident(raw)
        record_failure(rt, flow, ident, 0, exc, record=None, poison=copy_of(raw, flow.name, ident))
        out.counts.failed += 1
        record_run(rt, out, started, None)
        return
    if (problem := signing.problem(body, rt.signing_key)) is not None:  # before anything is read
        out.counts.failed += hold_unverified(rt, flow, envelope, problem)
        record_run(rt, out, started, None)
        return
    # Records queued before the company map was set belong to the default company (routing.py).
    envelope.records = [routing.normalized(rt.companies, r) for r in envelope.records]
    for removed in (r for r in envelope.records if r.op == "delete"):
        try:
            check_record(rt, flow, removed)  # signed by p2c's poll, and within what the source issued
        except P2CError as exc:
            failed_attempt(rt, flow, removed, exc, out)
            continue
        lifecycle.apply_delete(rt, flow, removed, out)
    records = [r for r in envelope.records if r.op != "delete"]
    size = rt.settings.batch_size
    if size > 1 and flow.lines is None and isinstance(rt.writer(flow), BatchWriter) and len(records) > 1:
        # One `$batch` per company: each company's writer writes in its own dataAreaId.
        by_company: dict[str | None, list[Record]] = {}
        for record in records:
            by_company.setdefault(routing.company_of(rt, record), []).append(record)
        for company, group in by_company.items():
            writer = _writer(rt, flow, company)
            assert isinstance(writer, BatchWriter)
            for i in range(0, len(group), size):
                _apply_batch(rt, flow, writer, group[i : i + size], out)
    elif records:
        _apply_each(rt, flow, records, out)
    if envelope.sent is not None and out.counts.written:
        out.lag_s = max(0.0, time.time() - envelope.sent)
        telemetry.instruments().lag.record(out.lag_s, {"flow": flow.name})
    record_run(rt, out, started, None)


def _writer(rt: Runtime, flow: Flow, company: str | None) -> TargetWriter:
    """The flow's writer in the record's company (asked as before when there is one company)."""
    return rt.writer(flow) if company is None else rt.writer(flow, company)


def _message_ident(raw: bytes) -> str:
    return "message-" + hashlib.sha256(raw).hexdigest()[:16]


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
        telemetry.thread_started()  # this thread's logs belong to the invocation
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
    pending = _prepare(rt, flow, record, routing.entry(rt, flow.name, record.key), out)
    if pending is None:
        return
    try:
        lease = timedelta(seconds=rt.settings.apply_lease_seconds)
        pending.claimed = rt.state.claim(pending.entry, flow.name, record.key, record.version, lease)
    except P2CError as exc:
        failed_attempt(rt, flow, record, exc, out)
        return
    pending.item.known = pending.claimed.version >= 0
    try:
        result: WriteResult | P2CError = _writer(rt, flow, routing.company_of(rt, record)).write(pending.item)
    except P2CError as exc:
        result = exc
    except BaseException:
        rt.state.release(pending.claimed)
        raise
    _finish(rt, flow, pending, result, out)


def _apply_batch(rt: Runtime, flow: Flow, writer: BatchWriter, records: list[Record], out: Outcome) -> None:
    """The records of one message in few round trips: leased in one table transaction,
    written in one `$batch`, committed in one transaction. Each record still succeeds,
    waits or fails alone. A delivery that stops half way (a storage or service error that
    raises) gives back the leases it took: held, they would keep its records busy on the
    message's next delivery until they expired."""
    held: list[KeyMapEntry] = []
    try:
        ready, checked = _claim_batch(rt, flow, records, out, held)
        if ready:
            _write_batch(rt, flow, writer, ready, checked, out)
    except BaseException:
        for entry in held:  # a no-op for those committed, released or discarded meanwhile
            with contextlib.suppress(Exception):
                rt.state.release(entry)
        raise


def _claim_batch(
    rt: Runtime, flow: Flow, records: list[Record], out: Outcome, held: list[KeyMapEntry]
) -> tuple[list[_Pending], set[str]]:
    """The message's records leased and ready to write (each lease also in `held`), and the
    keys whose row id is reserved."""
    state = rt.state
    lease = timedelta(seconds=rt.settings.apply_lease_seconds)
    # New records are claimed by creating their entries, with no read first (claims.py);
    # only those whose transaction found an entry are read, together (state/keyreads.py).
    # A default-company record may have its entry under its key of before several companies
    # (routing.py): read first, never claimed as new.
    bare = {id(r) for r in records if routing.may_be_bare(rt, r)}
    at = now()
    fresh, unclaimed = claims.claim_new(rt, flow, [r for r in records if id(r) not in bare], lease, at)
    held.extend(e for _, e in fresh)
    read = bare | {id(r) for r in unclaimed}
    known = [r for r in records if id(r) in read]
    entries = routing.entries(rt, flow.name, list(dict.fromkeys(r.key for r in known)))
    if len(fresh) < len(records) - len(bare):  # a transaction seemed to fail: it may be ours
        ours = claims.own(fresh, unclaimed, entries, at + lease)
        held.extend(e for _, e in ours)
        fresh += ours
        known = [r for r in known if id(r) not in {id(o) for o, _ in ours}]
    checked = claims.reserve_ids(rt, flow, [r for r, _ in fresh])
    prepared = [_prepare(rt, flow, r, None, out, claimed=c, id_checked=r.key in checked) for r, c in fresh]
    ready = [p for p in prepared if p is not None]
    pending = [p for p in (_prepare(rt, flow, r, entries.get(r.key), out) for r in known) if p is not None]
    taken = state.claim_many(flow.name, [Claim(p.entry, p.record.key, p.record.version) for p in pending], lease)
    for p, claimed in zip(pending, taken, strict=True):
        if isinstance(claimed, P2CError):
            failed_attempt(rt, flow, p.record, claimed, out)
            continue
        held.append(claimed)
        p.claimed, p.item.known = claimed, claimed.version >= 0
        ready.append(p)
    return ready, checked


def _write_batch(
    rt: Runtime, flow: Flow, writer: BatchWriter, ready: list[_Pending], checked: set[str], out: Outcome
) -> None:
    """Write the leased records in one `$batch`, then commit those written in one transaction."""
    state = rt.state
    try:
        results = writer.write_many([p.item for p in ready])
    except P2CError as exc:  # the batch as a whole failed (after its retries)
        results = [exc] * len(ready)
    written: list[_Pending] = []
    new_ids: list[dict[str, str]] = []
    commits: list[Commit] = []
    for p, result in zip(ready, results, strict=True):
        assert p.claimed is not None  # leased above
        if isinstance(result, P2CError):
            _finish(rt, flow, p, result, out)
        else:
            written.append(p)
            new_ids.append(lifecycle.stamp(flow, p.record, p.claimed))
            commits.append(Commit(p.claimed, p.record.version, p.digest, result.target_key, flow.source.service))
    remember: dict[str, str] = {}
    for p, lost, sid in zip(written, state.commit_many(commits), new_ids, strict=True):
        if lost is not None:
            failed_attempt(rt, flow, p.record, lost, out)
            continue
        if p.record.key not in checked:  # a reserved id row is written already
            remember.update(sid)
        out.counts.written += 1
        cleared(rt, flow, p.record, p.entry)
    if remember:
        ids.remember(rt.storage, flow.name, remember)


def _prepare(
    rt: Runtime, flow: Flow, record: Record, entry: KeyMapEntry | None, out: Outcome,
    *, claimed: KeyMapEntry | None = None, id_checked: bool = False,
) -> _Pending | None:  # fmt: skip
    """Everything before the claim; None when there is nothing to write (or it failed).
    `claimed`: the entry `claim_new` created for a new record, discarded if nothing is written."""
    waiting.taken(flow.name, record.key)
    try:
        check_record(rt, flow, record)
    except P2CError as exc:
        claims.discard(rt, claimed)
        failed_attempt(rt, flow, record, exc, out)
        return None
    if entry is not None and entry.version > record.version:
        out.counts.skipped += 1  # stale: a newer version is already applied (invariant 3)
        return None
    if flow.create_only and entry is not None and entry.version >= 0 and not record.force:
        # Written once; the target owns the record now. Later source edits are not carried.
        out.counts.skipped += 1
        cleared(rt, flow, record, entry)
        return None
    try:
        if not id_checked:
            lifecycle.check_key(rt, flow, record, entry)
        data = record.data
        company = routing.company_of(rt, record)
        if record.lines_later:  # read now, into a copy: a retry must travel without them again
            data = dict(data)
            reader_for(rt, flow, company).add_lines([data])
        mapped = rt.company_flow(flow, company)  # with the overlay's changes for the company
        payload, create_only = rt.mapper.map(mapped, routing.natural_key(rt, record), data, company)
        lines = rt.mapper.map_lines(mapped, data, company)
        digest = document_hash(payload, lines)
        if entry is not None and entry.hash == digest and entry.version >= 0 and not record.force:
            if entry.version < record.version:
                _remember_version(rt, flow, record, entry, digest)
            out.counts.skipped += 1
            cleared(rt, flow, record, entry)
            return None
        # References first: a missing customer or product waits before anything is written.
        payload, create_only, resolved_lines = _resolved(rt, flow, company, payload, create_only, lines)
    except P2CError as exc:
        claims.discard(rt, claimed)
        failed_attempt(rt, flow, record, exc, out)
        return None
    item = WriteItem(routing.natural_key(rt, record), payload, create_only, known=False, lines=resolved_lines)
    return _Pending(record, entry, item, digest, claimed)


def _remember_version(rt: Runtime, flow: Flow, record: Record, entry: KeyMapEntry, digest: str) -> None:
    """The source changed in unmapped columns only: remember the version, write nothing."""
    lease = timedelta(seconds=rt.settings.apply_lease_seconds)
    claimed = rt.state.claim(entry, flow.name, record.key, record.version, lease)
    new_id = lifecycle.stamp(flow, record, claimed)
    rt.state.commit(claimed, version=record.version, hash=digest, target_key=entry.target_key, master=entry.master)
    if new_id:  # an entry from before row ids were kept
        ids.remember(rt.storage, flow.name, new_id)


def _resolved(
    rt: Runtime, flow: Flow, company: str | None, payload: Row, create_only: Row, lines: list[MappedLine] | None
) -> tuple[Row, Row, list[LineWrite] | None]:
    """Payload, create-only fields and lines with their references resolved in the record's
    company, and the company's owner team bound on create (owners.py)."""

    def resolve(values: Row) -> Row:
        return rt.references.resolve(flow, values, company)

    resolved_lines = (
        None if lines is None else [LineWrite(ln.key, resolve(ln.payload), resolve(ln.create_only)) for ln in lines]
    )
    payload, create_only = resolve(payload), resolve(create_only)
    create_only.update(rt.owners.bind(flow, company))
    return payload, create_only, resolved_lines


def _finish(rt: Runtime, flow: Flow, pending: _Pending, result: WriteResult | P2CError, out: Outcome) -> None:
    """Record one write's outcome: commit the key map, or release the lease and retry/fail."""
    record, claimed = pending.record, pending.claimed
    assert claimed is not None
    if isinstance(result, P2CError):
        rt.state.release(claimed)
        failed_attempt(rt, flow, record, result, out)
        return
    new_id = lifecycle.stamp(flow, record, claimed)
    try:
        rt.state.commit(
            claimed, version=record.version, hash=pending.digest, target_key=result.target_key,
            master=flow.source.service,
        )  # fmt: skip
    except P2CError as exc:
        failed_attempt(rt, flow, record, exc, out)
        return
    if new_id:
        ids.remember(rt.storage, flow.name, new_id)
    out.counts.written += 1
    cleared(rt, flow, record, pending.entry)
