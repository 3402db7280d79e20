"""Replay: put failed records back on their flow's queue (and drain its poison queue)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from p2c_core.envelope import Envelope, Record, decode
from p2c_core.errors import MessageError
from p2c_core.flow import Flow

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime


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
            record = record.model_copy(update={"attempt": 0, "waiting_since": None, "replay": True})
            queue.send_message(Envelope(flow=flow.name, records=[record]).to_json().encode())
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
