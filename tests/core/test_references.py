"""References on the sandbox: customers by key map or F&O look-up, Sales rows (cached), price lists."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import pytest

from p2c_core.errors import DependencyMissing, MappingError
from p2c_core.flows import get_flow
from p2c_core.references import References
from p2c_core.rules import Reference, ReferenceRule
from p2c_core.state import KeyMapEntry
from tests.core.sandboxed import Services, services


@pytest.fixture
def sx() -> Iterator[Services]:
    with services() as s:
        yield s


def references(
    sx: Services,
    entries: dict[tuple[str, str], KeyMapEntry] | None = None,
    price_lists: Mapping[str, str] | None = None,
) -> tuple[References, list[tuple[str, str]]]:
    """References on the sandbox with a key map of `entries`; also the key map look-ups it makes."""
    asked: list[tuple[str, str]] = []

    def entry(flow: str, key: str) -> KeyMapEntry | None:
        asked.append((flow, key))
        return (entries or {}).get((flow, key))

    refs = References(dataverse=sx.dataverse, fno=sx.fno, entry=entry, flow=get_flow, price_lists=lambda: price_lists)
    return refs, asked


def test_a_customer_the_key_map_has_applied_is_found_without_a_request(sx: Services):
    applied = KeyMapEntry(flow="contact_customers", source_key="CON-1", target_key="CON-1", version=7)
    refs, asked = references(sx, {("contact_customers", "CON-1"): applied})
    sx.reset_counts()
    assert refs.fno_record(("accounts", "contact_customers"), "CON-1", None) == (True, "CON-1")
    assert asked == [("accounts", "CON-1"), ("contact_customers", "CON-1")]
    assert sx.requests("fno") == []


def test_a_key_map_entry_never_applied_does_not_count_and_fno_is_asked(sx: Services):
    claimed = KeyMapEntry(flow="accounts", source_key="ACC-9", version=-1)
    refs, _ = references(sx, {("accounts", "ACC-9"): claimed})
    sx.reset_counts()
    assert refs.fno_record(("accounts",), "ACC-9", None) == (False, None)
    assert sx.requests("fno") == [("GET", "CustomersV3")]


def test_a_customer_is_found_by_its_key_in_fno_and_remembered(sx: Services):
    refs, asked = references(sx)
    sx.reset_counts()
    assert refs.fno_record(("accounts",), "US-001", None) == (True, "US-001")
    assert refs.fno_record(("accounts",), "US-001", None) == (True, "US-001")
    assert asked == [("accounts", "US-001")]  # the second answer came from the cache
    assert sx.requests("fno") == [("GET", "CustomersV3")]


def test_returns_reads_the_referenced_records_property_from_fno_skipping_the_key_map(sx: Services):
    applied = KeyMapEntry(flow="accounts", source_key="US-002", version=1)
    refs, asked = references(sx, {("accounts", "US-002"): applied})
    party = sx.sandbox.fno.rows("CustomersV3")
    (expected,) = [r["PartyNumber"] for r in party if r["CustomerAccount"] == "US-002"]
    assert refs.fno_record(("accounts",), "US-002", "PartyNumber") == (True, expected)
    assert asked == []  # the key map holds no property of the record


def test_a_customer_in_neither_waits(sx: Services):
    refs, _ = references(sx)
    assert refs.fno_record(("accounts", "contact_customers"), "NOPE-1", None) == (False, None)


def test_a_sales_row_id_is_read_once_and_then_remembered(sx: Services):
    refs, _ = references(sx)
    account = sx.sandbox.dataverse.rows("accounts")[0]
    sx.reset_counts()
    assert refs.row_id("accounts", "accountnumber", account["accountnumber"]) == account["accountid"]
    assert refs.row_id("accounts", "accountnumber", account["accountnumber"]) == account["accountid"]
    assert sx.requests() == [("GET", "accounts")]


def test_a_missing_sales_row_is_asked_again_each_time(sx: Services):
    refs, _ = references(sx)
    sx.reset_counts()
    assert refs.row_id("uoms", "name", "Crate") is None
    assert refs.row_id("uoms", "name", "Crate") is None
    assert sx.requests() == [("GET", "uoms"), ("GET", "uoms")]


def test_a_value_with_a_quote_is_looked_up_safely(sx: Services):
    refs, _ = references(sx)
    (account,) = [r for r in sx.sandbox.dataverse.rows("accounts") if r["name"] == "O'Brien & Sons"]
    assert refs.row_id("accounts", "name", "O'Brien & Sons") == account["accountid"]


def test_the_tables_of_referenced_flows_in_sales(sx: Services):
    refs, _ = references(sx)
    assert refs.dataverse_tables(("accounts", "contact_customers")) == [
        ("accounts", "accountnumber"),
        ("contacts", "msdynce_contactnumber"),
    ]
    assert refs.dataverse_tables(("products",)) == [("products", "productnumber")]


def test_the_price_list_named_by_the_map(sx: Services):
    refs, _ = references(sx, price_lists={"USD": "Retail USA"})
    assert refs.price_list("USD") == sx.row("pricelevels", name="Retail USA")["pricelevelid"]
    refs, _ = references(sx, price_lists={"USD": "Gone Price List"})
    with pytest.raises(DependencyMissing, match=r"price list 'Gone Price List' \(price_list map, currency USD\)"):
        refs.price_list("USD")


def test_without_a_map_entry_the_first_active_price_list_in_the_currency_by_name(sx: Services):
    eur = sx.row("transactioncurrencies", isocurrencycode="EUR")["transactioncurrencyid"]
    currency = {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({eur})"}
    sx.dataverse.odata.request("POST", "pricelevels", json_body={"name": "Aardvark EUR (retired)", **currency})
    retired = sx.row("pricelevels", name="Aardvark EUR (retired)")["pricelevelid"]
    sx.dataverse.update("pricelevels", retired, {"statecode": 1})
    sx.dataverse.odata.request("POST", "pricelevels", json_body={"name": "Budget EUR", **currency})
    refs, _ = references(sx, price_lists={"USD": "Retail USA"})  # a map without EUR
    assert refs.price_list("EUR") == sx.row("pricelevels", name="Budget EUR")["pricelevelid"]
    sx.reset_counts()
    refs.price_list("EUR")
    assert sx.requests() == []  # remembered


@pytest.mark.parametrize("currency", ["GBP", "JPY"])  # GBP is in Sales with no price list; JPY is not there
def test_no_price_list_in_the_currency_fails_naming_it(sx: Services, currency: str):
    refs, _ = references(sx)
    with pytest.raises(MappingError) as caught:
        refs.price_list(currency)
    assert str(caught.value) == (
        f"no active price list in currency {currency} in Sales (or set P2C_VALUE_MAPS__PRICE_LIST)"
    )
    assert not caught.value.transient


def test_resolve_replaces_every_reference_and_keeps_other_fields(sx: Services):
    quotes, products = get_flow("quotes"), get_flow("products")
    customer, unit = quotes.fields["RequestingCustomerAccountNumber"], products.fields["defaultuomid"]
    assert isinstance(customer, ReferenceRule) and isinstance(unit, ReferenceRule)
    refs, _ = references(sx)
    payload = {"SalesQuotationNumber": "Q-1", "InvoiceCustomerAccountNumber": Reference(customer, "US-003")}
    assert refs.resolve(quotes, payload) == {"SalesQuotationNumber": "Q-1", "InvoiceCustomerAccountNumber": "US-003"}
    primary = sx.row("uoms", name="Primary Unit")["uomid"]
    resolved = refs.resolve(products, {"name": "Widget", "defaultuomid": Reference(unit, "Primary Unit")})
    assert resolved == {"name": "Widget", "defaultuomid@odata.bind": f"/uoms({primary})"}
    with pytest.raises(DependencyMissing, match="customer 'NOPE' is not in F&O yet"):
        refs.resolve(quotes, {"InvoiceCustomerAccountNumber": Reference(customer, "NOPE")})
