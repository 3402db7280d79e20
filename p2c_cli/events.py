"""`p2c events register | unregister | status`: live sync's registrations (p2c_core/ops/events.py)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

app = typer.Typer(help="Live sync: the Dataverse webhook and steps, and the F&O data events to activate.")
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print what would be done; change nothing.")]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Url = Annotated[
    str,
    typer.Option("--url", help="The dataverse_events function's URL, e.g. https://APP.azurewebsites.net/api/events/dataverse.",
                 metavar="URL"),
]  # fmt: skip


def _runtime() -> Any:
    from p2c_cli.probe import runtime

    return runtime("dataverse")


def _print(report: dict[str, Any], json_output: bool) -> None:
    if json_output:
        typer.echo(json.dumps(report))
        return
    echo = typer.echo  # plain lines: URLs and column lists must not wrap
    prefix = "would " if report.get("dry_run") else ""
    endpoint = report.get("endpoint") or {}
    echo(f"endpoint {endpoint.get('name')}: {prefix}{endpoint.get('action')} {endpoint.get('url') or ''}".rstrip())
    for step in report.get("steps", []):
        columns = f" (filtering attributes: {step['filteringattributes']})" if step.get("filteringattributes") else ""
        echo(f"step {step['name']}: {prefix}{step['action']}{columns}")
    for item in report.get("fno", []):
        echo(f"F&O legal entity {item['legal_entity']}: activate data events {', '.join(item['events'])} "
                  f"of {item['entity']} to the endpoint {item['endpoint']}?code=<P2C_EVENTS_KEY>")  # fmt: skip


@app.command()
def register(url: Url, dry_run: DryRun = False, json_output: Json = False) -> None:
    """Create (or bring up to date) the webhook and a step per table and message; print the F&O part."""
    from p2c_core.ops import events

    try:
        report = events.register(_runtime(), url, dry_run=dry_run)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    _print(report, json_output)


@app.command()
def unregister(dry_run: DryRun = False, json_output: Json = False) -> None:
    """Remove the webhook and its steps."""
    from p2c_core.ops import events

    _print(events.unregister(_runtime(), dry_run=dry_run), json_output)


@app.command()
def status(json_output: Json = False) -> None:
    """Whether push is on, the webhook, and steps missing, outdated or extra. Exits 1 when not in order."""
    from p2c_core.ops import events

    report = events.status(_runtime())
    if json_output:
        typer.echo(json.dumps(report))
    else:
        for name, value in report.items():
            typer.echo(f"{name}: {value}")
    in_order = report["endpoint"] is not None and not (report["missing"] or report["outdated"] or report["extra"])
    raise typer.Exit(0 if in_order else 1)
