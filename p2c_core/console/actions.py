"""The console's actions, each recorded (who, what, when) before it answers; and the
read-only previews (`plan`, `reconcile`) on request."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from p2c_core import ops
from p2c_core.console import audit
from p2c_core.flows import get_flow

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

Body = dict[str, Any]


def _flow(body: Body) -> str:
    name = body.get("flow")
    if not isinstance(name, str):
        raise ValueError("flow must be a flow's name")
    return get_flow(name).name


def _done(rt: Runtime, actor: str, action: str, flow: str | None, detail: Body) -> Body:
    entry = audit.record(rt.storage, audit.Action(actor=actor, action=action, flow=flow, detail=detail))
    return {"action": action, "flow": flow, **detail, "by": actor, "at": entry.at}


def replay(rt: Runtime, body: Body, actor: str) -> Body:
    """`{"flow": F}` replays all of a flow, `{"flow": F, "keys": [...]}` the selected ones."""
    flow = _flow(body)
    keys = body.get("keys")
    if keys is not None and not (isinstance(keys, list) and keys and all(isinstance(k, str) for k in keys)):
        raise ValueError("keys must be a non-empty list of strings")
    counts = ops.replay(rt, flow, set(keys) if keys else None)
    return _done(rt, actor, "replay", flow, {"keys": keys, "replayed": counts[flow]})


def pause(rt: Runtime, body: Body, actor: str) -> Body:
    flow = _flow(body)
    ops.set_paused(rt, flow, True)
    return _done(rt, actor, "pause", flow, {"paused": True})


def resume(rt: Runtime, body: Body, actor: str) -> Body:
    flow = _flow(body)
    ops.set_paused(rt, flow, False)
    still = rt.settings.flow(flow).paused
    return _done(rt, actor, "resume", flow, {"paused": still, **({"note": "paused by app setting"} if still else {})})


def reset_cursor(rt: Runtime, body: Body, actor: str) -> Body:
    """`{"flow": F}` re-reads everything; `{"flow": F, "since": ISO time}` what changed since."""
    flow = _flow(body)
    since = body.get("since")
    when = None
    if since:
        when = datetime.fromisoformat(str(since))
        when = when if when.tzinfo else when.replace(tzinfo=UTC)
    ops.reset_cursor(rt, flow, when)
    return _done(rt, actor, "reset-cursor", flow, {"since": when.isoformat() if when else None})


ACTIONS: dict[str, Callable[[Runtime, Body, str], Body]] = {
    "replay": replay,
    "pause": pause,
    "resume": resume,
    "reset-cursor": reset_cursor,
}


def history(rt: Runtime, flow: str | None) -> list[Body]:
    return [asdict(a) for a in audit.history(rt.storage, get_flow(flow).name if flow else None)]


def plan(rt: Runtime, flow: str, limit: int) -> Body:
    changes = ops.plan(rt, get_flow(flow).name, max(1, min(limit, 200)))
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    shown = [
        {"key": c.key, "action": c.action, "reason": c.reason,
         "fields": {k: {"now": a, "after": b} for k, (a, b) in c.fields.items()}}
        for c in changes if c.action != "unchanged"
    ]  # fmt: skip
    return {"flow": flow, "counts": counts, "changes": shown}


def reconcile(rt: Runtime, flow: str, sample: int = 20) -> Body:
    drift = ops.reconcile(rt, get_flow(flow).name)
    return {
        "flow": drift.flow, "counts": drift.counts(), "missing": drift.missing[:sample],
        "extra": drift.extra[:sample], "unmappable": dict(list(drift.unmappable.items())[:sample]),
        "differing": {k: {f: {"target": a, "source": b} for f, (a, b) in v.items()}
                      for k, v in list(drift.differing.items())[:sample]},
    }  # fmt: skip
