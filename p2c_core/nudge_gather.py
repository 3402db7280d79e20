"""Nudges handled together: the host's concurrent deliveries, and the nudges already due
in the queue, become one read per flow (nudge_read.py).

The host delivers a queue batch (host.json `batchSize`) as concurrent invocations of one
message each. The first invocation to arrive leads: it waits GATHER_SECONDS for the rest
of its batch, takes up to IDS_PER_QUERY more due nudges from the queue itself (leased,
deleted only once applied: a failure leaves them to come due again, as the host would),
and applies them all. The others wait for it and share its outcome, or its error (so the
host delivers their messages again). The messages are the same as before: nothing stored
changed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from p2c_core.nudge import QUEUE, Nudge
from p2c_core.outcome import Outcome
from p2c_core.sources import IDS_PER_QUERY

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.nudges")

# How long a leader waits for the rest of its host batch: they arrive within milliseconds.
GATHER_SECONDS = 0.05
# How long a nudge taken from the queue stays leased (as the host's own lease).
LEASE_SECONDS = 300

Apply = Callable[[list[Nudge]], dict[str, Outcome]]
Accept = Callable[[bytes | str], Nudge | None]


class _Waiting:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pending: list[tuple[Nudge, Future[Outcome]]] = []
        self.leading = False


_waiting: dict[int, _Waiting] = {}
_waiting_lock = threading.Lock()


def _of(rt: Runtime) -> _Waiting:
    with _waiting_lock:
        return _waiting.setdefault(id(rt), _Waiting())


def together(rt: Runtime, n: Nudge, apply: Apply, accept: Accept) -> Outcome:
    """Apply `n` with the nudges around it; the outcome of its flow's share."""
    waiting = _of(rt)
    mine: Future[Outcome] = Future()
    with waiting.lock:
        waiting.pending.append((n, mine))
        lead = not waiting.leading
        waiting.leading = True
    if not lead:
        return mine.result()  # the leader's outcome, or its error
    time.sleep(GATHER_SECONDS)
    with waiting.lock:
        batch, waiting.pending, waiting.leading = waiting.pending, [], False
    _lead(rt, batch, apply, accept)
    return mine.result()


def _lead(rt: Runtime, batch: list[tuple[Nudge, Future[Outcome]]], apply: Apply, accept: Accept) -> None:
    taken: list[tuple[Nudge, Any]] = []
    try:
        taken = _take_due(rt, max(0, IDS_PER_QUERY - len(batch)), accept)
        outcomes = apply([n for n, _ in batch] + [n for n, _ in taken])
    except BaseException as exc:
        for _, future in batch:
            future.set_exception(exc)
        return
    for n, future in batch:
        future.set_result(outcomes[n.flow])
    queue = rt.storage.queue(QUEUE)
    for _, message in taken:
        queue.delete_message(message)


def _take_due(rt: Runtime, room: int, accept: Accept) -> list[tuple[Nudge, Any]]:
    """Up to `room` nudges due in the queue that need a read; the others are deleted."""
    queue = rt.storage.queue(QUEUE)
    taken: list[tuple[Nudge, Any]] = []
    while room > 0:
        messages = list(queue.receive_messages(messages_per_page=min(32, room), max_messages=min(32, room),
                                               visibility_timeout=LEASE_SECONDS))  # fmt: skip
        if not messages:
            break
        room -= len(messages)
        for message in messages:
            if (message.dequeue_count or 1) > 1:  # it failed before: its retries and poison are the host's
                queue.update_message(message, visibility_timeout=0)
                continue
            n = accept(message.content)
            if n is None:  # bad, coalesced, or its flow is off: handled as the host would
                queue.delete_message(message)
            else:
                taken.append((n, message))
    return taken
