"""A record's life past create and update: deleted or deactivated at the source, or its
natural key changed. What each flow offers, and why: docs/lifecycle.md.

Removals travel as records with `op: "delete"`, made by the poll alone (never taken from
outside), carrying no data: the apply reads what it needs from the key map.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from p2c_core import routing
from p2c_core.envelope import Record
from p2c_core.errors import KeyChanged, NotFoundError, P2CError
from p2c_core.failing import cleared, failed_attempt
from p2c_core.flow import Dataverse, FinOps, Flow, id_column
from p2c_core.on_delete import HOLD, IGNORE, INACTIVE
from p2c_core.outcome import Outcome, log_fields
from p2c_core.state import KeyMapEntry
from p2c_core.state import ids as ids

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.engine")

# CustomersV3.OnHoldStatus is the CustVendorBlocked enum: No, Invoice, All, Payment,
# Requisition, Never (learn.microsoft.com, CustVendorBlocked Enumeration). `All`: the
# customer takes part in no new transaction, and stays in F&O with its history.
HOLD_FIELD, HOLD_VALUE = "OnHoldStatus", "All"
# The key map hash of a record removed at the source: its next upsert is written again.
REMOVED_HASH = "removed"
STATE_COLUMN = "statecode"


def setting(rt: Runtime, flow: Flow) -> str:
    return rt.settings.flow(flow.name).on_delete


def deactivated(flow: Flow, row: dict[str, Any]) -> bool:
    """A row the filter leaves out only for its state (Sales: statecode 1, inactive)."""
    where = flow.source.where
    if where is None or STATE_COLUMN not in where.columns() or row.get(STATE_COLUMN) in (None, 0):
        return False
    return where.matches({**row, STATE_COLUMN: 0})


def source_id(flow: Flow, record: Record) -> str | None:
    if not isinstance(flow.source, Dataverse):
        return None  # F&O rows have no id besides their natural key
    value = record.data.get(flow.source.id_column)
    return str(value).lower() if isinstance(value, str) and value else None


def removal(rt: Runtime, flow: Flow, key: str, version: int | None, out: Outcome) -> Record | None:
    """A source row deleted (version None: its key and version come from the key map) or
    deactivated: counted, and a delete record when the flow's setting acts on it."""
    out.counts.removed += 1
    if setting(rt, flow) == IGNORE:
        out.counts.skipped += 1
        return None
    if version is None:
        entry = routing.entry(rt, flow.name, key)
        if entry is None or entry.version < 0:
            out.counts.skipped += 1
            return None
        version = entry.version + 1  # after the last write; a recreated row's version is higher still
    return Record(key=key, version=version, op="delete")


def deleted(rt: Runtime, flow: Flow, guids: list[str], out: Outcome) -> list[Record]:
    """Delete records for the GUIDs Dataverse change tracking reported deleted (for F&O
    sources: the keys a full scan no longer found)."""
    records: list[Record] = []
    for guid in guids:
        if isinstance(flow.source, FinOps):
            key: str | None = guid
        else:
            key = None if setting(rt, flow) == IGNORE else ids.key_of(rt.storage, flow.name, guid)
        if key is None and setting(rt, flow) != IGNORE:
            # Not written by p2c (or before row ids were kept): nothing to act on.
            log.info("flow %s: row %s deleted; p2c never wrote it", flow.name, guid, extra=log_fields(flow, out))
            out.counts.removed += 1
            out.counts.skipped += 1
            continue
        if (record := removal(rt, flow, key or guid, None, out)) is not None:
            records.append(record)
    return records


def apply_delete(rt: Runtime, flow: Flow, record: Record, out: Outcome) -> None:
    """Act on a removal as the flow's setting says: put the F&O customer on hold, or
    deactivate the Sales row."""
    entry = routing.entry(rt, flow.name, record.key)
    if entry is None or entry.version < 0 or entry.version > record.version or setting(rt, flow) == IGNORE:
        out.counts.skipped += 1  # never written, stale, or the setting changed since the poll
        return
    try:
        lease = timedelta(seconds=rt.settings.apply_lease_seconds)
        claimed = rt.state.claim(entry, flow.name, record.key, record.version, lease)
    except P2CError as exc:
        failed_attempt(rt, flow, record, exc, out)
        return
    try:
        if setting(rt, flow) == HOLD:
            _hold(rt, flow, entry.target_key or routing.natural_key(rt, record), routing.company_of(rt, record))
        else:
            _deactivate(rt, flow, entry.target_key or record.key)
    except P2CError as exc:
        rt.state.release(claimed)
        failed_attempt(rt, flow, record, exc, out)
        return
    except BaseException:
        rt.state.release(claimed)
        raise
    rt.state.commit(claimed, version=record.version, hash=REMOVED_HASH, target_key=entry.target_key,
                    master=entry.master)  # fmt: skip
    out.counts.written += 1
    cleared(rt, flow, record, entry)
    log.info("record %s/%s removed at the source: %s", flow.name, record.key, setting(rt, flow),
             extra=log_fields(flow, out, record.key))  # fmt: skip


def _hold(rt: Runtime, flow: Flow, key: str, company: str | None) -> None:
    fno = rt.fno_for(company)
    address = fno.key(**{flow.target.key: key})
    try:
        fno.update(flow.target.entity_set, address, {HOLD_FIELD: HOLD_VALUE})
    except NotFoundError:
        log.info("flow %s: customer %s is no longer in F&O; nothing to hold", flow.name, key)


def _deactivate(rt: Runtime, flow: Flow, key: str) -> None:
    target = flow.target
    pk = id_column(target.entity_set)
    row = rt.dataverse.get(target.entity_set, {target.key: key}, select=[pk])
    if row is None:
        log.info("flow %s: %s %s is no longer in Sales; nothing to deactivate", flow.name, target.entity_set, key)
        return
    rt.dataverse.update(target.entity_set, row[pk], {STATE_COLUMN: INACTIVE[target.entity_set]})


def check_key(rt: Runtime, flow: Flow, record: Record, entry: KeyMapEntry | None) -> None:
    """Raise KeyChanged when the record's source row was written under another key.

    Asked only for keys p2c has not written (a changed key is always one): a point read.
    F&O keys cannot be renamed through its OData entities (an update of a key property is
    invalid, [MS-ODATA] 2.2.7.3.3; renaming is F&O's own Rename function), so a changed key fails and
    writes nothing. A replay writes it under its new key, as a new record.
    """
    if (entry is not None and entry.version >= 0) or record.replay:
        return
    sid = source_id(flow, record)
    if sid is None:
        return
    before = ids.key_of(rt.storage, flow.name, sid)
    if before is not None and not routing.same_record(rt.companies, before, record.key) and _written(rt, flow, before):
        routing.check_company(rt.companies, flow, before, record.key, sid)
        raise KeyChanged(
            f"{flow.source.entity_set} row {sid} was written as {before!r} and now has key {record.key!r}: "
            f"{flow.target.entity_set} cannot rename {flow.target.key} through OData, so nothing was written. "
            f"Set the old key back, or rename {before!r} in F&O, or replay to write {record.key!r} "
            f"as a new record (docs/lifecycle.md)"
        )


def _written(rt: Runtime, flow: Flow, key: str) -> bool:
    """Whether p2c wrote `key`: an id row is also reserved before a record's first write
    (claims.py), and stays if that write then failed; only a written key is a rename."""
    entry = rt.state.get_entry(flow.name, key)
    return entry is not None and entry.version >= 0


def stamp(flow: Flow, record: Record, claimed: KeyMapEntry) -> dict[str, str]:
    """Before a commit: the row id into the entry; returns `{row id: key}` when the id
    index needs it (the entry did not hold this id yet), for `ids.remember` after the commit."""
    sid = source_id(flow, record)
    if sid is None or claimed.source_id == sid:
        return {}
    claimed.source_id = sid
    return {sid: record.key}
