"""What the registered Azure Functions call: one line each in function_app.py.

Imported lazily from inside the function bodies, so a cold start that only indexes
functions pays for none of this.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from p2c_core import engine, telemetry
from p2c_core.errors import P2CError
from p2c_core.runtime import get_runtime
from p2c_core.state import Failure

log = logging.getLogger("p2c.functions")


def run_poll(flow_name: str) -> engine.Outcome:
    telemetry.configure()
    rt = get_runtime()
    return engine.poll(rt, rt.flow(flow_name))


def run_apply(
    flow_name: str,
    body: bytes,
    *,
    message_id: str | None,
    last_attempt: bool,
    bind_thread: Callable[[], None] | None = None,
) -> engine.Outcome:
    """Apply one message; on its last delivery, an unexpected error is recorded first.

    The host moves a message that keeps failing to `<queue>-poison` by itself; the
    failure entry written here makes that visible and replayable too (invariant 6).
    `bind_thread` claims a worker thread's logs for this invocation (telemetry.invocation).
    """
    telemetry.configure()
    rt = get_runtime()
    flow = rt.flow(flow_name)
    try:
        with telemetry.invocation(bind_thread):
            return engine.apply(rt, flow, body)
    except Exception as exc:
        if last_attempt:
            rt.state.record_failure(
                Failure(
                    flow=flow_name,
                    source_key=f"message-{message_id or 'unknown'}",
                    attempt=0,
                    error_class=exc.error_class if isinstance(exc, P2CError) else type(exc).__name__,
                    message=f"message failed on its last delivery and goes to {flow.poison_queue}: {exc}",
                    status=getattr(exc, "status", None),
                    request_id=getattr(exc, "request_id", None),
                )
            )
        raise


def _json(status: int, body: object) -> dict[str, Any]:
    return {"body": json.dumps(body, default=str), "status_code": status, "mimetype": "application/json"}


def http_status() -> dict[str, Any]:
    """The `status` report; 503 when unhealthy, so a plain HTTP probe can alert on it."""
    from p2c_core import ops

    report = ops.status(get_runtime())
    return _json(200 if report["healthy"] else 503, report)


def http_replay(body: bytes) -> dict[str, Any]:
    """Replay failures; the body is read by `replay_request.parse` (limits, no echo)."""
    from p2c_core import ops
    from p2c_core.flows import all_flows
    from p2c_core.replay_request import BadReplayRequest, parse

    try:
        request = parse(body, tuple(f.name for f in all_flows()))
    except BadReplayRequest as exc:
        return _json(exc.status, {"error": str(exc)})
    counts = ops.replay(get_runtime(), request.flow, set(request.keys) if request.keys is not None else None)
    return _json(200, {"replayed": counts})


def http_events(service: str, body: bytes, params: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
    """A pushed event (Dataverse webhook, F&O data event): nudges enqueued, or why not (events.py)."""
    from p2c_core import events

    telemetry.configure()
    return events.receive(get_runtime(), service, body, params, headers)


def run_nudge(body: bytes, bind_thread: Callable[[], None] | None = None) -> engine.Outcome | None:
    """Read the row a nudge names and apply it like a polled change (nudged.py)."""
    from p2c_core import nudged

    telemetry.configure()
    with telemetry.invocation(bind_thread):
        return nudged.handle(get_runtime(), body)
