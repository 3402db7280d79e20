"""The seed's two legal entities: Sales business units, teams and users in every mode; the
German Sales rows only with Companies.BUSINESS_UNITS; dual-write's company model only with
Companies.DUAL_WRITE, where one account number exists once per company."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from p2c_sandbox import Companies, Sandbox
from p2c_sandbox.seed_companies import PRODUCTS as DEMF_PRODUCTS
from p2c_sandbox.seed_german_sales import ACCOUNT_NUMBERS, CDM_DEMF, CDM_USMF, LINE_PRODUCTS, SHARED_NUMBER
from p2c_sandbox.seed_sales_companies import CONTOSO_DE, CONTOSO_US, DE_TEAM, US_TEAM

SALES = ("accounts", "contacts", "quotes", "salesorders")
# The one-company demo data, as it was before business units (tests and `p2c demo` rely on it).
ONE_COMPANY_ROWS = {"accounts": 58, "contacts": 56, "quotes": 24, "salesorders": 16}


def _sandbox(companies: Companies) -> Iterator[Sandbox]:
    sandbox = Sandbox(companies=companies)  # never started: the rows are read from the stores
    yield sandbox
    sandbox.dataverse_store.close()
    sandbox.fno_store.close()


@pytest.fixture(scope="module")
def one() -> Iterator[Sandbox]:
    yield from _sandbox(Companies.ONE)


@pytest.fixture(scope="module")
def units() -> Iterator[Sandbox]:
    yield from _sandbox(Companies.BUSINESS_UNITS)


def units_of(sb: Sandbox, entity_set: str) -> Counter[str]:
    return Counter(r["_owningbusinessunit_value"] for r in sb.dataverse.rows(entity_set))


def test_one_company_sales_rows_are_as_before_and_all_contoso_us(one: Sandbox):
    assert {s: len(one.dataverse.rows(s)) for s in SALES} == ONE_COMPANY_ROWS
    for entity_set in (*SALES, "quotedetails", "salesorderdetails"):
        assert set(units_of(one, entity_set)) == {CONTOSO_US}, entity_set
    owners = Counter(r["owneridtype"] for r in one.dataverse.rows("accounts"))
    assert owners["team"] and owners["systemuser"]  # some accounts are the unit's team's
    assert {r["_ownerid_value"] for r in one.dataverse.rows("accounts") if r["owneridtype"] == "team"} == {US_TEAM}
    assert "cdm_companies" not in one.dataverse_service.schemas
    assert "_msdyn_company_value" not in one.dataverse_service.schemas["accounts"].props


def test_demf_holds_customers_products_orders_and_invoices(one: Sandbox):
    def demf(entity_set: str) -> list[dict[str, Any]]:
        return [r for r in one.fno.rows(entity_set) if r["dataAreaId"] == "demf"]

    assert len(demf("CustomersV3")) == 4
    released = {r["ProductNumber"]: r for r in demf("CDSReleasedDistinctProducts")}
    assert set(released) == {p[0] for p in DEMF_PRODUCTS}
    usmf = {r["ProductNumber"]: r["ProductName"] for r in one.fno.rows("CDSReleasedDistinctProducts")
            if r["dataAreaId"] == "usmf"}  # fmt: skip
    # One product, one name: a number released in both companies names the same product.
    assert all(usmf[n] == r["ProductName"] for n, r in released.items() if n in usmf)
    assert {r["CurrencyCode"] for r in released.values()} == {"EUR"}
    statuses = Counter(r["SalesOrderProcessingStatus"] for r in demf("CDSSalesOrderHeaders"))
    assert statuses == {"Confirmed": 2, "Invoiced": 2}  # only its own customers' orders in one-company mode
    # The invoice entities hold invoices of customers from Sales only (flows/invoices.py): none of demf's own.
    assert demf("ExternallyMaintainedCustomerSalesInvoiceHeaders") == []
    assert {r["LegalEntityId"] for r in one.fno.rows("LegalEntities")} == {"USMF", "DEMF"}


def test_german_sales_rows_are_contoso_de_s(units: Sandbox):
    added = {s: len(units.dataverse.rows(s)) - n for s, n in ONE_COMPANY_ROWS.items()}
    assert added == {"accounts": 4, "contacts": 4, "quotes": 2, "salesorders": 2}
    for entity_set in (*SALES, "quotedetails", "salesorderdetails"):
        assert set(units_of(units, entity_set)) == {CONTOSO_US, CONTOSO_DE}, entity_set
    german = [r for r in units.dataverse.rows("accounts") if r["_owningbusinessunit_value"] == CONTOSO_DE]
    assert sorted(r["accountnumber"] for r in german) == ACCOUNT_NUMBERS
    eur = next(r for r in units.dataverse.rows("transactioncurrencies") if r["isocurrencycode"] == "EUR")
    assert {r["address1_country"] for r in german} == {"Germany"}
    assert {r["_transactioncurrencyid_value"] for r in german} == {eur["transactioncurrencyid"]}
    # Their documents' products are released in demf.
    products = {r["productid"]: r["productnumber"] for r in units.dataverse.rows("products")}
    lines = [r for r in units.dataverse.rows("salesorderdetails") if r["_owningbusinessunit_value"] == CONTOSO_DE]
    assert {products[r["_productid_value"]] for r in lines} == set(LINE_PRODUCTS) <= {p[0] for p in DEMF_PRODUCTS}
    # F&O-born orders in demf of two of them, waiting for p2c to make them customers.
    orders = [
        r for r in units.fno.rows("CDSSalesOrderHeaders") if r["OrderingCustomerAccountNumber"] in ACCOUNT_NUMBERS
    ]
    assert {(r["dataAreaId"], r["OrderingCustomerIsExternallyMaintained"]) for r in orders} == {("demf", "Yes")}
    assert len(orders) == 2
    # One of them invoiced: demf's invoice of a customer from Sales.
    invoiced = [
        r for r in units.fno.rows("ExternallyMaintainedCustomerSalesInvoiceHeaders") if r["dataAreaId"] == "demf"
    ]
    assert [r["InvoiceCustomerAccountNumber"] for r in invoiced] == ["ACC-09002-DE"]


def test_dual_write_companies_and_one_account_number_in_two():
    with (
        Sandbox(companies=Companies.DUAL_WRITE) as sb,
        httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/") as dv,
    ):
        codes = {r["cdm_companycode"]: r["cdm_companyid"] for r in dv.get("cdm_companies").json()["value"]}
        assert codes == {"USMF": CDM_USMF, "DEMF": CDM_DEMF}
        for entity_set in SALES:
            stamped = {
                (r["_owningbusinessunit_value"], r["_msdyn_company_value"]) for r in sb.dataverse.rows(entity_set)
            }
            assert stamped == {(CONTOSO_US, CDM_USMF), (CONTOSO_DE, CDM_DEMF)}, entity_set
        assert {r["_msdyn_company_value"] for r in sb.dataverse.rows("products")} == {CDM_USMF}  # org-owned: usmf's
        shared = dv.get("accounts", params={"$filter": f"accountnumber eq '{SHARED_NUMBER}'"}).json()["value"]
        assert sorted(r["_msdyn_company_value"] for r in shared) == sorted([CDM_USMF, CDM_DEMF])
        key = f"accounts(accountnumber='{SHARED_NUMBER}',_msdyn_company_value={CDM_DEMF})"
        assert dv.get(key).json()["_owningbusinessunit_value"] == CONTOSO_DE
        # Unique per company: the same number again in DEMF is refused, in a new company's row it is not.
        again = {
            "name": "Dup",
            "accountnumber": SHARED_NUMBER,
            "msdyn_company@odata.bind": f"/cdm_companies({CDM_DEMF})",
        }
        refused = dv.post("accounts", json=again)
        assert (
            refused.status_code == 412 and "accountnumber, _msdyn_company_value" in refused.json()["error"]["message"]
        )
        assert dv.get(f"accounts(accountnumber='{SHARED_NUMBER}')").status_code == 400  # not a key in this mode
        owned = dv.post("salesorders", json={"name": "DE", "ownerid@odata.bind": f"/teams({DE_TEAM})",
                                             "msdyn_company@odata.bind": f"/cdm_companies({CDM_DEMF})"},
                        headers={"Prefer": "return=representation"}).json()  # fmt: skip
        assert (owned["_msdyn_company_value"], owned["_owningbusinessunit_value"]) == (CDM_DEMF, CONTOSO_DE)


def test_the_p2c_key_keeps_account_numbers_unique_across_the_org(sb: Sandbox, dv: httpx.Client):
    number = sb.dataverse.rows("accounts")[0]["accountnumber"]
    refused = dv.post("accounts", json={"name": "Same number", "accountnumber": number})
    assert refused.status_code == 412
