"""Is Microsoft's P2C solution for Sales installed? Its columns per table and its processing status values.

p2c reads the solution's columns and leaves numbering, price list items, the Freight Tax
line and the Invoiced status to its plug-ins (FLOWS.md, "The P2C solution in Sales"), so
an org without it fails in ways that name no cause. The columns and values are the managed
solution's (`msdynce_ProspectToCashIntegration`, spec/p2c-solution.json).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

SOLUTION = "Prospect to cash solution for Dynamics 365 Sales (msdynce_ProspectToCashIntegration)"
# Entity set -> the columns the solution adds to it.
COLUMNS: dict[str, tuple[str, ...]] = {
    "contacts": ("msdynce_contactnumber", "msdynce_isactivecustomer", "msdynce_iscompanyanaccount"),
    "products": ("msdynce_ismaintainedexternally",),
    "quotes": ("msdynce_hasexternallymaintainedproductsonly", "msdynce_ismaintainedexternally"),
    "quotedetails": (
        "msdynce_ismaintainedexternally",
        "msdynce_quotehasexternalmaintainedproductsonly",
        "msdynce_quoterevisionnumber",
    ),
    "salesorders": (
        "msdynce_hasexternallymaintainedproductsonly",
        "msdynce_ismaintainedexternally",
        "msdynce_misctax",
        "msdynce_misctax_base",
        "msdynce_processingstatus",
    ),
    "salesorderdetails": (
        "msdynce_ismaintainedexternally",
        "msdynce_ismisctax",
        "msdynce_orderhasexternalmaintainedproductsonly",
        "msdynce_orderissubmitted",
        "msdynce_ordernumber",
    ),
    "invoices": (
        "msdynce_invoicedate",
        "msdynce_hasexternallymaintainedproductsonly",
        "msdynce_ismaintainedexternally",
        "msdynce_misctax",
        "msdynce_misctax_base",
    ),
    "invoicedetails": (
        "msdynce_invoicedate",
        "msdynce_invoicenumber",
        "msdynce_ismaintainedexternally",
        "msdynce_ismisctax",
    ),
    # The solution's own table: its numbering of accounts and contacts.
    "msdynce_p2cautonumbers": (
        "msdynce_entityname",
        "msdynce_name",
        "msdynce_numbersequence",
        "msdynce_prefix",
        "msdynce_suffixlength",
    ),
}
PROCESSING_STATUS: dict[int, str] = {
    647390000: "Active",
    647390001: "Confirmed",
    647390002: "Packing Slip",
    647390003: "Invoiced",
    647390004: "Picked",
    647390005: "Partially Picked",
    647390006: "Partially Packed",
    647390007: "Shipped",
    647390008: "Partially Shipped",
    647390009: "Partially Invoiced",
    647390010: "Cancelled",
    647390011: "Draft",
}
# "Retrieve metadata by name": EntityDefinitions(LogicalName=...)/Attributes(LogicalName=...),
# cast to the attribute's metadata type to expand its OptionSet.
STATUS_ATTRIBUTE = (
    "EntityDefinitions(LogicalName='salesorder')/Attributes(LogicalName='msdynce_processingstatus')"
    "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
)

# (entity set, column or "", what is wrong)
Problem = tuple[str, str, str]


def missing_columns(sets: Mapping[str, Any]) -> list[Problem]:
    """Each solution table or column that `$metadata` (parsed: entity set -> .properties) lacks."""
    out: list[Problem] = []
    for entity_set, columns in COLUMNS.items():
        es = sets.get(entity_set)
        if es is None:
            out.append((entity_set, "", f"table missing: the {SOLUTION} is not installed"))
            continue
        out.extend(
            (entity_set, c, f"column missing: the {SOLUTION} adds it") for c in columns if c not in es.properties
        )
    return out


def missing_status_values(get_options: Callable[[], list[Mapping[str, Any]]]) -> list[Problem]:
    """The processing status values the solution defines that the org's choice column lacks."""
    have = {option.get("Value") for option in get_options()}
    gone = [f"{v} {label}" for v, label in PROCESSING_STATUS.items() if v not in have]
    if not gone:
        return []
    return [("salesorders", "msdynce_processingstatus", f"choice values missing: {', '.join(gone)}")]


def check(sets: Mapping[str, Any], request_json: Callable[[str, dict[str, str]], Any]) -> list[Problem]:
    """Columns first; the status values only where the status column is there to ask about."""
    problems = missing_columns(sets)
    if any(p[:2] == ("salesorders", "msdynce_processingstatus") for p in problems) or "salesorders" not in sets:
        return problems

    def options() -> list[Mapping[str, Any]]:
        body = request_json(STATUS_ATTRIBUTE, {"$select": "LogicalName", "$expand": "OptionSet($select=Options)"})
        return list((body.get("OptionSet") or {}).get("Options") or [])

    return problems + missing_status_values(options)
