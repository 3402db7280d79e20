"""Tables and lines the commands print; compact enough for an 80-column terminal or pipe."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from p2c_cli.local import Summary


def progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
        TimeElapsedColumn(), console=console, transient=True,
    )  # fmt: skip


def summary_table(summary: Summary) -> Table:
    table = Table(title="Sync summary")
    for col in ("flow", "read", "written", "skipped", "failed"):
        table.add_column(col, justify="left" if col == "flow" else "right")
    for name, s in summary.flows.items():
        table.add_row(name, str(s.read), str(s.written), str(s.skipped), str(s.failed))
    return table


def flow_state(flow: dict[str, Any]) -> str:
    """One word an operator can act on: running, paused (by whom), disabled."""
    if not flow["enabled"]:
        return "disabled"
    if flow.get("paused_by") == "setting":
        return "paused (setting)"
    return "paused" if flow["paused"] else "running"


def duration(seconds: float | None) -> str:
    """`45s`, `12m`, `3h 5m`, `2d 4h`: a lag or an age with its unit."""
    if seconds is None:
        return ""
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"


def status_table(report: dict[str, Any]) -> Table:
    """One row a flow, within 80 columns (the cursor's kind and poison depth are in --json)."""
    table = Table(title="p2c status", box=box.SIMPLE_HEAD, pad_edge=False)
    for col in ("flow", "state", "age", "queued", "failed", "last run", "ok"):
        right = col in ("age", "queued", "failed")
        table.add_column(col, justify="right" if right else "left", no_wrap=True, min_width=len(col))
    for name, f in report["flows"].items():
        last = f["last_runs"][0] if f["last_runs"] else None
        table.add_row(
            name, flow_state(f), duration(f["cursor_age_s"]), str(f["queue_depth"]), str(f["failures"]),
            f"{last['kind']} {last['status']}" if last else "",
            "yes" if f["healthy"] else "[red]no[/]",
        )  # fmt: skip
    return table


def failure_lines(rows: list[dict[str, Any]], width: int = 80) -> list[str]:
    """A failure as what and when, then why (indented), wrapped to the terminal's width."""
    out: list[str] = []
    for f in rows:
        seen = f["last_seen"][:19].replace("T", " ")
        extra = "".join((f", HTTP {f['status']}" if f["status"] else "",
                         f", request id {f['request_id']}" if f["request_id"] else ""))  # fmt: skip
        head = f"{f['flow']} {f['source_key']}: {f['error_class']}, attempt {f['attempt']}{extra}, {seen} UTC"
        out.extend(textwrap.wrap(head, width, subsequent_indent="    ", break_on_hyphens=False))
        out.extend(textwrap.wrap(f["message"], width, initial_indent="    ", subsequent_indent="    "))
    return out
