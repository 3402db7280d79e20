"""Microsoft's Prospect to cash solution for Sales, as a layer on the sandbox's Dataverse tables.

`data/p2c-solution.json` is a copy of the spec's list of what the managed solution
(`msdynce_ProspectToCashIntegration`, publisher prefix `msdynce`) declares: its columns with
types and option values per table, its own table `msdynce_p2cautonumber`, and its plug-in
steps (their behaviour is p2c_sandbox/plugins.py). `with_solution` adds the columns to the
standard tables; a sandbox without it is an org where the solution is not installed.
"""

from __future__ import annotations

import dataclasses
import json
from functools import cache
from typing import Any

from p2c_sandbox.schema import DATA, DATAVERSE, EntitySchema, Prop, _dv

NAME = "msdynce_ProspectToCashIntegration"
PREFIX = "msdynce_"
AUTONUMBER_TABLE = "msdynce_p2cautonumber"
AUTONUMBER_SET = "msdynce_p2cautonumbers"


@cache
def spec() -> dict[str, Any]:
    return json.loads((DATA / "p2c-solution.json").read_text())


def _prop(column: dict[str, Any]) -> Prop:
    kind = column["type"]
    if kind == "nvarchar":
        return Prop("Edm.String", max_length=column.get("max_length"))
    if kind == "bit":
        return Prop("Edm.Boolean")
    if kind == "money":
        return Prop("Edm.Decimal")
    if kind == "int":
        return Prop("Edm.Int32")
    if kind == "picklist":
        return Prop("Edm.Int32", options=tuple(value for value, _ in column["options"]))
    if kind == "primarykey":
        return Prop("Edm.Guid", nullable=False)
    if kind == "datetime":
        # The XML's format and behaviour are not in the spec; the invoice date is a day (as the
        # template maps F&O's InvoiceDate), so DateOnly, which the Web API serves as Edm.Date.
        return Prop("Edm.Date")
    raise ValueError(f"unknown P2C column type {kind!r}")


def columns(table: str) -> dict[str, Prop]:
    """The solution's columns on one table (by logical name), as sandbox properties."""
    return {name: _prop(column) for name, column in spec()["columns"].get(table, {}).items()}


def choices() -> dict[str, list[tuple[int, str]]]:
    """Option values and labels of the solution's choice columns (the metadata API serves them)."""
    out: dict[str, list[tuple[int, str]]] = {}
    for table in spec()["columns"].values():
        for name, column in table.items():
            if column["type"] == "picklist":
                out[name] = [(value, label) for value, label in column["options"]]
    return out


def processing_status(label: str) -> int:
    """The value of a `msdynce_processingstatus` option by its label ("Active" -> 647390000)."""
    return next(v for v, text in choices()["msdynce_processingstatus"] if text == label)


def _layer(schema: EntitySchema) -> EntitySchema:
    added = columns(schema.entity_type)
    if not added:
        return schema
    props = {**schema.props, **added}
    # A money column's _base sibling is the server's (the amount in the base currency).
    server = schema.server_columns | {name for name in added if name.endswith("_base")}
    defaults = {**schema.defaults, **{n: False for n, p in added.items() if p.type == "Edm.Boolean"}}
    alt = schema.alternate_keys
    if schema.entity_type == "contact":
        # The org's key on the contact number (an admin's key; p2c and the demo address contacts by it).
        # The solution's plug-in numbers new contacts (p2c_sandbox.plugins).
        alt = (*alt, ("msdynce_contactnumber",))
    return dataclasses.replace(
        schema, props=props, server_columns=frozenset(server), defaults=defaults, alternate_keys=alt
    )


def _autonumber_table() -> EntitySchema:
    cols = columns(AUTONUMBER_TABLE)
    cols.pop(f"{AUTONUMBER_TABLE}id")
    return _dv(AUTONUMBER_SET, AUTONUMBER_TABLE, cols, alt=(("msdynce_entityname",),))


@cache
def with_solution() -> dict[str, EntitySchema]:
    """The standard tables with the solution's columns, plus its own table (one dict, built once)."""
    tables = {name: _layer(schema) for name, schema in DATAVERSE.items()}
    tables[AUTONUMBER_SET] = _autonumber_table()
    return tables


def tables(p2c_solution: bool) -> dict[str, EntitySchema]:
    return with_solution() if p2c_solution else DATAVERSE
