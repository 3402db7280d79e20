"""Replay: put failed records back on their flow's queue (and drain its poison queue)."""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING

from p2c_core.envelope import Envelope, Record, decode
from p2c_core.errors import MessageError
from p2c_core.flow import Flow

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.engine")


def replay(rt: Runtime, flow: Flow, keys: set[str] | None = None) -> int:
    """Put failed records back on the flow's queue; returns how many messages were re-enqueued.

    Replaying a whole flow also empties its poison queue: copies of records just replayed
    are dropped, anything else (a message the host gave up on) goes back to the queue.
    An entry with no stored record (a row without its key, a message that was not one)
    has nothing to re-enqueue: a replay by key keeps it (and does not count it); a
    replay of the whole flow drops it, as before: its message goes back from the poison
    queue, and a record fixed at the source comes with the next poll.
    """
    queue = rt.storage.queue(flow.queue)
    count = 0
    replayed: set[tuple[str, int]] = set()
    for failure in rt.state.failures(flow.name):
        if keys is not None and failure.source_key not in keys:
            continue
        if failure.record:
            record = Record.model_validate(json.loads(failure.record))
            record = record.model_copy(update={"attempt": 0, "waiting_since": None, "replay": True})
            queue.send_message(Envelope(flow=flow.name, records=[record]).to_json().encode())
            replayed.add((record.key, record.version))
            count += 1
        elif keys is not None:
            log.warning("failure %s/%s has no stored record to replay: entry kept", flow.name, failure.source_key)
            continue
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
