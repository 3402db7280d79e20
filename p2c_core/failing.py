"""A record that did not go through: tried again later (with backoff, Retry-After, or a wait
for a record it refers to), or failed for good (a failure entry and a poison message).
DESIGN invariants 5 and 6."""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING

from p2c_core import signing, waiting
from p2c_core.clients.retry import Backoff
from p2c_core.envelope import Envelope, Record
from p2c_core.errors import DependencyMissing, P2CError, RecordBusy, ThrottledError
from p2c_core.flow import Flow
from p2c_core.outcome import Outcome, log_fields
from p2c_core.state import Failure, KeyMapEntry

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.engine")

# Delay for a record another worker is applying right now.
BUSY_DELAY_S = 5.0
RECORD_BACKOFF = Backoff(base=5.0, cap=900.0)


def failed_attempt(rt: Runtime, flow: Flow, record: Record, exc: P2CError, out: Outcome) -> None:
    # A throttle says "later", not "wrong": it waits Retry-After and spends no attempt,
    # so a long throttle makes progress instead of pushing records into poison. So does an
    # unexpired lease: it ends by itself (apply_lease_seconds), and a holder that is gone
    # (a worker stopped mid-message) must not make its records fail before it ends.
    waits = isinstance(exc, ThrottledError) or (isinstance(exc, RecordBusy) and exc.leased)
    attempt = record.attempt if waits else record.attempt + 1
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
            retry_later(rt, flow, record.model_copy(update={"waiting_since": since}), delay, exc, out)
            return
        prefix = f"gave up after waiting {budget / 60:g} minutes: "
    else:
        if exc.transient and (attempt < rt.settings.record_max_attempts or waits):
            retry_after = exc.retry_after if isinstance(exc, ThrottledError) else None
            delay = BUSY_DELAY_S if exc.error_class == "RecordBusy" else backoff.delay(max(attempt, 1), retry_after)
            retry_later(rt, flow, record.model_copy(update={"attempt": attempt}), delay, exc, out)
            return
        prefix = f"gave up after {attempt} attempts: " if exc.transient else ""
    record_failure(
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


def retry_later(rt: Runtime, flow: Flow, retry: Record, delay: float, exc: P2CError, out: Outcome) -> None:
    """Put the record back on its queue, invisible for `delay` seconds."""
    rt.storage.queue(flow.queue).send_message(
        signing.seal(Envelope(flow=flow.name, records=[retry]), rt.signing_key),
        visibility_timeout=int(min(delay, 7 * 24 * 3600)) or 1,
    )
    out.counts.retried += 1
    if isinstance(exc, DependencyMissing):
        waiting.park(flow.name, retry.key, str(exc))
    log.info(
        "record %s/%s retried in %.0fs: %s", flow.name, retry.key, delay, exc.error_class,
        extra=log_fields(flow, out, retry.key),
    )  # fmt: skip


def record_failure(
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


def cleared(rt: Runtime, flow: Flow, record: Record, entry: KeyMapEntry | None) -> None:
    """A record that failed before and now went through leaves the failure table."""
    if record.attempt > 0 or record.replay or (entry is not None and entry.failed):
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            rt.state.clear_failure(flow.name, record.key)
