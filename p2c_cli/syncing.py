"""`p2c sync`: poll and drain flows here, stop early when a service stays away, say what failed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from rich.console import Console

from p2c_cli import probe, render
from p2c_cli.errors import ExitCode
from p2c_core.flows import get_flow

if TYPE_CHECKING:
    from p2c_cli.local import Summary
    from p2c_core.runtime import Runtime

# No record handled for this long: ask whether the flow's services still answer.
STALL_S = 5.0


def services_of(names: list[str]) -> set[str]:
    return {s for n in names for s in (get_flow(n).source.service, get_flow(n).target.service)}


class Watchdog:
    """Raises OperatorError from a progress callback once a flow's service stops answering.

    Records retried against a service that is down only wait (backoff); nothing else
    would end a sync before its timeout.
    """

    def __init__(self, rt: Runtime, clock: Callable[[], float] = time.monotonic) -> None:
        self.urls = {"dataverse": rt.settings.dataverse_url, "fno": rt.settings.fno_url}
        self.clock = clock
        self.flow = ""
        self.done = -1
        self.since = self.clock()

    def __call__(self, flow: str, phase: str, done: int, queued: int) -> None:
        now = self.clock()
        if flow != self.flow or done != self.done:
            self.flow, self.done, self.since = flow, done, now
            return
        if queued and now - self.since >= STALL_S:
            self.since = now
            probe.services(services_of([flow]), self.urls)


def run(
    rt: Runtime, names: list[str], *, json_output: bool, console: Console, timeout: float = 600.0, settle: float = 30.0
) -> int:
    import function_app
    from p2c_cli.host import LocalHost
    from p2c_cli.local import sync as run_sync

    started = datetime.now(UTC)
    paused = [n for n in names if _paused(rt, n)]
    host = LocalHost(function_app.app, rt.storage, lease_seconds=rt.settings.apply_lease_seconds)
    watchdog = Watchdog(rt)
    try:
        if json_output:
            summary = run_sync(host, rt, names, watchdog, timeout=timeout, settle=settle)
        else:
            with render.progress(console) as bars:
                tasks = {n: bars.add_task(f"{n}: waiting", total=None, unit="messages") for n in names}

                def report(flow: str, phase: str, done: int, queued: int) -> None:
                    total = done + queued if phase == "apply" else None
                    bars.update(tasks[flow], description=f"{flow}: {phase}", completed=done, total=total)
                    watchdog(flow, phase, done, queued)

                summary = run_sync(host, rt, names, report, timeout=timeout, settle=settle)
    finally:
        host.close()
    poll_errors = _poll_errors(rt, names, started)
    failed = sum(s.failed for s in summary.flows.values())
    code = ExitCode.FAILED if failed or poll_errors else ExitCode.OK
    if json_output:
        body = summary.as_dict()
        if paused or poll_errors:
            body |= {"paused": paused, "poll_errors": poll_errors}
        print(json.dumps(body))
        return code
    console.print(render.summary_table(summary))
    _explain(console, summary, paused, poll_errors)
    return code


def _paused(rt: Runtime, name: str) -> bool:
    from p2c_core import engine

    return engine.paused(rt, get_flow(name))


def _poll_errors(rt: Runtime, names: list[str], since: datetime) -> dict[str, str]:
    """The error of each flow whose poll (in this sync) failed."""
    out: dict[str, str] = {}
    for name in names:
        for r in rt.state.runs(name, since=since):
            if r.kind == "poll" and r.status == "error":
                out[name] = r.error or "failed"
                break
    return out


def _explain(console: Console, summary: Summary, paused: list[str], poll_errors: dict[str, str]) -> None:
    for name in paused:
        console.print(f"{name} is paused: nothing was read or written; `p2c resume {name}` continues it")
    for name, error in poll_errors.items():
        console.print(f"[red]{name}: the poll failed[/]: {error}")
    failed = {n: s.failed for n, s in summary.flows.items() if s.failed}
    if failed:
        where = ", ".join(f"{n} {c}" for n, c in failed.items())
        console.print(f"[red]{sum(failed.values())} record(s) failed[/] ({where}).")
        console.print("See why: `p2c failures`; after fixing the cause: `p2c replay --flow FLOW`.")
    for w in summary.waiting[:20]:
        console.print(f"[yellow]waiting[/] {w.flow} {w.key!r}: for {w.waiting_for}")
    if summary.waiting:
        console.print(f"{len(summary.waiting)} record(s) wait in their queues; they go on in a later run")
    elif summary.queued:
        console.print(f"{summary.queued} message(s) still queued (retries not due yet); they go on in a later run")
