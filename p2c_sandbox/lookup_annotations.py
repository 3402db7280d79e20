"""Lookup annotations on Dataverse reads, when the request asks for them.

"Lookup property data" (Web API, Query data): with `Prefer: odata.include-annotations="*"`
(or the names wanted, comma-separated, `Microsoft.Dynamics.CRM.*` and the like) each
non-empty `_<lookup>_value` comes with `@Microsoft.Dynamics.CRM.lookuplogicalname` (the
table of the row it points to: `systemuser` or `team` for an owner, `account` or `contact`
for a customer), `@Microsoft.Dynamics.CRM.associatednavigationproperty` (the single-valued
navigation property to bind it by) and `@OData.Community.Display.V1.FormattedValue` (the
related row's primary name). Formatted values of other columns are not served.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from p2c_sandbox import reference
from p2c_sandbox.schema import EntitySchema
from p2c_sandbox.store import Row

if TYPE_CHECKING:
    from p2c_sandbox.org import Org

LOGICAL = "Microsoft.Dynamics.CRM.lookuplogicalname"
NAVIGATION = "Microsoft.Dynamics.CRM.associatednavigationproperty"
FORMATTED = "OData.Community.Display.V1.FormattedValue"
_PREFERENCE = re.compile(r'odata\.include-annotations\s*=\s*(?:"([^"]*)"|([^,;\s]*))', re.IGNORECASE)
_PRIMARY_NAME = {"contact": "fullname", "systemuser": "fullname", "transactioncurrency": "currencyname"}


def wanted(prefer: str) -> tuple[str, ...]:
    """The annotation names (or `*` patterns) a Prefer header asks for."""
    match = _PREFERENCE.search(prefer)
    if match is None:
        return ()
    text = match.group(1) if match.group(1) is not None else match.group(2)
    return tuple(p.strip() for p in text.split(",") if p.strip() and not p.strip().startswith("-"))


def applied(prefer: str) -> str | None:
    """The Preference-Applied entry echoing what was asked for, or None."""
    names = wanted(prefer)
    return f'odata.include-annotations="{",".join(names)}"' if names else None


def _matches(name: str, patterns: tuple[str, ...]) -> bool:
    return any(p == "*" or p == name or (p.endswith(".*") and name.startswith(p[:-1])) for p in patterns)


def add(service: Org, schema: EntitySchema, row: Row, out: Row, patterns: tuple[str, ...]) -> None:
    """Annotate the lookups in a projected row (`out`) from the stored one (`row`), in place."""
    for prop in list(out):
        if not (prop.startswith("_") and prop.endswith("_value")) or out[prop] is None:
            continue
        target = _target(service, schema, prop[1:-6], row)
        if target is None:
            continue
        logical, nav, entity_set = target
        notes: dict[str, object] = {}
        if entity_set is not None and _matches(FORMATTED, patterns):
            related = service.store.get(entity_set, out[prop])
            name = (related or {}).get(_PRIMARY_NAME.get(logical, "name"))
            if name is not None:
                notes[FORMATTED] = name
        if _matches(NAVIGATION, patterns):
            notes[NAVIGATION] = nav
        if _matches(LOGICAL, patterns):
            notes[LOGICAL] = logical
        for note, value in notes.items():
            out[f"{prop}@{note}"] = value


def _target(service: Org, schema: EntitySchema, column: str, row: Row) -> tuple[str, str, str | None] | None:
    """(target table, navigation property, target set or None when not served) of a lookup value."""
    if column == "ownerid" and row.get("owneridtype"):
        kind = row["owneridtype"]
        return kind, "ownerid", "teams" if kind == "team" else "systemusers"
    navs = [nav for nav in schema.lookups if schema.lookup_columns.get(nav, nav) == column]
    for nav in navs:
        entity_set = schema.lookups[nav]
        if len(navs) == 1 or service.store.get(entity_set, row.get(f"_{column}_value") or "") is not None:
            return service.schemas[entity_set].entity_type, nav, entity_set
    spec = reference.column(schema.entity_type, column)
    if spec is None or not spec.get("targets"):
        return None
    return spec["targets"][0], (spec.get("navigation_properties") or [column])[0], None
