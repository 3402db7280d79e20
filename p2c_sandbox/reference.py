"""Dataverse's standard columns, from Microsoft's table reference (`data/dataverse-entities.json`).

The tables in schema.py declare the columns p2c maps (and the P2C solution's); every other
standard column of a table the reference file describes is added from it, with its type,
length, lookup targets and create/update validity, so a client may read and write a real
org's columns (`revenue` on account). Money columns get their read-only `<name>_base`
sibling and the record its `exchangerate`, computed on each write (`base_amounts`).
"""

from __future__ import annotations

import json
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Any

from p2c_sandbox.schema import EntitySchema, Prop

DATA = Path(__file__).resolve().parent / "data"
LOOKUPS = ("Lookup", "Customer", "Owner")
CHOICES = ("Picklist", "State", "Status")
# The reference's AttributeType -> the Web API's EDM type ("Use the Dataverse Web API":
# Money and Decimal are Edm.Decimal, choices Edm.Int32, images Edm.Binary).
_EDM = {
    "String": "Edm.String", "Memo": "Edm.String", "EntityName": "Edm.String", "Picklist": "Edm.Int32",
    "State": "Edm.Int32", "Status": "Edm.Int32", "Integer": "Edm.Int32", "BigInt": "Edm.Int64",
    "Money": "Edm.Decimal", "Decimal": "Edm.Decimal", "Double": "Edm.Double", "Boolean": "Edm.Boolean",
    "Uniqueidentifier": "Edm.Guid", "DateTime": "Edm.DateTimeOffset", "Image": "Edm.Binary",
}  # fmt: skip


@cache
def tables() -> dict[str, dict[str, Any]]:
    """Logical name -> the table's reference entry (properties by column)."""
    return json.loads((DATA / "dataverse-entities.json").read_text())["entities"]


def column(logical: str, name: str) -> dict[str, Any] | None:
    """A column's reference facts, or None when the reference does not describe it."""
    return tables().get(logical, {}).get("properties", {}).get(name)


def _prop(spec: dict[str, Any]) -> Prop | None:
    edm = _EDM.get(spec["type"])
    if edm is None:
        return None
    if spec["type"] == "DateTime" and spec.get("datetime_behavior") == "DateOnly":
        edm = "Edm.Date"  # only DateOnly *behaviour* makes an Edm.Date (schema.Prop.date_only)
    # A choice takes its options' values only (the reference lists every option).
    options = tuple(int(v) for v in spec["options"]) if spec["type"] in CHOICES and spec.get("options") else None
    return Prop(edm, max_length=spec.get("max_length"), date_only=spec.get("format") == "DateOnly", options=options)


def extend(schemas: dict[str, EntitySchema]) -> None:
    """Add each table's standard columns and single-target lookups to served tables, in place.
    A column the table already declares keeps its declaration."""
    served = {s.entity_type: s.entity_set for s in schemas.values()}
    for schema in schemas.values():
        declared_lookups = set(schema.lookups) | set(schema.lookup_columns.values())
        for name, spec in tables().get(schema.entity_type, {}).get("properties", {}).items():
            if spec["type"] not in LOOKUPS:
                prop = _prop(spec)
                if prop is not None:
                    schema.props.setdefault(name, prop)
                continue
            schema.props.setdefault(f"_{name}_value", Prop("Edm.Guid"))
            targets = spec.get("targets") or []
            if len(targets) == 1 and targets[0] in served and name not in declared_lookups:
                # The navigation property the page names (QuoteDetailId), else the column's name.
                nav = (spec.get("navigation_properties") or [name])[0]
                schema.lookups[nav] = served[targets[0]]
                if nav != name:
                    schema.lookup_columns[nav] = name


def not_writable(schema: EntitySchema, *, creating: bool) -> frozenset[str]:
    """Columns a write may not set, by the name a write body uses them under: on update those
    not valid for update (IsValidForUpdate false: read-only and create-only columns); on create
    the read-only ones (valid for neither). A column valid for update only (account's
    statecode) is taken on create, as an upsert that creates sends it (docs/fidelity.md)."""
    return _not_writable(schema.entity_type, creating)


@cache
def _not_writable(logical: str, creating: bool) -> frozenset[str]:
    out = set()
    for name, spec in tables().get(logical, {}).get("properties", {}).items():
        refused = not spec["valid_for_update"] and (not creating or not spec["valid_for_create"])
        if refused:
            out.add(f"_{name}_value" if spec["type"] in LOOKUPS else name)
    return frozenset(out)


def money_columns(logical: str) -> list[str]:
    """Money columns with a `_base` sibling in the reference."""
    props = tables().get(logical, {}).get("properties", {})
    return [
        n for n, s in props.items() if s["type"] == "Money" and not s.get("is_base_currency") and f"{n}_base" in props
    ]


def base_amounts(logical: str, row: dict[str, Any], rate: float | None) -> dict[str, Any]:
    """`exchangerate` and every `<money>_base` of a row, as Dataverse computes them on save:
    the base amount is the amount divided by the record's exchange rate (the rate of its
    currency to the base currency: transactioncurrency.exchangerate), to the base column's
    precision of 4 (dataverse-entities.json: `_base` columns have precision 4)."""
    columns = money_columns(logical)
    if not columns:
        return {}
    out: dict[str, Any] = {"exchangerate": rate} if column(logical, "exchangerate") else {}
    for name in columns:
        value = row.get(name)
        if value is None or not rate:
            out[f"{name}_base"] = None
            continue
        base = (Decimal(str(value)) / Decimal(str(rate))).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
        out[f"{name}_base"] = float(base)
    return out
