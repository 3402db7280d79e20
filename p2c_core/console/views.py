"""What the console shows, as plain data: flows with their recent counts, failures, one failure.

Nothing here returns a setting's value beyond the services' addresses and the company:
no key, secret or connection string goes to the page.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from p2c_core.console import audit
from p2c_core.flows import all_flows, get_flow

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime
    from p2c_core.state import Run

COUNTS = ("read", "written", "skipped", "failed")
CHART_HOURS = 24


def environment(rt: Runtime) -> dict[str, Any]:
    s = rt.settings
    return {
        "dataverse": urlsplit(s.dataverse_url).netloc,
        "fno": urlsplit(s.fno_url).netloc,
        "company": s.fno_company,
        "flows": [f.name for f in all_flows()],
    }


def _sum(runs: list[Run], since: datetime) -> dict[str, int]:
    out: dict[str, int] = dict.fromkeys(COUNTS, 0)
    stamp = since.isoformat()
    for r in runs:
        if r.started >= stamp:
            for k in COUNTS:
                out[k] += int(r.counts.get(k, 0))
    return out


def _chart(runs: list[Run], end: datetime) -> list[dict[str, Any]]:
    """Per hour of the last day, oldest first: runs, records written and failed."""
    start = end.replace(minute=0, second=0, microsecond=0) - timedelta(hours=CHART_HOURS - 1)
    buckets = [{"hour": (start + timedelta(hours=i)).isoformat(), "runs": 0, "written": 0, "failed": 0}
               for i in range(CHART_HOURS)]  # fmt: skip
    for r in runs:
        index = int((datetime.fromisoformat(r.started) - start).total_seconds() // 3600)
        if 0 <= index < CHART_HOURS:
            b = buckets[index]
            b["runs"] += 1
            b["written"] += int(r.counts.get("written", 0))
            b["failed"] += int(r.counts.get("failed", 0))
    return buckets


def _lag(rt: Runtime, queue: str) -> float | None:
    """How long the oldest waiting change has waited (None: nothing waits)."""
    peeked = list(rt.storage.queue(queue).peek_messages(max_messages=1))
    if not peeked or peeked[0].inserted_on is None:
        return None
    return round((datetime.now(UTC) - peeked[0].inserted_on).total_seconds(), 1)


def flow_view(rt: Runtime, name: str) -> dict[str, Any]:
    from p2c_core.ops import flow_status

    status = flow_status(rt, name)
    end = datetime.now(UTC)
    runs = rt.state.runs(name, since=end - timedelta(days=1))
    last_poll = next((r for r in runs if r.kind == "poll"), None)
    by_setting = rt.settings.flow(name).paused
    return {
        "flow": name,
        "enabled": status.enabled,
        "paused": status.paused,
        "paused_by": "setting" if by_setting else ("operator" if status.paused else None),
        "healthy": status.healthy,
        "cursor": status.cursor,
        "cursor_age_s": status.cursor_age_s,
        "last_poll": last_poll.started if last_poll else status.cursor_updated_at,
        "last_run": status.last_runs[0] if status.last_runs else None,
        "lag_s": _lag(rt, get_flow(name).queue),
        "queued": status.queue_depth,
        "poison": status.poison_depth,
        "failures": status.failures,
        "hour": _sum(runs, end - timedelta(hours=1)),
        "day": _sum(runs, end - timedelta(days=1)),
        "chart": _chart(runs, end),
    }


def flows(rt: Runtime) -> list[dict[str, Any]]:
    return [flow_view(rt, f.name) for f in all_flows()]


def failures(
    rt: Runtime,
    flow: str | None = None,
    company: str | None = None,
    error_class: str | None = None,
    text: str | None = None,
) -> dict[str, Any]:
    """Failure entries filtered; `classes` lists every error class (for the filter's choices)."""
    from p2c_core.ops import failures as all_failures

    rows = all_failures(rt, flow or None)
    classes = sorted({r["error_class"] for r in rows})
    for r in rows:  # the company its key names (P2C_COMPANIES), else the one company
        r["company"] = rt.companies.split(r["source_key"])[0]
    if company:
        rows = [r for r in rows if r["company"] == company.lower()]
    if error_class:
        rows = [r for r in rows if r["error_class"] == error_class]
    if text:
        needle = text.casefold()
        rows = [r for r in rows if needle in r["source_key"].casefold() or needle in r["message"].casefold()]
    return {"failures": rows, "classes": classes, "companies": rt.companies.ids}


def failure(rt: Runtime, flow: str, key: str) -> dict[str, Any] | None:
    """One failure with its record (as it was sent for replay) and its history."""
    entry = next((f for f in rt.state.failures(get_flow(flow).name) if f.source_key == key), None)
    if entry is None:
        return None
    record = json.loads(entry.record) if entry.record else None
    history = [
        {"at": a.at, "actor": a.actor, "action": a.action, "status": a.status}
        for a in audit.history(rt.storage, flow)
        if not a.detail.get("keys") or key in a.detail["keys"]
    ]
    return {
        "flow": entry.flow, "key": entry.source_key, "company": rt.companies.split(entry.source_key)[0],
        "error_class": entry.error_class, "message": entry.message, "status": entry.status,
        "request_id": entry.request_id, "attempt": entry.attempt, "first_seen": entry.first_seen,
        "last_seen": entry.last_seen, "record": record, "history": history,
    }  # fmt: skip
