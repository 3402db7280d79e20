"""The demo data: records for all six flows on both sides of every filter term, and source
values for every value map (mapped ones, and the unmapped ones that must fail by name).

Filters and maps are read from the flows themselves (p2c_core.flows) and the demo's value
maps (p2c_cli.local), so a new term or map with no demo data fails here."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from p2c_cli.local import DEMO_VALUE_MAPS
from p2c_core.catalog import VALUE_MAPS
from p2c_core.flow import Bind, Flow, Rule, ValueMap
from p2c_core.flows import all_flows
from p2c_sandbox import Sandbox

# Filter terms the demo data holds one side of only, and why.
ONE_SIDED = {
    # Sales orders from F&O (msdynce_ismaintainedexternally = Yes) are made by the fno_orders
    # flow in the run itself; one seeded in Sales would be an order no flow wrote.
    ("orders", "msdynce_ismaintainedexternally"),
}


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    sandbox = Sandbox()  # never started: the rows are read from the stores
    yield sandbox
    sandbox.dataverse_store.close()
    sandbox.fno_store.close()


def rows(sb: Sandbox, service: str, entity_set: str) -> list[dict[str, Any]]:
    return (sb.dataverse if service == "dataverse" else sb.fno).rows(entity_set)


def test_the_six_flows_each_have_source_records(sb: Sandbox):
    names = {f.name for f in all_flows()}
    assert names == {"accounts", "products", "contacts", "contact_customers", "quotes", "orders", "fno_orders",
                     "invoices"}  # fmt: skip
    for flow in all_flows():
        keyed = [r for r in rows(sb, flow.source.service, flow.source.entity_set) if r.get(flow.source.key)]
        carried = [r for r in keyed if flow.source.where is None or flow.source.where.matches(r)]
        assert carried, flow.name
        if flow.lines is not None and flow.lines.source is not None:
            assert rows(sb, flow.source.service, flow.lines.source), flow.name


def test_every_filter_term_has_records_on_both_sides(sb: Sandbox):
    for flow in all_flows():
        if flow.source.where is None:
            continue
        keyed = [r for r in rows(sb, flow.source.service, flow.source.entity_set) if r.get(flow.source.key)]
        for term in flow.source.where.terms:
            sides = {term.matches(r) for r in keyed}
            expected = {True} if (flow.name, term.column) in ONE_SIDED else {True, False}
            assert sides == expected, (flow.name, term)


def _value_maps(flow: Flow) -> Iterator[tuple[bool, ValueMap]]:
    """(on a line?, rule) for each value map of the flow."""
    rules: list[tuple[bool, Rule]] = [(False, r) for r in [*flow.fields.values(), *flow.on_create.values()]]
    if flow.lines is not None:
        rules += [(True, r) for r in [*flow.lines.fields.values(), *flow.lines.on_create.values()]]
    for on_line, rule in rules:
        inner = rule.source if isinstance(rule, Bind) else rule
        if isinstance(inner, ValueMap):
            yield on_line, inner


def demo_tables() -> dict[str, dict[str, str]]:
    configured = {k.removeprefix("P2C_VALUE_MAPS__").lower(): json.loads(v) for k, v in DEMO_VALUE_MAPS.items()}
    builtin = {name: dict(spec.builtin) for name, spec in VALUE_MAPS.items() if spec.builtin is not None}
    names = {*builtin, *configured}
    return {n: {str(k): str(v) for k, v in {**builtin.get(n, {}), **configured.get(n, {})}.items()} for n in names}


def test_every_value_map_meets_seeded_values_it_maps_and_some_it_does_not(sb: Sandbox):
    tables = demo_tables()
    exercised: dict[str, set[str]] = {}
    unmapped: dict[str, set[str]] = {}
    used = set()
    for flow in all_flows():
        for on_line, rule in _value_maps(flow):
            used.add(rule.map)
            entity_set = flow.lines.source if on_line and flow.lines and flow.lines.source else flow.source.entity_set
            data = rows(sb, flow.source.service, entity_set)
            if not any(rule.column in r for r in data):
                # A lookup (a line's uomid), resolved to its name when read: the products' unit map covers it.
                continue
            values = {str(r[rule.column]).strip() for r in data if r.get(rule.column) not in (None, "")}
            table = tables[rule.map]
            if rule.reverse:  # F&O code -> Sales value: the map read backwards
                table = {v: k for k, v in table.items()}
            folded = {k.casefold(): v for k, v in table.items()} if rule.map == "country" else table
            mapped = {v for v in values if (v.casefold() if rule.map == "country" else v) in folded}
            assert mapped, (flow.name, rule.map, rule.column, sorted(values))
            exercised.setdefault(rule.map, set()).update(
                table[v] if rule.reverse else v for v in mapped if rule.map != "country"
            )
            unmapped.setdefault(rule.map, set()).update(values - mapped)
    assert used == set(exercised), sorted(used - set(exercised))
    # Maps of a closed set of values: every value comes up somewhere in the demo data.
    for name in ("payment_terms", "freight_terms", "shipping_method", "product_type", "unit"):
        assert exercised[name] == set(tables[name]), (name, sorted(set(tables[name]) - exercised[name]))
    # FLOWS.md: "An unmapped value in a configured map fails the record": the demo has one.
    assert unmapped["unit"] == {"spool"}
    # FLOWS.md, countries: a blank country takes the default; the demo has blanks too.
    assert any(not r.get("address1_country") for r in rows(sb, "dataverse", "accounts"))


def test_products_in_a_currency_without_a_price_list(sb: Sandbox):
    # FLOWS.md, products: "No price list in that currency -> the record fails naming the currency."
    currencies = {
        r["transactioncurrencyid"]: r["isocurrencycode"] for r in rows(sb, "dataverse", "transactioncurrencies")
    }
    priced = {currencies[r["_transactioncurrencyid_value"]] for r in rows(sb, "dataverse", "pricelevels")}
    sold = {r["CurrencyCode"] for r in rows(sb, "fno", "CDSReleasedDistinctProducts")}
    assert sold - priced == {"GBP"} and sold & priced
