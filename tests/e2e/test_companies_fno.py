"""Several companies, F&O -> Sales (issue 23): products, F&O-born orders and invoices of each
legal entity land in Sales owned by its team, with their customers of that company, and
nothing reaches a company it does not belong to. Expectations are computed per company
from what F&O holds, not written down."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2c_cli.local import TWO_COMPANIES
from p2c_core import ops
from p2c_core.flows import all_flows, get_flow
from p2c_sandbox.fno import row_pk
from p2c_sandbox.seed_documents import released_product
from p2c_sandbox.seed_options import Companies
from tests.e2e.conftest import E2E

ALL = [f.name for f in all_flows()]


@pytest.fixture
def sandbox_options() -> dict[str, object]:
    return {"companies": Companies.BUSINESS_UNITS}  # German Sales rows of Contoso DE too


@pytest.fixture
def two(e2e: E2E, monkeypatch: pytest.MonkeyPatch) -> E2E:
    monkeypatch.setenv("P2C_COMPANIES", json.dumps(TWO_COMPANIES))
    monkeypatch.setenv("P2C_RECORD_RETRY_BASE_SECONDS", "0.2")
    e2e.restart_runtime()
    return e2e


def teams(e2e: E2E) -> dict[str, str]:
    """Company -> the id of its business unit's default team, as Sales holds them."""
    default = {r["_businessunitid_value"]: r["teamid"] for r in e2e.sandbox.dataverse.rows("teams") if r["isdefault"]}
    return {c: default[u] for c, u in units(e2e).items()}


def units(e2e: E2E) -> dict[str, str]:
    """Company -> the id of its business unit."""
    by_name = {r["name"]: r["businessunitid"] for r in e2e.sandbox.dataverse.rows("businessunits")}
    return {c: by_name[str(entry["business_unit"])] for c, entry in TWO_COMPANIES.items()}


def fno_rows(e2e: E2E, company: str, flow: str) -> list[dict[str, Any]]:
    """The rows of a company the flow's source selects, as F&O answers them."""
    source = get_flow(flow).source
    where = source.where.odata() if source.where else None
    client = e2e.runtime.fno_for(company)
    return [r for page in client.query(source.entity_set, select=[source.key], filter=where) for r in page.rows]


def sales(e2e: E2E, entity_set: str, key: str) -> dict[str, dict[str, Any]]:
    return {str(r[key]).casefold(): r for r in e2e.sandbox.dataverse.rows(entity_set) if r.get(key)}


def test_f_and_o_born_records_of_each_company_are_owned_by_its_team_and_reach_no_other(two: E2E):
    documents = ("fno_orders", "invoices")
    targets = {flow: (get_flow(flow).target.entity_set, get_flow(flow).target.key) for flow in documents}
    before = {flow: set(sales(two, *targets[flow])) for flow in documents}
    summary = two.sync(*ALL)
    assert summary.waiting == []
    team, unit = teams(two), units(two)
    account_unit = {r["accountid"]: r["_owningbusinessunit_value"] for r in two.sandbox.dataverse.rows("accounts")}
    company_of: dict[str, dict[str, str]] = {}  # flow -> number (case-folded) -> its company in F&O
    for flow in documents:
        for company in TWO_COMPANIES:
            for row in fno_rows(two, company, flow):
                number = str(row[get_flow(flow).source.key]).casefold()
                assert number not in company_of.setdefault(flow, {}), f"{flow} {number} in two companies"
                company_of[flow][number] = company
    for flow in documents:
        assert set(company_of[flow].values()) == set(TWO_COMPANIES), f"{flow}: documents of both companies"
        now = sales(two, *targets[flow])
        for number, company in company_of[flow].items():
            row = now.get(number)
            assert row is not None, f"{flow} {number} of {company} is not in Sales"
            # In its company's business unit, for its company's customer; F&O-born: the team's.
            assert row["_owningbusinessunit_value"] == unit[company], f"{flow} {number}: not in {company}"
            assert account_unit.get(row["_customerid_value"]) == unit[company], f"{flow} {number}: customer"
            if flow == "fno_orders" and number not in before[flow]:
                assert row["_ownerid_value"] == team[company], f"{flow} {number}: owner of {company} expected"
        for number in set(now) - before[flow]:  # nothing p2c created is of a company it is not of
            assert number in company_of[flow], f"{flow} {number} created in Sales, of no company"
    for flow in ("products", *documents):  # reconcile reads each company and finds both sides equal
        drift = ops.reconcile(two.runtime, flow)
        assert (drift.missing, drift.differing, drift.extra) == ([], {}, []), flow
        if flow in documents:  # every company's documents were compared
            assert drift.source_records == len(company_of[flow]) and not drift.unmappable, flow


def release(e2e: E2E, company: str, number: str, price: float, currency: str) -> None:
    """A released product in one company, as F&O holds it."""
    fno = e2e.sandbox.fno_service
    row = released_product(fno, number, f"Produkt {number}", f"Produkt {number}", "ea", "Item", price, 1.0, currency)
    row["dataAreaId"] = company
    fno.store.put("CDSReleasedDistinctProducts", row_pk(fno.schemas["CDSReleasedDistinctProducts"], row), row)


def test_a_product_released_in_both_companies_is_one_sales_product_of_the_first(two: E2E):
    release(two, "demf", "D0003", 111.0, "EUR")  # a US product released in Germany at another price
    release(two, "demf", "DE-9001", 42.0, "EUR")  # a German product only
    usmf = {str(r["ProductNumber"]) for r in fno_rows(two, "usmf", "products")}
    demf = {str(r["ProductNumber"]) for r in fno_rows(two, "demf", "products")}
    both, german = usmf & demf, demf - usmf
    assert {"D0003"} <= both and {"DE-9001"} <= german
    two.sync("products")
    products = [r for r in two.sandbox.dataverse.rows("products") if r.get("productnumber") in usmf | demf]
    numbers = [str(r["productnumber"]) for r in products]
    assert len(numbers) == len(set(numbers)) and {"D0003", "DE-9001"} <= set(numbers)  # one product per number
    failed = {two.runtime.companies.split(f.source_key)[1] for f in two.runtime.state.failures("products")}
    assert set(numbers) | failed == usmf | demf  # the rest failed on purpose (seeded examples)
    price = {
        (r["dataAreaId"], r["ProductNumber"]): r["SalesPrice"]
        for r in two.sandbox.fno.rows("CDSReleasedDistinctProducts")
    }
    for row in products:  # organization-owned: the values of the first company that releases it
        number = str(row["productnumber"])
        owner = "usmf" if number in usmf else "demf"
        assert row["price"] == price[(owner, number)], f"{number}: the price of {owner}"
    keys = {e.source_key for e in two.runtime.state.entries("products")}
    assert not {f"demf|{n}" for n in both} & keys and {f"demf|{n}" for n in german} <= keys
    assert {f"usmf|{n}" for n in usmf} <= keys


def test_adding_companies_keeps_the_default_company_s_reads_and_starts_the_other_s(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
):
    e2e.sync("products")  # one company (P2C_FNO_COMPANY only): cursor and digests as always stored
    sent = e2e.runtime.state.seen("products")
    assert sent and e2e.runtime.state.get_cursor("products").etag is not None
    release(e2e, "demf", "DE-9001", 42.0, "EUR")
    monkeypatch.setenv("P2C_COMPANIES", json.dumps(TWO_COMPANIES))
    e2e.restart_runtime()
    summary = e2e.sync("products")
    # usmf reads on from its stored digests and sends nothing again; demf sends the products
    # it alone releases (the others are usmf's).
    demf = {str(r["ProductNumber"]) for r in fno_rows(e2e, "demf", "products")}
    usmf = {str(r["ProductNumber"]) for r in fno_rows(e2e, "usmf", "products")}
    assert "DE-9001" in demf - usmf
    assert summary.flows["products"].written == len(demf - usmf) and summary.flows["products"].failed == 0
    assert summary.flows["products"].read == len(demf)  # usmf's scan read nothing it had not sent
    assert e2e.runtime.state.seen("products") == sent
    assert set(e2e.runtime.state.seen("products", "demf")) == demf
    assert e2e.runtime.state.get_cursor("products", "demf").etag is not None
    assert sales(e2e, "products", "productnumber")["de-9001"]["price"] == 42.0


def test_an_idle_tick_costs_one_request_per_flow_and_company(two: E2E):
    two.sync(*ALL)
    timers = {t.name: t for t in two.host.timers()}
    services = (two.sandbox.dataverse_service, two.sandbox.fno_service)
    for flow in ("products", "fno_orders", "invoices"):
        for service in services:
            service.accounting.reset()
        two.host.fire(timers[f"{flow}_poll"])
        requests = [(r["method"], r["entity_set"]) for svc in services for r in svc.accounting.snapshot()["requests"]]
        # One read of each company (the seen digests are state, not a service request).
        assert sum(svc.accounting.snapshot()["total"] for svc in services) == len(TWO_COMPANIES), (flow, requests)
        assert two.host.depth(get_flow(flow).queue) == 0
