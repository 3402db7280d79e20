"""Claiming a message's records with few storage round trips: "create; on conflict read".

Most records of a bulk load are new: their key map entries are created, leased, in one
table transaction per partition and 100 (no read before), and their row ids reserved the
same way (`~id` rows created, not read). A transaction that finds an existing entry (or id
row) fails whole; its records are then read (a query per partition and 14 records,
state/keyreads.py) and claimed, so a record never goes unread when it has an entry. What
each record costs: docs/benchmarks.md.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from p2c_core import lifecycle
from p2c_core.envelope import Record
from p2c_core.flow import Flow
from p2c_core.state import Claim, KeyMapEntry, ids
from p2c_core.state.keymap import own_claim

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime


def claim_new(
    rt: Runtime, flow: Flow, records: list[Record], lease: timedelta, at: datetime
) -> tuple[list[tuple[Record, KeyMapEntry]], list[Record]]:
    """The records claimed as new (with their created entries), and the rest, to read; the
    leases run from `at`."""
    created = rt.state.claim_new(flow.name, [Claim(None, r.key, r.version) for r in _first(records)], lease, at=at)
    fresh = [(r, e) for r, e in zip(_first(records), created, strict=True) if e is not None]
    taken = {id(r) for r, _ in fresh}
    return fresh, [r for r in records if id(r) not in taken]


def own(
    fresh: list[tuple[Record, KeyMapEntry]], unclaimed: list[Record], entries: dict[str, KeyMapEntry], until: datetime
) -> list[tuple[Record, KeyMapEntry]]:
    """Of the records `claim_new` left unclaimed, those whose entry, read back, is its own claim:
    the transaction went through but its answer was lost (the retry met its creates). Taken as
    busy, they would wait out a lease nobody holds, and fail once their attempts ran out
    first (8 retries 5 s apart, a lease of 120 s): a bulk load lost a whole message that way."""
    claimed = {r.key for r, _ in fresh}  # another version of a claimed key waits for it
    probed = [r for r in _first(unclaimed) if r.key not in claimed]
    return [(r, e) for r in probed if own_claim(e := entries.get(r.key), r.version, until) and e]


def _first(records: list[Record]) -> list[Record]:
    """The first record of each key (another version of one is claimed after it)."""
    first: dict[str, Record] = {}
    for r in records:
        first.setdefault(r.key, r)
    return list(first.values())


def reserve_ids(rt: Runtime, flow: Flow, records: list[Record]) -> set[str]:
    """Keys of new records whose row id is now reserved for them: no other key was written
    from that row, so their key-change check (`lifecycle.check_key`) is done."""
    wanted = {sid: r.key for r in records if not r.replay and (sid := lifecycle.source_id(flow, r)) is not None}
    if not wanted:
        return set()
    return {wanted[sid] for sid in ids.reserve(rt.storage, flow.name, wanted)}


def discard(rt: Runtime, claimed: KeyMapEntry | None) -> None:
    """Undo `claim_new` for a record that writes nothing (it stays as if never seen)."""
    if claimed is not None:
        rt.state.discard([claimed])
