"""The nudge function: read the row a nudge names, and apply it as a polled change.

The row's current state is read from its source with the flow's own columns, lookups and
lines, turned into records by the poll's own code, and applied by `engine.apply` as a
signed envelope: the key map's version and hash decide, so an older, repeated or forged
event writes nothing. A row the source no longer has is a removal, as the flow's
ON_DELETE says (lifecycle.py): nothing is taken from the event itself.

Coalescing: a nudge waits `P2C_EVENTS_COALESCE_SECONDS` in the queue (events.py); when it
comes due, a read of its row that started after the event was received has seen that
change already, so the nudge is dropped. 500 events for one row within the wait are one
read and at most one write. What one process remembers is its own: another instance may
read the row once more, which writes nothing (the key map).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

from cachetools import TTLCache

from p2c_core import engine, lifecycle, signing
from p2c_core.controls import paused
from p2c_core.envelope import Record, chunk
from p2c_core.errors import MessageError
from p2c_core.flow import Dataverse, Flow
from p2c_core.nudge import Nudge, open_sealed
from p2c_core.outcome import Outcome
from p2c_core.poll import source_records
from p2c_core.sources import DataverseChanges, any_of

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.nudges")

# When a read of a row last started in this process (epoch s), by Nudge.row().
_reads = TTLCache[tuple[str, str], float](maxsize=100_000, ttl=600)
_reads_lock = threading.Lock()


def forget_reads() -> None:
    """Tests: start without any remembered read."""
    with _reads_lock:
        _reads.clear()


def _claim_read(n: Nudge) -> bool:
    """Whether this nudge needs a read: none started since its event was received."""
    with _reads_lock:
        started = _reads.get(n.row())
        if started is not None and started >= n.received:
            return False
        _reads[n.row()] = time.time()  # before the read: a change after this needs another
        return True


def handle(rt: Runtime, body: bytes | str) -> Outcome | None:
    """Apply one nudge; None when nothing was read (bad, coalesced, or its flow is off)."""
    try:
        n = open_sealed(body, rt.signing_key)
        flow = rt.flow(n.flow)
    except (MessageError, KeyError) as exc:
        log.warning("nudge dropped: %s", exc)  # a hint only: the poll still sees the change
        return None
    if not rt.settings.flow(flow.name).enabled or paused(rt, flow):
        log.info("nudge for flow %s dropped: the flow is disabled or paused", flow.name)
        return None
    if not _claim_read(n):
        log.debug("nudge for %s %s coalesced", flow.name, n.row()[1])
        return None
    try:
        return _apply(rt, flow, n)
    except BaseException:
        _forget_read(n)  # the host delivers the nudge again: that delivery must read
        raise


def _forget_read(n: Nudge) -> None:
    with _reads_lock:
        _reads.pop(n.row(), None)


def _apply(rt: Runtime, flow: Flow, n: Nudge) -> Outcome:
    out = Outcome(flow.name, "nudge")
    records = _read(rt, flow, n, out)
    if not records:
        return out
    rt.versions.note(flow, (r.version for r in records))  # before they are applied, as the poll does
    for envelope in chunk(flow.name, records, rt.settings.chunk_size):
        envelope.sent = n.changed or n.received  # p2c.lag: from the source change
        applied = engine.apply(rt, flow, signing.seal(envelope, rt.signing_key))
        out.counts.add(applied.counts)
    return out


def _read(rt: Runtime, flow: Flow, n: Nudge, out: Outcome) -> list[Record]:
    reader = rt.reader(flow)
    if isinstance(flow.source, Dataverse):
        guid = _document_id(rt, flow, n)
        if guid is None:
            return []
        row = rt.dataverse.get(flow.source.entity_set, guid, select=reader.select())
        if row is None:
            return lifecycle.deleted(rt, flow, [guid], out)
        rows: list[dict[str, Any]] = [row]
        assert isinstance(reader, DataverseChanges)
        reader.resolve(rows)  # lookups as natural keys, and the document's lines
    else:
        if n.key is None:
            return []
        rows = [r for page in rt.fno.query(flow.source.entity_set, select=reader.select(),
                                           filter=any_of(flow.source.key, [n.key])) for r in page.rows]  # fmt: skip
        rows = [{k: v for k, v in r.items() if not k.startswith("@")} for r in rows]
        if not rows:
            return lifecycle.deleted(rt, flow, [n.key], out)
        reader.add_lines(rows)
    return source_records(rt, flow, rows, reader.version_of, out)


def _document_id(rt: Runtime, flow: Flow, n: Nudge) -> str | None:
    """The Dataverse row to read: the nudge's, or for a line, its document (read from the line)."""
    if not n.line:
        return n.id
    lines = flow.lines
    if lines is None or lines.source is None or n.id is None:
        return None
    column = f"_{lines.source_parent}_value"
    line = rt.dataverse.get(lines.source, n.id, select=[column])
    parent = (line or {}).get(column)
    return str(parent).lower() if parent else None
