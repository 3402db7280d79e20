"""A company's record naming a Sales row that a Sales -> F&O flow carries (an F&O order's or
invoice's customer): found within that company, never in another.

With several companies (P2C_COMPANIES) one customer number can be a customer of two
companies (routing by dual-write's company column), and a Sales account of one business
unit must not become the customer of another company's order. So the row is the one the
carrying flow (`accounts`, `contact_customers`) synced for the record's company: its key map
entry under `company|number` keeps the Sales row id. An entry written before the company
map (a bare key) counts for the default company only. Reference data (units, currencies,
price lists) is the org's, looked up as with one company.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from p2c_core.flow import Dataverse
from p2c_core.state import KeyMapEntry


def carrying_flows(entity_set: str, column: str) -> list[str]:
    """The Sales -> F&O flows whose source rows are `entity_set` keyed by `column`, when only
    Sales makes those rows (customers). Rows an F&O -> Sales flow also makes (orders: Sales-
    and F&O-born) are found by their number, which is one per org (docs/companies-products.md)."""
    from p2c_core.flows import all_flows

    flows = all_flows()
    if any(isinstance(f.target, Dataverse) and f.target.entity_set == entity_set for f in flows):
        return []
    return [
        f.name
        for f in flows
        if isinstance(f.source, Dataverse) and f.source.entity_set == entity_set and f.source.key == column
    ]


def scoped_row_id(
    entry: Callable[[str, str], KeyMapEntry | None],
    stored_key: Callable[[str], str],
    default: bool,
    row_id: Callable[[str, str, Any], str | None],
    entity_set: str,
    column: str,
    value: Any,
) -> str | None:
    """`Resolver.row_id` for one company's records (references.py): a carried row is the one
    synced for this company (None: not synced for it, the record waits); others as before."""
    flows = carrying_flows(entity_set, column)
    if not flows:
        return row_id(entity_set, column, value)
    for name in flows:
        for key in (stored_key(str(value)), *([str(value)] if default else [])):
            hit = entry(name, key)
            if hit is not None and hit.version >= 0:
                # An entry from before row ids were kept: the row by its number.
                return hit.source_id or row_id(entity_set, column, value)
    return None
