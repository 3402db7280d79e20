"""Several legal entities on the sandbox's two-company seed (issue 23, acceptance 1 and 2, the
Sales side): Contoso DE's accounts, contacts, quotes and orders land in demf, Contoso US's in
usmf, field by field; under dual-write's company column one account number is two customers."""

from __future__ import annotations

from typing import Any

import pytest

from p2c_sandbox import Companies
from p2c_sandbox.seed_german_sales import ACCOUNT_NUMBERS, SHARED_NUMBER
from p2c_sandbox.seed_sales_companies import CONTOSO_DE

from .conftest import E2E
from .test_companies import BY_UNIT, assert_in_their_companies, customers, use_companies

SALES_FLOWS = ("accounts", "contact_customers", "contacts", "quotes", "orders")
BY_CODE = {
    "usmf": {"company_code": "USMF"},
    "demf": {"company_code": "DEMF", "defaults": {"customer_group": "40", "language": "de"}},
}


def rows(e2e: E2E, entity_set: str, company: str) -> list[dict[str, Any]]:
    return [r for r in e2e.sandbox.fno.rows(entity_set) if r["dataAreaId"] == company]


def german(e2e: E2E, entity_set: str, number: str) -> set[str]:
    return {
        r[number] for r in e2e.sandbox.dataverse.rows(entity_set) if r.get("_owningbusinessunit_value") == CONTOSO_DE
    }


@pytest.mark.parametrize("sandbox_options", [{"companies": Companies.BUSINESS_UNITS}])
def test_every_sales_record_lands_in_the_company_its_business_unit_maps_to(e2e: E2E, monkeypatch):
    natives = {c: set(customers(e2e, c)) for c in ("usmf", "demf")}
    use_companies(e2e, monkeypatch, BY_UNIT)
    summary = e2e.sync(*SALES_FLOWS)
    assert_in_their_companies(e2e, natives)
    de = customers(e2e, "demf")
    assert set(ACCOUNT_NUMBERS) <= set(de) and not set(ACCOUNT_NUMBERS) & set(customers(e2e, "usmf"))
    assert {de[n]["CustomerGroupId"] for n in ACCOUNT_NUMBERS} == {"40"}  # demf's own default
    # Documents: German quotes and orders in demf only, their customers and products found there.
    for entity_set, number, header, lines, customer in (
        (
            "quotes",
            "quotenumber",
            "CDSSalesQuotationHeaders",
            "CDSSalesQuotationLines",
            "RequestingCustomerAccountNumber",
        ),
        ("salesorders", "ordernumber", "CDSSalesOrderHeaders", "CDSSalesOrderLines", "OrderingCustomerAccountNumber"),
    ):
        numbers = german(e2e, entity_set, number)
        assert len(numbers) == 2
        key = header.replace("CDS", "").replace("Headers", "Number")
        in_de = {r[key]: r for r in rows(e2e, header, "demf")}
        assert numbers <= set(in_de), (entity_set, summary)
        assert not numbers & {r[key] for r in rows(e2e, header, "usmf")}
        assert {in_de[n][customer] for n in numbers} <= set(ACCOUNT_NUMBERS)
        written = [r for r in rows(e2e, lines, "demf") if r[key] in numbers]
        assert {(r["ProductNumber"], r["SalesUnitSymbol"]) for r in written} == {("D0001", "ea"), ("S0001", "hr")}
        assert not [r for r in rows(e2e, lines, "usmf") if r[key] in numbers]
    # A German contact is a contact person of its demf customer's party.
    parties = {r["PartyNumber"] for r in rows(e2e, "CustomersV3", "demf") if r["CustomerAccount"] in ACCOUNT_NUMBERS}
    contacts = german(e2e, "contacts", "msdynce_contactnumber")
    people = [r for r in rows(e2e, "CDSContactPersons", "demf") if r["ContactPersonPartyNumber"] in contacts]
    assert len(people) == len(contacts) == 4 and {p["AssociatedPartyNumber"] for p in people} <= parties
    assert not [r for r in rows(e2e, "CDSContactPersons", "usmf") if r["ContactPersonPartyNumber"] in contacts]


@pytest.mark.parametrize("sandbox_options", [{"companies": Companies.DUAL_WRITE}])
def test_routed_by_the_company_column_one_account_number_in_two_companies_is_two_customers(e2e: E2E, monkeypatch):
    natives = {c: set(customers(e2e, c)) for c in ("usmf", "demf")}
    use_companies(e2e, monkeypatch, BY_CODE)
    e2e.sync("accounts")
    assert_in_their_companies(e2e, natives)
    us, de = customers(e2e, "usmf"), customers(e2e, "demf")
    assert us[SHARED_NUMBER]["OrganizationName"] == "Fabrikam Holdings"
    assert de[SHARED_NUMBER]["OrganizationName"] == "Fabrikam Holdings GmbH"
    assert (us[SHARED_NUMBER]["CustomerGroupId"], de[SHARED_NUMBER]["CustomerGroupId"]) == ("10", "40")
    state = e2e.runtime.state
    assert state.get_entry("accounts", f"usmf|{SHARED_NUMBER}") and state.get_entry("accounts", f"demf|{SHARED_NUMBER}")
    assert e2e.sync("accounts").flows["accounts"].written == 0  # neither overwrites the other
