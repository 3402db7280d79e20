"""Operating a deployment: status, failures, replay and cursor resets, as plain data.

The CLI and the HTTP status function both render these; neither adds logic of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from p2c_core import engine
from p2c_core.clients.keys import literal
from p2c_core.flows import FLOWS, get_flow

if TYPE_CHECKING:
    from p2c_core.flow import Flow
    from p2c_core.runtime import Runtime


@dataclass
class FlowStatus:
    flow: str
    enabled: bool
    paused: bool
    cursor: str  # "none", "scanning", "delta" (a delta link or date watermark), "rescan"
    cursor_updated_at: str | None
    cursor_age_s: float | None
    queue_depth: int
    poison_depth: int
    failures: int
    last_runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        # Every poisoned message also has a failure entry (the source of truth); a poison
        # copy left behind by a record that later succeeded is history, not a fault.
        return self.failures == 0 and not any(r["status"] == "error" for r in self.last_runs[:1])


def _age(stamp: str | None) -> float | None:
    if not stamp:
        return None
    return round((datetime.now(UTC) - datetime.fromisoformat(stamp)).total_seconds(), 1)


def flow_status(rt: Runtime, name: str, runs: int = 5) -> FlowStatus:
    flow = get_flow(name)
    cursor = rt.state.get_cursor(name)
    # "rescan": an F&O scan finished; the next poll reads the set again (and sends changes only).
    kind = (
        "scanning" if cursor.scan_started else ("delta" if cursor.link else ("rescan" if cursor.updated_at else "none"))
    )

    def depth(queue: str) -> int:
        return int(rt.storage.queue(queue).get_queue_properties().approximate_message_count or 0)

    return FlowStatus(
        flow=name,
        enabled=rt.settings.flows.get(name).enabled,
        paused=engine.paused(rt, flow),
        cursor=kind,
        cursor_updated_at=cursor.updated_at,
        cursor_age_s=_age(cursor.updated_at),
        queue_depth=depth(flow.queue),
        poison_depth=depth(flow.poison_queue),
        failures=len(rt.state.failures(name)),
        last_runs=[
            {"kind": r.kind, "started": r.started, "status": r.status, "counts": r.counts, "error": r.error}
            for r in rt.state.runs(name, limit=runs)
        ],
    )


def status(rt: Runtime) -> dict[str, Any]:
    flows = [flow_status(rt, f.name) for f in FLOWS]
    return {
        "healthy": all(f.healthy for f in flows),
        "flows": {f.flow: {**asdict(f), "healthy": f.healthy} for f in flows},
    }


def failures(
    rt: Runtime, flow: str | None = None, error_class: str | None = None, seen_within: timedelta | None = None
) -> list[dict[str, Any]]:
    """Failure entries (without the stored record), filtered by flow, error class and age."""
    rows = rt.state.failures(get_flow(flow).name if flow else None)
    since = None if seen_within is None else (datetime.now(UTC) - seen_within).isoformat()
    return [
        {k: v for k, v in asdict(f).items() if k != "record"}
        for f in rows
        if (error_class is None or f.error_class == error_class) and (since is None or f.last_seen >= since)
    ]


def replay(rt: Runtime, flow: str | None = None, keys: set[str] | None = None) -> dict[str, int]:
    names = [get_flow(flow).name] if flow else [f.name for f in FLOWS]
    return {name: engine.replay(rt, get_flow(name), keys) for name in names}


def set_paused(rt: Runtime, flow: str, paused: bool) -> None:
    """Pause (or resume) a flow: timers read nothing, queued changes wait in the queue."""
    rt.state.set_paused(get_flow(flow).name, paused)


def reset_cursor(rt: Runtime, flow: str, to: datetime | None = None) -> None:
    """Make the next poll read the source again: everything, or what changed since `to`.

    Records whose content did not change are dropped by the key map and write nothing.
    """
    from p2c_core.flow import FinOps
    from p2c_core.sources import SINCE

    chosen = get_flow(flow)
    cursor = rt.state.get_cursor(chosen.name)
    cursor.link = cursor.scan_started = None
    stamp = None if to is None else to.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(chosen.source, FinOps):
        # F&O reads: forget what was sent, so every row in range goes on again; a date
        # source restarts at `to` (less its overlap).
        rt.state.clear_seen(chosen.name)
        if chosen.source.since and stamp:
            cursor.link = f"{SINCE}{stamp}"
    else:
        cursor.watermark = stamp
    rt.state.put_cursor(cursor)


@dataclass
class CheckProblem:
    flow: str
    service: str
    entity_set: str
    name: str
    problem: str
    suggestion: str | None = None

    def __str__(self) -> str:
        hint = f" (did you mean {self.suggestion!r}?)" if self.suggestion else ""
        return f"{self.flow}: {self.service} {self.entity_set}.{self.name}: {self.problem}{hint}"


def check(rt: Runtime, flows: list[Flow] | None = None) -> list[CheckProblem]:
    """Reach both services and check every entity set and field a mapping uses against `$metadata`."""
    from p2c_core import solution_check
    from p2c_core.clients.metadata import nearest, parse_csdl
    from p2c_core.flow import id_column

    metadata = {
        "dataverse": parse_csdl(
            rt.dataverse.odata.request("GET", "$metadata", headers={"Accept": "application/xml"}).content
        ),
        "fno": parse_csdl(rt.fno.odata.request("GET", "$metadata", headers={"Accept": "application/xml"}).content),
    }
    problems: list[CheckProblem] = [
        CheckProblem("p2c solution", "dataverse", entity_set, column, problem)
        for entity_set, column, problem in solution_check.check(
            metadata["dataverse"], lambda path, params: rt.dataverse.odata.request("GET", path, params=params).json()
        )
    ]
    for flow in flows if flows is not None else FLOWS:
        source_cols = set(flow.source_columns())
        target_cols = {flow.target.key, *flow.rules()}
        lookups = flow.lookups()
        for endpoint, columns in ((flow.source, source_cols), (flow.target, target_cols)):
            sets = metadata[endpoint.service]
            es = sets.get(endpoint.entity_set)
            if es is None:
                problems.append(
                    CheckProblem(
                        flow.name,
                        endpoint.service,
                        endpoint.entity_set,
                        "",
                        "entity set not in $metadata",
                        nearest(endpoint.entity_set, set(sets)),
                    )
                )
                continue
            names = set(es.properties) | es.navigation
            for column in sorted(columns):
                # A polymorphic lookup is written through one navigation property per table.
                polymorphic = any(n.startswith(f"{column}_") for n in es.navigation)
                if column not in names and not polymorphic:
                    problems.append(
                        CheckProblem(
                            flow.name, endpoint.service, es.name, column, "not a property", nearest(column, names)
                        )
                    )
        for rule in lookups:
            for entity_set, returns in rule.to.items():
                ref = metadata["dataverse"].get(entity_set)
                if ref is None:
                    problems.append(
                        CheckProblem(
                            flow.name,
                            "dataverse",
                            entity_set,
                            "",
                            "entity set not in $metadata",
                            nearest(entity_set, set(metadata["dataverse"])),
                        )
                    )
                    continue
                for column in (id_column(entity_set), returns):
                    if column not in ref.properties:
                        problems.append(
                            CheckProblem(
                                flow.name,
                                "dataverse",
                                ref.name,
                                column,
                                "not a property",
                                nearest(column, set(ref.properties)),
                            )
                        )
    return problems


@dataclass
class PlannedChange:
    key: str
    action: str  # "create" | "update" | "unchanged" | "skip" | "fail"
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # name -> (target now, after sync)
    reason: str | None = None


def _same(now: Any, new: Any) -> bool:
    if isinstance(now, int | float) and isinstance(new, int | float) and not isinstance(new, bool):
        return float(now) == float(new)
    return now == new


def plan(rt: Runtime, flow_name: str, limit: int | None = None) -> list[PlannedChange]:
    """A dry run: what the next sync of the flow would write, field by field. Writes nothing.

    Lookups show as the target stores them (`_x_value` GUIDs in Sales); a record whose
    customer or product is not in the target yet shows as `wait`.
    """
    from p2c_core.errors import DependencyMissing, MappingError

    flow = get_flow(flow_name)
    cursor = rt.state.get_cursor(flow.name)
    reader = rt.reader(flow)
    out: list[PlannedChange] = []
    for page in reader.pages(cursor.link):
        for row in page.rows:
            if limit is not None and len(out) >= limit:
                return out
            key = row.get(flow.source.key)
            if flow.source.where is not None and not flow.source.where.matches(row):
                continue
            if not isinstance(key, str) or not key.strip():
                out.append(PlannedChange(str(key), "fail", reason=f"no {flow.source.key}"))
                continue
            try:
                want = _expected(rt, flow, key, row)
                create_only = rt.mapper.map(flow, key, row)[1]
            except MappingError as exc:
                out.append(PlannedChange(key, "fail", reason=str(exc)))
                continue
            except DependencyMissing as exc:
                out.append(PlannedChange(key, "wait", reason=str(exc)))
                continue
            current = _target_rows(rt, flow, _select(flow, [want]), f"{flow.target.key} eq {literal(key)}")
            now = current.get(key.casefold())
            if now is None:
                out.append(
                    PlannedChange(key, "create", {k: (None, v) for k, v in {**want.header, **create_only}.items()})
                )
                continue
            diff = {k: (now.get(k), v) for k, v in want.header.items() if not _same(now.get(k), v)}
            if flow.create_only:
                out.append(PlannedChange(key, "skip", reason="created before; the target owns it now"))
                continue
            out.append(PlannedChange(key, "update" if diff else "unchanged", diff))
    return out


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

    def counts(self) -> dict[str, int]:
        return {
            "source": self.source_records, "target": self.target_records, "missing": len(self.missing),
            "extra": len(self.extra), "differing": len(self.differing), "unmappable": len(self.unmappable),
            "repaired": self.repaired,
        }  # fmt: skip


def reconcile(rt: Runtime, flow_name: str, *, repair: bool = False) -> Drift:
    """Compare both sides by natural key, documents line by line; optionally enqueue the
    source version of each drifted record (forced: it is written even if the key map
    says it was)."""
    from p2c_core.envelope import Record, chunk
    from p2c_core.errors import DependencyMissing, MappingError

    flow = get_flow(flow_name)
    drift = Drift(flow=flow.name)
    reader = rt.reader(flow)
    expected: dict[str, Comparable] = {}
    rows: dict[str, dict[str, Any]] = {}
    for page in reader.snapshot():
        for row in page:
            key = row.get(flow.source.key)
            if not isinstance(key, str) or not key.strip():
                continue
            drift.source_records += 1
            try:
                expected[key] = _expected(rt, flow, key, row)
                rows[key] = row
            except (MappingError, DependencyMissing) as exc:
                drift.unmappable[key] = str(exc)
    actual = _target_rows(rt, flow, _select(flow, expected.values()))
    lines = _target_lines(rt, flow, actual) if flow.lines is not None else {}
    drift.target_records = len(actual)
    for key, want in sorted(expected.items()):
        current = actual.get(key.casefold())
        if current is None:
            drift.missing.append(key)
            continue
        diff = {k: (current.get(k), v) for k, v in want.header.items() if not _same(current.get(k), v)}
        if want.lines is not None:
            diff.update(_line_diff(want.lines, lines.get(key.casefold(), {})))
        if diff:
            drift.differing[key] = diff
    if flow.owned is not None:
        source_keys = {k.casefold() for k in [*expected, *drift.unmappable]}
        owned = _target_rows(rt, flow, [flow.target.key], flow.owned.odata())
        drift.target_records = len(owned)  # the records this flow maintains, not the target's own
        drift.extra = sorted(str(r[flow.target.key]) for k, r in owned.items() if k not in source_keys)
    if repair:
        todo = [*drift.missing, *drift.differing]
        records = [
            engine.fit_message(
                flow,
                Record(
                    key=k,
                    version=reader.version_of(rows[k]),
                    data={c: v for c, v in rows[k].items() if not c.startswith("@")},
                    force=True,
                ),
            )
            for k in todo
        ]
        queue = rt.storage.queue(flow.queue)
        for envelope in chunk(flow.name, records, rt.settings.chunk_size):
            queue.send_message(envelope.to_json().encode())
        drift.repaired = len(records)
    return drift


@dataclass
class Comparable:
    """A record as the target should hold it: column -> value, lines by their identity."""

    header: dict[str, Any]
    lines: dict[Any, dict[str, Any]] | None


def _columns_of(rt: Runtime, flow: Flow, payload: dict[str, Any]) -> dict[str, Any]:
    """Resolved target values by the column the target reads back (`_x_value` for lookups)."""
    resolved = rt.references.resolve(flow, payload)
    out: dict[str, Any] = {}
    for name in payload:
        if name in resolved:
            out[name] = resolved[name]
            continue
        for written, value in resolved.items():  # an @odata.bind: compare the lookup's GUID
            if written.endswith("@odata.bind") and (written == f"{name}@odata.bind" or written.startswith(f"{name}_")):
                out[f"_{name}_value"] = _bound(value)
    return out


def _expected(rt: Runtime, flow: Flow, key: str, row: dict[str, Any]) -> Comparable:
    payload, _ = rt.mapper.map(flow, key, row)
    header = _columns_of(rt, flow, payload)
    mapped_lines = rt.mapper.map_lines(flow, row)
    if mapped_lines is None or flow.lines is None:
        return Comparable(header, None)
    lines: dict[Any, dict[str, Any]] = {}
    for line in mapped_lines:
        columns = _columns_of(rt, flow, line.payload)
        identity = line.key if flow.lines.target_key else tuple(columns.get(f"_{c}_value") for c in flow.lines.match)
        lines[_norm_id(identity)] = columns
    return Comparable(header, lines)


def _bound(path: Any) -> str | None:
    if not isinstance(path, str) or "(" not in path:
        return None
    return path.rsplit("(", 1)[1].rstrip(")").lower()


def _norm_id(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_norm_id(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return str(value).lower() if isinstance(value, str) else value


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
    for identity, columns in want.items():
        row = have.get(identity)
        if row is None:
            diff[f"line {identity}"] = (None, "present")
            continue
        for k, v in columns.items():
            if not _same(row.get(k), v):
                diff[f"line {identity}.{k}"] = (row.get(k), v)
    for identity in have.keys() - want.keys():
        diff[f"line {identity}"] = ("present", None)
    return diff


def _target_lines(rt: Runtime, flow: Flow, headers: dict[str, dict[str, Any]]) -> dict[str, dict[Any, dict[str, Any]]]:
    """Target lines grouped by their document's key (casefolded), then by line identity."""
    from p2c_core.flow import id_column

    spec = flow.lines
    assert spec is not None
    out: dict[str, dict[Any, dict[str, Any]]] = {}
    if flow.target.service == "fno":
        for page in rt.fno.query(spec.target, select=_line_columns(flow)):
            for row in page.rows:
                doc = str(row.get(spec.target_parent)).casefold()
                out.setdefault(doc, {})[_norm_id(row.get(spec.target_key or ""))] = row
        return out
    by_guid = {str(r.get(id_column(flow.target.entity_set))).lower(): k for k, r in headers.items()}
    parent = f"_{spec.target_parent}_value"
    mine = spec.owned.odata() if spec.owned else None
    for page in rt.dataverse.query(spec.target, select=[parent, *_line_columns(flow)], filter=mine):
        for row in page.rows:
            doc = by_guid.get(str(row.get(parent)).lower())
            if doc is None:
                continue
            if spec.target_key:
                identity = _norm_id(row.get(spec.target_key))
            else:
                identity = _norm_id(tuple(row.get(f"_{c}_value") for c in spec.match))
            out.setdefault(doc, {})[identity] = row
    return out


def _line_columns(flow: Flow) -> list[str]:
    from p2c_core.flow import Bind, PriceList, Ref

    spec = flow.lines
    assert spec is not None
    cols = [spec.target_parent] if flow.target.service == "fno" else []
    if spec.target_key:
        cols.append(spec.target_key)
    extra = spec.header_line.fields if spec.header_line is not None else {}
    for name, rule in {**spec.fields, **extra}.items():
        reference = isinstance(rule, Ref | Bind | PriceList) and flow.target.service == "dataverse"
        cols.append(f"_{name}_value" if reference else name)
    return list(dict.fromkeys(cols))


def _target_rows(rt: Runtime, flow: Flow, select: list[str], filter: str | None = None) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    pages = (
        rt.fno.query(flow.target.entity_set, select=select, filter=filter)
        if flow.target.service == "fno"
        else rt.dataverse.query(flow.target.entity_set, select=select, filter=filter)
    )
    for page in pages:
        for row in page.rows:
            out[str(row.get(flow.target.key)).casefold()] = row
    return out
