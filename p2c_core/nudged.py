"""The nudge function: read the row a nudge names, and apply it as a polled change.

The row's current state is read from its source with the flow's own columns, lookups and
lines, turned into records by the poll's own code, and applied by `engine.apply` as a
signed envelope: the key map's version and hash decide, so an older, repeated or forged
event writes nothing. A row the source no longer has is a removal, as the flow's
ON_DELETE says (lifecycle.py): nothing is taken from the event itself.

Coalescing: a nudge waits `P2C_EVENTS_COALESCE_SECONDS` in the queue (events.py); when it
comes due, a read of its row that started after the event was received has seen that
change already, so the nudge is dropped. 500 events for one row within the wait are one
read and at most one write. Nudges for many rows are read together, about IDS_PER_QUERY
rows a request (nudge_gather.py, nudge_read.py). What one process remembers is its own: another instance may
read the row once more, which writes nothing (the key map).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from cachetools import TTLCache

from p2c_core import engine, nudge_gather, signing
from p2c_core.controls import paused
from p2c_core.envelope import Envelope, chunk
from p2c_core.errors import MessageError
from p2c_core.flow import Flow
from p2c_core.nudge import Nudge, open_sealed
from p2c_core.nudge_read import read_rows
from p2c_core.outcome import Outcome

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.nudges")

# When a read of a row last started in this process (epoch s), by Nudge.row().
_reads = TTLCache[tuple[str, str], float](maxsize=100_000, ttl=600)
_reads_lock = threading.Lock()
# A batch's records are written side by side, as the host's overlapping batches (batchSize 8,
# newBatchThreshold) would have written them one delivery each.
WRITERS = 32
_writers = ThreadPoolExecutor(max_workers=WRITERS, thread_name_prefix="p2c-nudge-write")


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
    """Apply one nudge, read together with the nudges around it (nudge_gather.py); None when
    nothing was read (bad, coalesced, or its flow is off)."""
    n = _accept(rt, body)
    if n is None:
        return None
    return nudge_gather.together(rt, n, lambda batch: _apply_all(rt, batch), lambda b: _accept(rt, b))


def _accept(rt: Runtime, body: bytes | str) -> Nudge | None:
    """The nudge in a message when its row needs a read, else None (logged why)."""
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
    return n


def _forget_read(n: Nudge) -> None:
    with _reads_lock:
        _reads.pop(n.row(), None)


def _apply_all(rt: Runtime, nudges: list[Nudge]) -> dict[str, Outcome]:
    """Every flow's nudges read together and applied: an outcome per flow."""
    flows: dict[str, list[Nudge]] = {}
    for n in nudges:
        flows.setdefault(n.flow, []).append(n)
    try:
        return {name: _apply(rt, rt.flow(name), group) for name, group in flows.items()}
    except BaseException:
        for n in nudges:
            _forget_read(n)  # the nudges come again: those deliveries must read
        raise


def _apply(rt: Runtime, flow: Flow, nudges: list[Nudge]) -> Outcome:
    out = Outcome(flow.name, "nudge")
    records = read_rows(rt, flow, nudges, out)
    if not records:
        return out
    rt.versions.note(flow, (r.version for r in records))  # before they are applied, as the poll does
    # p2c.lag: from the earliest source change of the batch (a bound, never under the real lag).
    sent = min(n.changed or n.received for n in nudges)
    # Written as the host would have, one delivery a row: an envelope each, WRITERS at once.

    def write(envelope: Envelope) -> Outcome:
        envelope.sent = sent
        return engine.apply(rt, flow, signing.seal(envelope, rt.signing_key))

    # Each write in a copy of this thread's context: its spans and logs stay this invocation's.
    writes = [_writers.submit(contextvars.copy_context().run, write, e) for e in chunk(flow.name, records, 1)]
    for applied in writes:
        out.counts.add(applied.result().counts)
    return out
