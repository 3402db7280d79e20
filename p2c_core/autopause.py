"""Auto-pause: a flow whose records mostly fail pauses itself, as dual-write pauses a map
past an error threshold, instead of failing every change until someone reads the alerts.

The pause is the operator's (`p2c resume FLOW` lifts it); queued changes wait in the
queue meanwhile. The window starts again at a resume, so a resumed flow gets a fresh count.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from p2c_core.flow import Flow
from p2c_core.outcome import Outcome
from p2c_core.state import now

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

log = logging.getLogger("p2c.engine")

# The `p2c.event` of the warning an alert matches (docs/operations.md).
EVENT = "auto_pause"


def check(rt: Runtime, flow: Flow, out: Outcome) -> bool:
    """After an apply with failures: pause the flow if its failure share over the window
    passed the threshold. True when it paused it."""
    settings = rt.settings
    share = settings.auto_pause_failure_share
    if share is None or not out.counts.failed:
        return False
    pause = rt.state.pause(flow.name)
    if pause.get("paused"):
        return False
    window = timedelta(minutes=settings.auto_pause_window_minutes)
    since = now() - window
    if pause.get("updated_at"):  # resumed (or paused and resumed) since: count from then
        since = max(since, datetime.fromisoformat(pause["updated_at"]))
    failed = done = 0
    for run in rt.state.runs(flow.name, since=since):
        if run.kind == "apply":
            failed += run.counts.get("failed", 0)
            done += sum(run.counts.get(k, 0) for k in ("failed", "written", "skipped"))
    if done < settings.auto_pause_min_records or failed / done < share:
        return False
    reason = (
        f"paused itself: {failed} of {done} records failed since {since.isoformat(timespec='seconds')} "
        f"(P2C_AUTO_PAUSE_FAILURE_SHARE {share:g}); fix the cause, then `p2c resume {flow.name}`"
    )
    rt.state.set_paused(flow.name, True, reason=reason)
    log.warning(
        "flow %s %s", flow.name, reason,
        extra={"p2c.flow": flow.name, "p2c.event": EVENT, "p2c.failed": failed, "p2c.records": done},
    )  # fmt: skip
    return True
