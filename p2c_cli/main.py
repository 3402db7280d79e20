"""`p2c`: run the demo, serve the sandbox, and (later) operate a deployment."""

from __future__ import annotations

import json
import logging
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

if TYPE_CHECKING:
    from p2c_cli.local import LocalEnvironment, Summary

app = typer.Typer(help="p2c: Prospect to cash sync between Dynamics 365 Sales and Finance and Operations.")


@app.callback()
def main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log every retry and failure.")] = False,
) -> None:
    # Record-level problems are summarised at the end; -v shows them as they happen.
    logging.basicConfig(level=logging.INFO if verbose else logging.ERROR, format="%(levelname)s %(name)s: %(message)s")


console = Console()

DEMO_DIR = Path(".p2c/demo")


@app.command()
def demo(
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Forget the state of earlier demo runs.")] = False,
    state_dir: Annotated[Path, typer.Option(help="Where Azurite and the sandbox keep their data.")] = DEMO_DIR,
) -> None:
    """Run every flow against the local sandbox (Azurite + local Dataverse and F&O)."""
    from p2c_cli.local import local_environment
    from p2c_core.flows import all_flows

    if fresh and state_dir.exists():
        shutil.rmtree(state_dir)
    with local_environment(state_dir) as env:
        if not json_output:
            console.print(
                f"[bold]p2c demo[/] Dataverse {env.sandbox.dataverse_url}  F&O {env.sandbox.fno_url}  "
                f"state in {state_dir}"
            )
        summary = env.sync([f.name for f in all_flows()])
        if json_output:
            typer.echo(json.dumps(summary.as_dict()))
            return
        _print_customers(env)
        _print_summary(summary)
        failures = env.runtime.state.failures()
        for f in failures[:20]:
            console.print(f"[red]failed[/] {f.flow} {f.source_key!r}: {f.error_class}: {f.message}")
        console.print(f"elapsed {summary.elapsed_s:.1f}s; run again to see an incremental sync (0 writes)")


def _print_customers(env: LocalEnvironment) -> None:
    columns = {
        "CustomerAccount": "account",
        "OrganizationName": "name",
        "PersonLastName": "person",
        "DeliveryAddressCountryRegionISOCode": "country",
        "SalesCurrencyCode": "currency",
        "CustomerGroupId": "group",
        "PaymentTerms": "terms",
        "DeliveryMode": "delivery",
    }
    table = Table(title="F&O customers maintained by p2c (CustomersV3)")
    for header in columns.values():
        table.add_column(header, overflow="fold")
    ours = "IsExternallyMaintained eq Microsoft.Dynamics.DataEntities.NoYes'Yes'"
    for page in env.runtime.fno.query("CustomersV3", select=list(columns), filter=ours):
        for row in page.rows:
            table.add_row(*("" if row.get(c) is None else str(row[c]) for c in columns))
    console.print(table)


@app.command()
def sync(
    flows: Annotated[list[str] | None, typer.Argument(help="Flows to run (default: all, in dependency order).")] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    timeout: Annotated[
        float, typer.Option(help="Seconds each flow's drain may take; retries not due by then stay queued.")
    ] = 600.0,
    settle: Annotated[
        float, typer.Option(help="Seconds to wait for a delayed retry to come due before leaving it queued.")
    ] = 30.0,
) -> None:
    """Poll and drain flows here, with the settings of the environment (a backfill, a test).

    Records waiting for a record of another flow (or for their paused flow) stay queued
    and are listed; they go on in a later run. Exits 0 when the sync ran.
    """
    import function_app
    from p2c_cli.host import LocalHost
    from p2c_cli.local import sync as run_sync
    from p2c_core.flows import all_flows, get_flow
    from p2c_core.runtime import get_runtime

    names = [get_flow(n).name for n in flows] if flows else [f.name for f in all_flows()]
    runtime = get_runtime()
    host = LocalHost(function_app.app, runtime.storage, lease_seconds=runtime.settings.apply_lease_seconds)
    try:
        if json_output:
            summary = run_sync(host, runtime, names, timeout=timeout, settle=settle)
        else:
            with _progress() as bars:
                tasks = {n: bars.add_task(f"{n}: waiting", total=None) for n in names}

                def report(flow: str, phase: str, done: int, queued: int) -> None:
                    total = done + queued if phase == "apply" else None
                    bars.update(tasks[flow], description=f"{flow}: {phase}", completed=done, total=total)

                summary = run_sync(host, runtime, names, report, timeout=timeout, settle=settle)
    finally:
        host.close()
    if json_output:
        typer.echo(json.dumps(summary.as_dict()))
        return
    _print_summary(summary)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("messages"),
        TimeElapsedColumn(), console=console, transient=True,
    )  # fmt: skip


def _print_summary(summary: Summary) -> None:
    table = Table(title="Sync summary")
    for col in ("flow", "read", "written", "skipped", "failed"):
        table.add_column(col, justify="left" if col == "flow" else "right")
    for name, s in summary.flows.items():
        table.add_row(name, str(s.read), str(s.written), str(s.skipped), str(s.failed))
    console.print(table)
    for w in summary.waiting[:20]:
        console.print(f"[yellow]waiting[/] {w.flow} {w.key!r}: for {w.waiting_for}")
    if summary.waiting:
        console.print(f"{len(summary.waiting)} record(s) wait in their queues; they go on in a later run")
    elif summary.queued:
        console.print(f"{summary.queued} message(s) still queued (retries not due yet); they go on in a later run")


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


@app.command()
def status(json_output: JsonOption = False) -> None:
    """Per flow: enabled, cursor and its age, queue and poison depth, failures, last runs.

    Exits 1 when any flow is unhealthy (failed records, or a last run that failed).
    """
    from p2c_core import ops
    from p2c_core.runtime import get_runtime

    report = ops.status(get_runtime())
    if json_output:
        typer.echo(json.dumps(report, default=str))
    else:
        table = Table(title="p2c status")
        for col in ("flow", "enabled", "cursor", "cursor age", "queue", "poison", "failures", "last run", "healthy"):
            table.add_column(col)
        for name, f in report["flows"].items():
            last = f["last_runs"][0] if f["last_runs"] else None
            table.add_row(
                name, str(f["enabled"]), f["cursor"],
                "" if f["cursor_age_s"] is None else f"{f['cursor_age_s']:.0f}s",
                str(f["queue_depth"]), str(f["poison_depth"]), str(f["failures"]),
                f"{last['kind']} {last['status']} {last['started'][:19]}" if last else "",
                "[green]yes[/]" if f["healthy"] else "[red]no[/]",
            )  # fmt: skip
        console.print(table)
        for name, f in report["flows"].items():
            if f["paused"]:
                console.print(f"[yellow]paused[/] {name}: {f['paused_reason'] or 'by an operator or a setting'}")
    raise typer.Exit(0 if report["healthy"] else 1)


@app.command()
def failures(
    flow: Annotated[str | None, typer.Option(help="Only this flow.")] = None,
    error: Annotated[str | None, typer.Option(help="Only this error class, e.g. MappingError.")] = None,
    age: Annotated[str | None, typer.Option(help="Only those seen within this long, e.g. 30m, 24h, 7d.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Failed records with their cause (flow, key, attempt, error, status, request id)."""
    from p2c_core import ops
    from p2c_core.runtime import get_runtime

    rows = ops.failures(get_runtime(), flow, error, _duration(age) if age else None)
    if json_output:
        typer.echo(json.dumps(rows, default=str))
        return
    table = Table(title=f"{len(rows)} failed record(s)")
    for col in ("flow", "key", "attempt", "error", "status", "request id", "last seen", "message"):
        table.add_column(col, overflow="fold")
    for f in rows:
        table.add_row(
            f["flow"], f["source_key"], str(f["attempt"]), f["error_class"], str(f["status"] or ""),
            f["request_id"] or "", f["last_seen"][:19], f["message"],
        )  # fmt: skip
    console.print(table)


@app.command()
def replay(
    flow: Annotated[str | None, typer.Option(help="Only this flow.")] = None,
    key: Annotated[list[str] | None, typer.Option(help="Only these source keys (repeatable).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Put failed records back on their flow's queue."""
    from p2c_core import ops
    from p2c_core.runtime import get_runtime

    counts = ops.replay(get_runtime(), flow, set(key) if key else None)
    if json_output:
        typer.echo(json.dumps({"replayed": counts}))
    else:
        console.print(f"replayed {sum(counts.values())} record(s): " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def pause(flow: Annotated[str, typer.Argument(help="The flow to pause.")], json_output: JsonOption = False) -> None:
    """Pause a flow: its timer reads nothing and queued changes wait in the queue."""
    _set_paused(flow, True, json_output)


@app.command()
def resume(flow: Annotated[str, typer.Argument(help="The flow to resume.")], json_output: JsonOption = False) -> None:
    """Resume a paused flow (a pause set by P2C_FLOWS__<FLOW>__PAUSED stays until that setting changes)."""
    _set_paused(flow, False, json_output)


def _set_paused(flow: str, paused: bool, json_output: bool) -> None:
    from p2c_core import ops
    from p2c_core.runtime import get_runtime

    ops.set_paused(get_runtime(), flow, paused)
    if json_output:
        typer.echo(json.dumps({"flow": flow, "paused": paused}))
    else:
        console.print(f"{flow} paused; `p2c resume {flow}` to continue" if paused else f"{flow} resumed")


@app.command("reset-cursor")
def reset_cursor(
    flow: Annotated[str, typer.Argument(help="The flow whose cursor to reset.")],
    to: Annotated[
        datetime | None, typer.Option(help="Re-read only what changed since this time (UTC unless it says).")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Re-read everything (the default).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Make the flow's next poll read the source again; records that did not change write nothing."""
    from p2c_core import ops
    from p2c_core.runtime import get_runtime

    if to is not None and full:
        raise typer.BadParameter("give --to TIME or --full, not both")
    when = None if to is None else (to if to.tzinfo else to.replace(tzinfo=UTC))
    ops.reset_cursor(get_runtime(), flow, when)
    if json_output:
        typer.echo(json.dumps({"flow": flow, "reset": True, "since": when.isoformat() if when else None}))
        return
    since = f"changes since {when.isoformat()}" if when else "everything"
    console.print(f"cursor of {flow} reset: the next poll reads {since}")


def _duration(text: str) -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", text)
    if not match:
        raise typer.BadParameter(f"not a duration like 30m, 24h or 7d: {text!r}")
    unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}[match.group(2)]
    return timedelta(**{unit: int(match.group(1))})


@app.command()
def check(
    flows: Annotated[list[str] | None, typer.Argument(help="Flows to check (default: all).")] = None,
    json_output: JsonOption = False,
) -> None:
    """Reach both services and check every mapped entity set and field against their $metadata."""
    from p2c_core import ops
    from p2c_core.flows import all_flows, get_flow
    from p2c_core.runtime import get_runtime

    chosen = [get_flow(n) for n in flows] if flows else list(all_flows())
    problems = ops.check(get_runtime(), chosen)
    if json_output:
        typer.echo(json.dumps({"ok": not problems, "problems": [vars(p) for p in problems]}))
    elif problems:
        for p in problems:
            console.print(f"[red]✗[/] {p}")
    else:
        fields = sum(len(f.rules()) for f in chosen)
        console.print(f"[green]✓[/] {len(chosen)} flow(s), {fields} mapped fields match both services' $metadata")
    raise typer.Exit(1 if problems else 0)


@app.command()
def plan(
    flow: Annotated[str, typer.Argument(help="The flow to preview.")],
    limit: Annotated[int | None, typer.Option(help="Stop after this many records.")] = None,
    json_output: JsonOption = False,
) -> None:
    """Dry run: what the next sync of FLOW would create or update, field by field. Writes nothing."""
    from p2c_core import ops
    from p2c_core.runtime import get_runtime

    changes = ops.plan(get_runtime(), flow, limit)
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.action] = counts.get(c.action, 0) + 1
    if json_output:
        typer.echo(json.dumps({"counts": counts, "changes": [vars(c) for c in changes]}, default=str))
        return
    for c in changes:
        if c.action == "unchanged":
            continue
        colour = {"create": "green", "update": "yellow", "fail": "red"}.get(c.action, "white")
        console.print(f"[{colour}]{c.action}[/] {c.key}" + (f": {c.reason}" if c.reason else ""))
        for name, (before, after) in c.fields.items():
            console.print(f"    {name}: {before!r} -> {after!r}")
    console.print(", ".join(f"{n} {a}" for a, n in sorted(counts.items())) or "nothing to sync")


@app.command()
def reconcile(
    flow: Annotated[str, typer.Argument(help="The flow whose two sides to compare.")],
    repair: Annotated[
        bool, typer.Option(help="Enqueue the source version of every missing or differing record.")
    ] = False,
    sample: Annotated[int, typer.Option(help="How many keys of each kind to show.")] = 5,
    json_output: JsonOption = False,
) -> None:
    """Compare both sides by natural key: missing, extra and differing records. Exits 1 on drift."""
    from p2c_core import ops
    from p2c_core.runtime import get_runtime

    drift = ops.reconcile(get_runtime(), flow, repair=repair)
    counts = drift.counts()
    if json_output:
        typer.echo(json.dumps({
            "flow": drift.flow, "counts": counts, "missing": drift.missing[:sample], "extra": drift.extra[:sample],
            "differing": dict(list(drift.differing.items())[:sample]), "unmappable": drift.unmappable,
        }, default=str))  # fmt: skip
    else:
        console.print(f"[bold]{drift.flow}[/]: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        for kind, keys in (("missing in target", drift.missing), ("extra in target", drift.extra)):
            if keys:
                console.print(f"  {kind}: " + ", ".join(keys[:sample]) + (" ..." if len(keys) > sample else ""))
        for key, fields in list(drift.differing.items())[:sample]:
            console.print(f"  differs {key}: " + "; ".join(f"{f} {a!r} != {b!r}" for f, (a, b) in fields.items()))
    drifted = counts["missing"] + counts["extra"] + counts["differing"]
    raise typer.Exit(1 if drifted and not repair else 0)


@app.command()
def sandbox(
    dataverse_port: Annotated[int, typer.Option(help="Port of the Dataverse Web API (0 = a free one).")] = 0,
    fno_port: Annotated[int, typer.Option(help="Port of the F&O OData endpoint (0 = a free one).")] = 0,
    data_dir: Annotated[Path | None, typer.Option(help="Keep the sandbox's data in this folder.")] = None,
    accounts: Annotated[
        int, typer.Option(min=0, help="Add this many generated Sales accounts (VOL-0000001...), for volume tests.")
    ] = 0,
    products: Annotated[
        int,
        typer.Option(min=0, help="Add this many generated F&O released products (VOL-P000001...)."),
    ] = 0,
) -> None:
    """Serve the local Dataverse and F&O sandbox until stopped (Ctrl-C)."""
    from p2c_sandbox import serve

    serve(dataverse_port=dataverse_port, fno_port=fno_port, data_dir=data_dir, accounts=accounts, products=products)


if __name__ == "__main__":
    app()
