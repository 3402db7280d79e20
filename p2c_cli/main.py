"""`p2c`: run the demo, serve the sandbox and the console, and operate a deployment.

Exit codes: 0 ok, 1 records failed (or drift, or an unhealthy flow), 2 bad usage or
settings, 3 a service unreachable, 4 unexpected (see p2c_cli/errors.py).
"""

from __future__ import annotations

import json
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from p2c_cli import render
from p2c_cli.probe import runtime as _runtime
from p2c_core.flows import all_flows

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

FLOW_NAMES = ", ".join(f.name for f in all_flows())
EPILOG = (
    f"Flows, in dependency order: {FLOW_NAMES}.\n\n"
    "Examples: p2c demo;  p2c status;  p2c sync accounts -v;  p2c failures --flow products;  "
    "p2c replay --flow products;  p2c console.\n\n"
    "Exit codes: 0 ok, 1 records failed or drift, 2 bad usage or settings, 3 a service unreachable, "
    "4 unexpected (--debug shows the traceback), 130 interrupted."
)
app = typer.Typer(
    help="p2c: Prospect to cash sync between Dynamics 365 Sales and Finance and Operations.",
    epilog=EPILOG,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # No local variables in tracebacks, should they ever be shown: settings, tokens, record data.
    pretty_exceptions_show_locals=False,
    # Plain help: option values by what they are (FLOW, DURATION), not by Python type.
    rich_markup_mode=None,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"p2c {version('p2c')}")
        raise typer.Exit(0)


@app.callback()
def main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show p2c's own events (retries, failures) as they happen.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Everything, SDK wire logs and tracebacks too.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """-v and --debug work anywhere on the command line."""
    from p2c_cli.logs import configure_logging

    configure_logging(verbose, debug)


def _flow(name: str) -> str:
    if name not in {f.name for f in all_flows()}:
        raise typer.BadParameter(f"unknown flow {name!r}; flows: {FLOW_NAMES}")
    return name


def _flows(names: list[str] | None) -> list[str] | None:
    return None if names is None else [_flow(n) for n in names]


JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts (errors too).")]


def _record(rt: Runtime, action: str, flow: str | None, detail: dict[str, object]) -> None:
    """Actions from the command line go into the run history too, as the console's do."""
    import getpass

    from p2c_core.console import audit

    audit.record(rt.storage, audit.Action(actor=f"{getpass.getuser()} (cli)", action=action, flow=flow, detail=detail))


FlowArg = Annotated[str, typer.Argument(help=f"One of: {FLOW_NAMES}.", callback=_flow, metavar="FLOW")]
FlowsArg = Annotated[
    list[str] | None,
    typer.Argument(help=f"Flows (default: all, in order): {FLOW_NAMES}.", callback=_flows, metavar="FLOW..."),
]
FlowOption = Annotated[
    str | None, typer.Option(help=f"Only this flow: {FLOW_NAMES}.", metavar="FLOW", callback=lambda v: v and _flow(v))
]
console = Console()


def _add_subcommands() -> None:
    from p2c_cli.events import app as events
    from p2c_cli.mappings import app as mappings

    app.add_typer(mappings, name="mappings")
    app.add_typer(events, name="events")


_add_subcommands()

DEMO_DIR = Path(".p2c/demo")


@app.command()
def demo(
    json_output: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
    fresh: Annotated[bool, typer.Option("--fresh", help="Forget the state of earlier demo runs.")] = False,
    state_dir: Annotated[Path, typer.Option(help="Where Azurite and the sandbox keep their data.")] = DEMO_DIR,
    serve: Annotated[
        bool,
        typer.Option("--serve", help="Keep Azurite and the sandbox up afterwards and print the settings to use them."),
    ] = False,
    one_company: Annotated[
        bool, typer.Option("--one-company", help="Only usmf (P2C_FNO_COMPANY), as before several companies.")
    ] = False,
) -> None:
    """Run every flow against the local sandbox (Azurite + local Dataverse and F&O), for two
    companies (usmf and demf, by business unit) unless --one-company.

    Example: p2c demo, then p2c demo --serve to keep its environment up for p2c status,
    p2c failures and p2c console in another terminal.
    """
    from p2c_cli import demo as demo_run

    if fresh and state_dir.exists():
        shutil.rmtree(state_dir)
    demo_run.run(state_dir, json_output=json_output, serve=serve, console=console, one_company=one_company)


@app.command()
def sync(
    flows: FlowsArg = None,
    json_output: JsonOption = False,
    timeout: Annotated[
        float,
        typer.Option(
            metavar="SECONDS", help="How long each flow's drain may take; retries not due by then stay queued."
        ),
    ] = 600.0,
    settle: Annotated[
        float,
        typer.Option(
            metavar="SECONDS", help="How long to wait for a delayed retry to come due before leaving it queued."
        ),
    ] = 30.0,
) -> None:
    """Poll and drain flows here, with the settings of the environment (a backfill, a test).

    Stops early when a service it needs does not answer; exits 1 when records failed.
    Example: p2c sync accounts products

    Records waiting for a record of another flow (or for their paused flow) stay queued
    and are listed; they go on in a later run.
    """
    from p2c_cli import syncing

    names = flows or [f.name for f in all_flows()]
    services = syncing.services_of(names)
    code = syncing.run(
        _runtime(*services), names, json_output=json_output, console=console, timeout=timeout, settle=settle
    )
    raise typer.Exit(code)


@app.command()
def status(json_output: JsonOption = False) -> None:
    """Per flow: running, paused or disabled, cursor age, queued, failed, last run.

    Also shows poison messages and whether each flow is healthy.

    Exits 1 when any flow is unhealthy (failed records, or a last run that failed).
    """
    from p2c_core import ops

    rt = _runtime()
    report = ops.status(rt)
    for name, f in report["flows"].items():
        # A pause by app setting outlives `p2c resume`: say which it is.
        f["paused_by"] = "setting" if rt.settings.flow(name).paused else ("operator" if f["paused"] else None)
    if json_output:
        typer.echo(json.dumps(report, default=str))
    else:
        console.print(render.status_table(report))
        for name, f in report["flows"].items():
            if f["paused_by"] == "operator":
                why = f" ({f['paused_reason']})" if f.get("paused_reason") else ""
                console.print(f"{name} is paused{why}: `p2c resume {name}` continues it")
            elif f["paused_by"] == "setting":
                console.print(f"{name} is paused by its app setting P2C_FLOWS__{name.upper()}__PAUSED")
            if f.get("outside_24h"):
                console.print(f"{name}: {f['outside_24h']} row(s) in the last day {f['outside_reason']}")
    raise typer.Exit(0 if report["healthy"] else 1)


@app.command()
def failures(
    flow: FlowOption = None,
    error: Annotated[
        str | None, typer.Option(help="Only this error class, e.g. MappingError.", metavar="CLASS")
    ] = None,
    age: Annotated[
        str | None, typer.Option(help="Only those seen within this long, e.g. 30m, 24h, 7d.", metavar="DURATION")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Failed records with their cause (flow, key, attempt, error, status, request id).

    Example: p2c failures --flow accounts --age 24h
    """
    from p2c_core import ops

    within = _duration(age) if age else None
    rows = ops.failures(_runtime(), flow, error, within)
    if json_output:
        typer.echo(json.dumps(rows, default=str))
        return
    console.print(f"{len(rows)} failed record(s)", highlight=False)
    for line in render.failure_lines(rows, console.width):
        console.print(line, highlight=False, markup=False)
    if rows:
        console.print("After fixing the cause: p2c replay --flow FLOW (or --key KEY)", highlight=False)


@app.command()
def replay(
    flow: FlowOption = None,
    key: Annotated[
        list[str] | None, typer.Option(help="Only this source key (repeat for more).", metavar="KEY")
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Put failed records back on their flow's queue (after fixing their cause).

    Example: p2c replay --flow accounts --key ACC-01049-PSGRYJ
    """
    from p2c_core import ops

    rt = _runtime()
    counts = ops.replay(rt, flow, set(key) if key else None)
    _record(rt, "replay", flow, {"keys": key, "replayed": sum(counts.values())})
    if json_output:
        typer.echo(json.dumps({"replayed": counts}))
    else:
        console.print(f"replayed {sum(counts.values())} record(s): " + ", ".join(f"{k} {v}" for k, v in counts.items()))


@app.command()
def pause(flow: FlowArg, json_output: JsonOption = False) -> None:
    """Pause a flow: its timer reads nothing and queued changes wait in the queue."""
    _set_paused(flow, True, json_output)


@app.command()
def resume(flow: FlowArg, json_output: JsonOption = False) -> None:
    """Resume a paused flow (a pause set by P2C_FLOWS__<FLOW>__PAUSED stays until that setting changes)."""
    _set_paused(flow, False, json_output)


def _set_paused(flow: str, paused: bool, json_output: bool) -> None:
    from p2c_core import ops

    rt = _runtime()
    ops.set_paused(rt, flow, paused)
    _record(rt, "pause" if paused else "resume", flow, {"paused": paused})
    if json_output:
        typer.echo(json.dumps({"flow": flow, "paused": paused}))
    else:
        console.print(f"{flow} paused; `p2c resume {flow}` to continue" if paused else f"{flow} resumed")


@app.command("reset-cursor")
def reset_cursor(
    flow: FlowArg,
    to: Annotated[
        datetime | None, typer.Option(help="Re-read only what changed since this time (UTC unless it says).")
    ] = None,
    full: Annotated[bool, typer.Option("--full", help="Re-read everything (the default).")] = False,
    json_output: JsonOption = False,
) -> None:
    """Make the flow's next poll read the source again; records that did not change write nothing."""
    from p2c_core import ops

    if to is not None and full:
        raise typer.BadParameter("give --to TIME or --full, not both")
    when = None if to is None else (to if to.tzinfo else to.replace(tzinfo=UTC))
    rt = _runtime()
    ops.reset_cursor(rt, flow, when)
    _record(rt, "reset-cursor", flow, {"since": when.isoformat() if when else None})
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
    flows: FlowsArg = None,
    json_output: JsonOption = False,
) -> None:
    """Reach both services and check every mapped entity set and field against their $metadata.

    Example: p2c check accounts
    """
    from p2c_core import ops

    runtime = _runtime("dataverse", "fno")
    from p2c_core.flows import all_flows

    # As the flows run here: with the deployment's mapping overlay.
    chosen = [runtime.flow(n) for n in (flows or [f.name for f in all_flows()])]
    problems = ops.check(runtime, chosen)
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
    flow: FlowArg,
    limit: Annotated[int | None, typer.Option(help="Stop after this many records.", metavar="N")] = None,
    json_output: JsonOption = False,
) -> None:
    """Dry run: what the next sync of FLOW would create or update, field by field. Writes nothing."""
    from p2c_core import ops

    changes = ops.plan(_runtime("dataverse", "fno"), flow, limit)
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
    flow: FlowArg,
    repair: Annotated[
        bool, typer.Option(help="Enqueue the source version of every missing or differing record.")
    ] = False,
    sample: Annotated[int, typer.Option(help="How many keys of each kind to show.", metavar="N")] = 5,
    json_output: JsonOption = False,
) -> None:
    """Compare both sides by natural key: missing, extra and differing records. Exits 1 on drift."""
    from p2c_core import ops

    drift = ops.reconcile(_runtime("dataverse", "fno"), flow, repair=repair)
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
    companies: Annotated[
        str,
        typer.Option(
            help="Demo data of the second company: 'one' (Sales rows all Contoso US), 'business-units' (also "
            "Contoso DE's German Sales rows), 'dual-write' (also cdm_companies and msdyn_company)."
        ),
    ] = "one",
) -> None:
    """Serve the local Dataverse and F&O sandbox until stopped (Ctrl-C)."""
    from p2c_sandbox import Companies, serve

    try:
        mode = Companies(companies)
    except ValueError:
        raise typer.BadParameter(f"--companies must be one of {', '.join(c.value for c in Companies)}") from None
    serve(
        dataverse_port=dataverse_port, fno_port=fno_port, data_dir=data_dir, accounts=accounts, products=products,
        companies=mode,
    )  # fmt: skip


@app.command("console")
def console_command(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 = a free one).")] = 8470,
) -> None:
    """Serve the operator console in the browser, on 127.0.0.1 only, until Ctrl-C.

    It works on the environment the settings point at; local use is trusted as an operator.

    Example: p2c demo --serve in one terminal, its settings and p2c console in another.
    """
    from p2c_core.console.local import serve

    _runtime()
    serve(port, announce=lambda url: console.print(f"p2c console on {url} (Ctrl-C to stop)"))
