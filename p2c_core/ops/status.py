"""Operator controls: status, failures, replay, pause and cursor resets, as plain data.

The CLI and the HTTP functions both render these; neither adds logic of its own.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from p2c_core import engine, routing
from p2c_core.flows import all_flows, get_flow

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime


@dataclass
class FlowStatus:
    flow: str
    enabled: bool
    paused: bool
    # Why: an auto-pause says so; None for an operator's pause (or a setting).
    paused_reason: str | None
    cursor: str  # "none", "scanning", "delta" (a delta link or date watermark), "rescan"
    cursor_updated_at: str | None
    cursor_age_s: float | None
    queue_depth: int
    poison_depth: int
    failures: int
    # What a source row deleted or deactivated does (P2C_FLOWS__<FLOW>__ON_DELETE), and how
    # many were seen in the last day: with `ignore` too, so a removal is never silent.
    on_delete: str = "ignore"
    removed_24h: int = 0
    # Source rows outside every mapped business unit / company (P2C_COMPANIES) in the last day:
    # skipped, not failed, and counted here so that none is silent.
    outside_24h: int = 0
    outside_reason: str | None = None
    last_runs: list[dict[str, Any]] = field(default_factory=list)
    # p2c.lag of the newest apply that wrote (s): source change (pushed) or enqueue (polled) to write.
    lag_s: float | None = None

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

    polls = [r for r in rt.state.runs(name, since=datetime.now(UTC) - timedelta(days=1), limit=500) if r.kind == "poll"]
    outside = sum(r.counts.get("outside", 0) for r in polls)

    def depth(queue: str) -> int:
        return int(rt.storage.queue(queue).get_queue_properties().approximate_message_count or 0)

    recent = rt.state.runs(name, limit=max(runs, 50))
    lags = [r.counts["lag_ms"] for r in recent if r.counts.get("lag_ms") is not None]
    return FlowStatus(
        lag_s=lags[0] / 1000 if lags else None,
        flow=name,
        enabled=rt.settings.flow(name).enabled,
        paused=engine.paused(rt, flow),
        paused_reason=rt.state.pause(name).get("reason"),
        cursor=kind,
        cursor_updated_at=cursor.updated_at,
        cursor_age_s=_age(cursor.updated_at),
        queue_depth=depth(flow.queue),
        poison_depth=depth(flow.poison_queue),
        failures=len(rt.state.failures(name)),
        on_delete=rt.settings.flow(name).on_delete,
        removed_24h=sum(r.counts.get("removed", 0) for r in polls),
        outside_24h=outside,
        outside_reason=routing.outside_note(rt.companies) if outside else None,
        last_runs=[
            {"kind": r.kind, "started": r.started, "status": r.status, "counts": r.counts, "error": r.error}
            for r in recent[:runs]
        ],
    )


def status(rt: Runtime) -> dict[str, Any]:
    flows = [flow_status(rt, f.name) for f in all_flows()]
    return {
        "healthy": all(f.healthy for f in flows),
        # The legal entities served (P2C_COMPANIES; the one P2C_FNO_COMPANY otherwise).
        "companies": rt.companies.ids,
        "flows": {f.flow: {**asdict(f), "healthy": f.healthy} for f in flows},
    }


def failures(
    rt: Runtime, flow: str | None = None, error_class: str | None = None, seen_within: timedelta | None = None
) -> list[dict[str, Any]]:
    """Failure entries (without the stored record), filtered by flow, error class and age."""
    rows = rt.state.failures(get_flow(flow).name if flow else None)
    since = None if seen_within is None else (datetime.now(UTC) - seen_within).isoformat()
    return [
        {**{k: v for k, v in asdict(f).items() if k != "record"}, **_company(rt, f.source_key)}
        for f in rows
        if (error_class is None or f.error_class == error_class) and (since is None or f.last_seen >= since)
    ]


def _company(rt: Runtime, key: str) -> dict[str, str]:
    """The legal entity a stored key names, with several companies (keys `company|key`)."""
    return {} if rt.companies.routing == "single" else {"company": rt.companies.split(key)[0]}


def replay(rt: Runtime, flow: str | None = None, keys: set[str] | None = None) -> dict[str, int]:
    names = [get_flow(flow).name] if flow else [f.name for f in all_flows()]
    return {name: engine.replay(rt, get_flow(name), keys) for name in names}


def set_paused(rt: Runtime, flow: str, paused: bool) -> None:
    """Pause (or resume) a flow: timers read nothing, queued changes wait in the queue."""
    rt.state.set_paused(get_flow(flow).name, paused, reason=None)


def reset_cursor(rt: Runtime, flow: str, to: datetime | None = None) -> None:
    """Make the next poll read the source again: everything, or what changed since `to`.

    Records whose content did not change are dropped by the key map and write nothing.
    """
    from p2c_core.company_reads import read_companies, state_scope
    from p2c_core.flow import FinOps
    from p2c_core.sources import SINCE

    chosen = get_flow(flow)
    companies = rt.companies
    for company in read_companies(companies, chosen):  # an F&O source: each company's read
        scope = state_scope(companies, company)
        cursor = rt.state.get_cursor(chosen.name, scope)
        cursor.link = cursor.scan_started = None
        stamp = None if to is None else to.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        if isinstance(chosen.source, FinOps):
            # F&O reads: forget what was sent, so every row in range goes on again; a date
            # source restarts at `to` (less its overlap).
            rt.state.clear_seen(chosen.name, scope)
            if chosen.source.since and stamp:
                cursor.link = f"{SINCE}{stamp}"
        else:
            cursor.watermark = stamp
        rt.state.put_cursor(cursor)
