"""The rows of many nudges of one flow, read together (issue 18: a burst over many records
is read in pages, within the service budgets).

Dataverse: `$filter` on the primary id with `or`-joined terms, IDS_PER_QUERY ids a query
(the size the poll's own lookup reads already send, sources.py). F&O: key filters, per
company, IDS_PER_QUERY keys a query.
N nudges of N distinct rows are about ceil(N / IDS_PER_QUERY) reads, not N. A row the
source no longer returns is a removal, as the flow's ON_DELETE says (lifecycle.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from p2c_core import lifecycle
from p2c_core.envelope import Record
from p2c_core.flow import Dataverse, Flow, id_column
from p2c_core.nudge import Nudge
from p2c_core.outcome import Outcome
from p2c_core.poll import source_records
from p2c_core.sources import IDS_PER_QUERY, DataverseChanges, any_of

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime


def read_rows(rt: Runtime, flow: Flow, nudges: Sequence[Nudge], out: Outcome) -> list[Record]:
    """The records of the rows these nudges (all of `flow`) name, and removals for rows gone."""
    if isinstance(flow.source, Dataverse):
        return _dataverse(rt, flow, nudges, out)
    return _fno(rt, flow, nudges, out)


def _chunks(values: list[str]) -> list[list[str]]:
    return [values[i : i + IDS_PER_QUERY] for i in range(0, len(values), IDS_PER_QUERY)]


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _dataverse(rt: Runtime, flow: Flow, nudges: Sequence[Nudge], out: Outcome) -> list[Record]:
    assert isinstance(flow.source, Dataverse)
    reader = rt.reader(flow)
    assert isinstance(reader, DataverseChanges)
    guids = _unique([n.id.lower() for n in nudges if n.id and not n.line] + _documents_of_lines(rt, flow, nudges))
    column = flow.source.id_column
    select = reader.select()
    select = select if column in select else [*select, column]
    rows: list[dict[str, Any]] = []
    for part in _chunks(guids):
        pages = rt.dataverse.query(flow.source.entity_set, select=select, filter=any_of(column, part))
        rows.extend(r for page in pages for r in page.rows)
    found = {str(r.get(column, "")).lower() for r in rows}
    records = lifecycle.deleted(rt, flow, [g for g in guids if g not in found], out) if len(found) < len(guids) else []
    if rows:
        reader.resolve(rows)  # lookups as natural keys, and the documents' lines
        records += source_records(rt, flow, rows, reader.version_of, out)
    return records


def _documents_of_lines(rt: Runtime, flow: Flow, nudges: Sequence[Nudge]) -> list[str]:
    """The documents of the lines nudged (read from the lines); a line gone names none."""
    lines = flow.lines
    line_ids = _unique([n.id.lower() for n in nudges if n.id and n.line])
    if lines is None or lines.source is None or not line_ids:
        return []
    parent = f"_{lines.source_parent}_value"
    found: list[str] = []
    for part in _chunks(line_ids):
        pages = rt.dataverse.query(lines.source, select=[parent], filter=any_of(id_column(lines.source), part))
        found.extend(str(r[parent]).lower() for page in pages for r in page.rows if r.get(parent))
    return found


def _fno(rt: Runtime, flow: Flow, nudges: Sequence[Nudge], out: Outcome) -> list[Record]:
    reader = rt.reader(flow)
    companies: dict[str | None, list[str]] = {}
    for n in nudges:
        if n.key is not None:
            companies.setdefault(n.company.lower() if n.company else None, []).append(n.key)
    records: list[Record] = []
    for company, keys in companies.items():
        client = rt.fno if company is None else rt.fno_for(company)
        keys = list({k.lower(): k for k in keys}.values())
        rows: list[dict[str, Any]] = []
        for part in _chunks(keys):
            pages = client.query(flow.source.entity_set, select=reader.select(), filter=any_of(flow.source.key, part))
            rows.extend({k: v for k, v in r.items() if not k.startswith("@")} for page in pages for r in page.rows)
        found = {str(r.get(flow.source.key, "")).lower() for r in rows}
        gone = [k for k in keys if k.lower() not in found]
        if gone:
            records += lifecycle.deleted(rt, flow, gone, out)
        if rows:
            reader.add_lines(rows)
            records += source_records(rt, flow, rows, reader.version_of, out)
    return records
