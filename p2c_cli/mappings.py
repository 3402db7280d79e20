"""`p2c mappings show FLOW`: the effective mapping (standard + overlay) as a table."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="The flows' mappings as this deployment runs them (standard + overlay).")


@app.command()
def show(
    flow: Annotated[str, typer.Argument(help="The flow, e.g. accounts.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")] = False,
) -> None:
    """Print every target field of FLOW: its rule kind, source, when it is sent and its origin."""
    from p2c_core.ops.mappings import effective
    from p2c_core.runtime import get_runtime

    rows = effective(get_runtime(), flow)
    if json_output:
        typer.echo(json.dumps([r.as_dict() for r in rows]))
        return
    table = Table(title=f"{flow}: effective mapping")
    for column in ("target", "kind", "source", "when", "origin"):
        table.add_column(column, overflow="fold")
    for r in rows:
        style = "bold" if r.origin == "overlay" else None
        table.add_row(r.target, r.kind, r.source, r.when, r.origin, style=style)
    Console().print(table)
