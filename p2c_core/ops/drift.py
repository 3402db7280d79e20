"""Drift between the two sides: `plan` (what the next sync would write, field by field) and
`reconcile` (both sides compared by natural key, documents line by line).

Equal means what the writer takes as equal (`p2c_core.compare`), so neither reports a
difference the writer would not write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from p2c_core import engine, routing
from p2c_core.clients.keys import literal
from p2c_core.company_reads import owned_here, read_companies, reader_for
from p2c_core.compare import bound_id, identity, same

if TYPE_CHECKING:
    from p2c_core.flow import Flow
    from p2c_core.runtime import Runtime


@dataclass
class PlannedChange:
    key: str
    action: str  # "create" | "update" | "unchanged" | "skip" | "fail"
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (target now, after sync)
    reason: str | None = None
    # The legal entity it goes to (P2C_COMPANIES; None with one company); `key` is then `company|key`.
    company: str | None = None


def _same(column: str, now: Any, new: Any) -> bool:
    """The writer's own notion of equal; a lookup's GUID whatever its case."""
    if column.startswith("_") and column.endswith("_value"):
        return same(identity(now), identity(new))
    return same(now, new)


def plan(rt: Runtime, flow_name: str, limit: int | None = None) -> list[PlannedChange]:
    """A dry run: what the next sync of the flow would write, field by field. Writes nothing.

    Lookups show as the target stores them (`_x_value` GUIDs in Sales); a record whose
    customer or product is not in the target yet shows as `wait`.
    """
    flow = rt.flow(flow_name)
    cursor = rt.state.get_cursor(flow.name)
    reader = rt.reader(flow)
    out: list[PlannedChange] = []
    from p2c_core.poll import columns_changed

    # As the next poll would: from the start when the flow now reads other columns.
    link = None if columns_changed(flow, cursor, reader) else cursor.link
    routes = routing.routes(rt.companies, flow)
    for page in reader.pages(link):
        for row in page.rows:
            if limit is not None and len(out) >= limit:
                return out
            key = row.get(flow.source.key)
            company = routing.company_of_row(rt.companies, row) if routes else None
            if routes and company is None:
                out.append(PlannedChange(str(key), "skip", reason=routing.outside_reason(rt.companies, row)))
                continue
            where = rt.company_flow(flow, company).source.where if company else flow.source.where
            if where is not None and not where.matches(row):
                continue
            if not isinstance(key, str) or not key.strip():
                out.append(PlannedChange(str(key), "fail", reason=f"no {flow.source.key}", company=company))
                continue
            out.append(_planned(rt, flow, key, row, company))
    return out


def _planned(rt: Runtime, flow: Flow, key: str, row: dict[str, Any], company: str | None) -> PlannedChange:
    """What the next sync would write for one source row (of `company`, None with one)."""
    from p2c_core.errors import DependencyMissing, MappingError

    stored = key if company is None else rt.companies.qualified(company, key)
    try:
        want = _expected(rt, flow, key, row, company)
        create_only = rt.mapper.map(rt.company_flow(flow, company), key, row, company)[1]
    except MappingError as exc:
        return PlannedChange(stored, "fail", reason=str(exc), company=company)
    except DependencyMissing as exc:
        return PlannedChange(stored, "wait", reason=str(exc), company=company)
    current = _target_rows(rt, flow, _select(flow, [want]), f"{flow.target.key} eq {literal(key)}", company)
    now = current.get(key.casefold())
    if now is None:
        changes = {k: (None, v) for k, v in {**want.header, **create_only}.items()}
        return PlannedChange(stored, "create", changes, company=company)
    diff = {k: (now.get(k), v) for k, v in want.header.items() if not _same(k, now.get(k), v)}
    if flow.create_only:
        return PlannedChange(stored, "skip", reason="created before; the target owns it now", company=company)
    return PlannedChange(stored, "update" if diff else "unchanged", diff, company=company)


@dataclass
class Drift:
    flow: str
    source_records: int = 0
    target_records: int = 0
    missing: list[str] = field(default_factory=list)  # in the source, not in the target
    extra: list[str] = field(default_factory=list)  # maintained by p2c in the target, gone from the source
    differing: dict[str, dict[str, tuple[Any, Any]]] = field(default_factory=dict)  # key -> field -> (target, source)
    unmappable: dict[str, str] = field(default_factory=dict)
    repaired: int = 0
    # Source rows outside every mapped business unit / company (P2C_COMPANIES): not compared.
    outside: int = 0

    def counts(self) -> dict[str, int]:
        return {
            "source": self.source_records, "target": self.target_records, "missing": len(self.missing),
            "extra": len(self.extra), "differing": len(self.differing), "unmappable": len(self.unmappable),
            "repaired": self.repaired, **({"outside": self.outside} if self.outside else {}),
        }  # fmt: skip


def reconcile(rt: Runtime, flow_name: str, *, repair: bool = False) -> Drift:
    """Compare both sides by natural key, documents line by line; optionally enqueue the
    source version of each drifted record (forced: it is written even if the key map
    says it was)."""
    flow = rt.flow(flow_name)
    drift = Drift(flow=flow.name)
    reader = rt.reader(flow)
    routes = routing.routes(rt.companies, flow)
    # An F&O source is read per company (company_reads.py); its Sales target is one table.
    read_froms = read_companies(rt.companies, flow)
    # Keys as stored (`company|key` with several companies), each company compared with its own.
    expected: dict[str | None, dict[str, Comparable]] = {}
    rows: dict[str, dict[str, Any]] = {}
    companies: dict[str, str | None] = {}
    for read_from in read_froms:
        snapshot = reader_for(rt, flow, read_from).snapshot() if read_from else reader.snapshot()
        for page in snapshot:
            _take(rt, flow, drift, owned_here(rt, flow, read_from, page), read_from, expected, rows, companies)
    if routes:  # each company's F&O records against its own Sales rows
        for company in rt.companies.ids:
            _compare(rt, flow, drift, company, expected.get(company, {}))
    elif len(read_froms) > 1:  # every company's records in one Sales table
        everyone = {k.casefold() for keys in expected.values() for k in keys}
        everyone |= {rt.companies.split(k)[1].casefold() for k in drift.unmappable}
        for i, company in enumerate(read_froms):
            _compare(rt, flow, drift, company, expected.get(company, {}), shared=everyone, first=i == 0)
    else:
        _compare(rt, flow, drift, None, expected.get(None, {}))
    if repair:
        keys = [*drift.missing, *drift.differing]
        drift.repaired = _repair(rt, flow, keys, rows, companies, reader.version_of)
    return drift


def _take(
    rt: Runtime,
    flow: Flow,
    drift: Drift,
    page: list[dict[str, Any]],
    read_from: str | None,
    expected: dict[str | None, dict[str, Comparable]],
    rows: dict[str, dict[str, Any]],
    companies: dict[str, str | None],
) -> None:
    """One snapshot page into what `reconcile` compares (`read_from`: an F&O source's company)."""
    from p2c_core.errors import DependencyMissing, MappingError

    routes = routing.routes(rt.companies, flow)
    for row in page:
        key = row.get(flow.source.key)
        if not isinstance(key, str) or not key.strip():
            continue
        company = routing.company_of_row(rt.companies, row) if routes else read_from
        if routes and company is None:
            drift.outside += 1  # not p2c's to sync
            continue
        where = rt.company_flow(flow, company).source.where if company else None
        if where is not None and not where.matches(row):  # the overlay's filter for this company
            continue
        drift.source_records += 1
        stored = key if company is None else rt.companies.qualified(company, key)
        try:
            expected.setdefault(company, {})[key] = _expected(rt, flow, key, row, company)
            rows[stored], companies[stored] = row, company
        except (MappingError, DependencyMissing) as exc:
            drift.unmappable[stored] = str(exc)


def _compare(
    rt: Runtime,
    flow: Flow,
    drift: Drift,
    company: str | None,
    expected: dict[str, Comparable],
    *,
    shared: set[str] | None = None,
    first: bool = True,
) -> None:
    """One company's side of `reconcile`: its target records against what its source rows map to.
    `shared`: the target is one table for every company (an F&O source's Sales rows), whose
    rows are counted, and checked against every company's source keys, once (`first`)."""

    def stored(key: str) -> str:
        return key if company is None else rt.companies.qualified(company, key)

    actual = _target_rows(rt, flow, _select(flow, expected.values()), None, company)
    lines = _target_lines(rt, flow, actual, company) if flow.lines is not None else {}
    for key, want in sorted(expected.items()):
        current = actual.get(key.casefold())
        if current is None:
            drift.missing.append(stored(key))
            continue
        diff = {k: (current.get(k), v) for k, v in want.header.items() if not _same(k, current.get(k), v)}
        if want.lines is not None:
            diff.update(_line_diff(want.lines, lines.get(key.casefold(), {})))
        if diff:
            drift.differing[stored(key)] = diff
    if not first:
        return
    if flow.owned is None:
        drift.target_records += len(actual)
        return
    unmappable = [k for c, k in map(rt.companies.split, drift.unmappable) if company is None or c == company]
    source_keys = shared if shared is not None else {k.casefold() for k in [*expected, *unmappable]}
    owned = _target_rows(rt, flow, [flow.target.key], flow.owned.odata(), company)
    drift.target_records += len(owned)  # the records this flow maintains, not the target's own
    drift.extra += sorted(stored(str(r[flow.target.key])) for k, r in owned.items() if k not in source_keys)


def _repair(
    rt: Runtime,
    flow: Flow,
    keys: list[str],
    rows: dict[str, dict[str, Any]],
    companies: dict[str, str | None],
    version_of: Any,
) -> int:
    """Enqueue the source version of each drifted record, forced: written even if the key map
    says it was. Returns how many."""
    from p2c_core.envelope import Record, chunk

    records = [
        engine.fit_message(
            flow,
            Record(
                key=k,
                version=version_of(rows[k]),
                data={c: v for c, v in rows[k].items() if not c.startswith("@")},
                force=True,
                company=companies.get(k),
            ),
        )
        for k in keys
    ]
    from p2c_core.signing import seal

    queue = rt.storage.queue(flow.queue)
    rt.versions.note(flow, (r.version for r in records))  # read from the source just now
    for envelope in chunk(flow.name, records, rt.settings.chunk_size):
        queue.send_message(seal(envelope, rt.signing_key))
    return len(records)


@dataclass
class Comparable:
    """A record as the target should hold it: column -> value, lines by their identity."""

    header: dict[str, Any]
    lines: dict[Any, dict[str, Any]] | None


def _columns_of(rt: Runtime, flow: Flow, payload: dict[str, Any], company: str | None = None) -> dict[str, Any]:
    """Resolved target values by the column the target reads back (`_x_value` for lookups)."""
    from p2c_core.rules import Reference

    service = flow.target.service
    resolver = rt.references.within(company)
    out: dict[str, Any] = {}
    for name, value in payload.items():
        if not isinstance(value, Reference):
            out[name] = value
            continue
        ((written, resolved),) = value.rule.resolve(name, value.value, resolver, service).items()
        column = value.rule.read_back(name, service)
        out[column] = bound_id(resolved) if written.endswith("@odata.bind") else resolved
    return out


def _expected(rt: Runtime, flow: Flow, key: str, row: dict[str, Any], company: str | None = None) -> Comparable:
    mapped = rt.company_flow(flow, company) if company else flow
    payload, _ = rt.mapper.map(mapped, key, row, company)
    header = _columns_of(rt, flow, payload, company)
    mapped_lines = rt.mapper.map_lines(mapped, row, company)
    if mapped_lines is None or flow.lines is None:
        return Comparable(header, None)
    lines: dict[Any, dict[str, Any]] = {}
    for line in mapped_lines:
        columns = _columns_of(rt, flow, line.payload, company)
        ident = line.key if flow.lines.target_key else tuple(columns.get(f"_{c}_value") for c in flow.lines.match)
        lines[identity(ident)] = columns
    return Comparable(header, lines)


def _select(flow: Flow, wanted: Any) -> list[str]:
    cols: list[str] = [flow.target.key]
    if flow.target.service == "dataverse":
        from p2c_core.flow import id_column

        cols.append(id_column(flow.target.entity_set))
    for item in wanted:
        cols.extend(item.header)
    return list(dict.fromkeys(cols)) or [flow.target.key]


def _line_diff(want: dict[Any, dict[str, Any]], have: dict[Any, dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    diff: dict[str, tuple[Any, Any]] = {}
    for ident, columns in want.items():
        row = have.get(ident)
        if row is None:
            diff[f"line {ident}"] = (None, "present")
            continue
        for k, v in columns.items():
            if not _same(k, row.get(k), v):
                diff[f"line {ident}.{k}"] = (row.get(k), v)
    for ident in have.keys() - want.keys():
        diff[f"line {ident}"] = ("present", None)
    return diff


def _target_lines(
    rt: Runtime, flow: Flow, headers: dict[str, dict[str, Any]], company: str | None = None
) -> dict[str, dict[Any, dict[str, Any]]]:
    """Target lines grouped by their document's key (casefolded), then by line identity."""
    from p2c_core.flow import id_column

    spec = flow.lines
    assert spec is not None
    out: dict[str, dict[Any, dict[str, Any]]] = {}
    if flow.target.service == "fno":
        for page in rt.fno_for(company).query(spec.target, select=_line_columns(flow)):
            for row in page.rows:
                doc = str(row.get(spec.target_parent)).casefold()
                out.setdefault(doc, {})[identity(row.get(spec.target_key or ""))] = row
        return out
    by_guid = {str(r.get(id_column(flow.target.entity_set))).lower(): k for k, r in headers.items()}
    parent = f"_{spec.target_parent}_value"
    mine = spec.owned.odata() if spec.owned else None  # not the P2C solution's Freight Tax line
    for page in rt.dataverse.query(spec.target, select=[parent, *_line_columns(flow)], filter=mine):
        for row in page.rows:
            doc = by_guid.get(str(row.get(parent)).lower())
            if doc is None:
                continue
            if spec.target_key:
                ident = identity(row.get(spec.target_key))
            else:
                ident = identity(tuple(row.get(f"_{c}_value") for c in spec.match))
            out.setdefault(doc, {})[ident] = row
    return out


def _line_columns(flow: Flow) -> list[str]:
    spec = flow.lines
    assert spec is not None
    service = flow.target.service
    cols = [spec.target_parent] if service == "fno" else []
    if spec.target_key:
        cols.append(spec.target_key)
    extra = spec.header_line.fields if spec.header_line is not None else {}
    cols += [rule.read_back(name, service) for name, rule in {**spec.fields, **extra}.items()]
    return list(dict.fromkeys(cols))


def _target_rows(
    rt: Runtime, flow: Flow, select: list[str], filter: str | None = None, company: str | None = None
) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    pages = (
        rt.fno_for(company).query(flow.target.entity_set, select=select, filter=filter)
        if flow.target.service == "fno"
        else rt.dataverse.query(flow.target.entity_set, select=select, filter=filter)
    )
    for page in pages:
        for row in page.rows:
            out[str(row.get(flow.target.key)).casefold()] = row
    return out
