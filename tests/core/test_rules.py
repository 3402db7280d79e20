"""Every rule kind on its own: columns, value, read-back column, and resolve for references."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from p2c_core.errors import DependencyMissing, FlowError, MappingError
from p2c_core.rules import (
    Bind,
    Calc,
    Const,
    Default,
    Field,
    Lookup,
    PriceList,
    Ref,
    Reference,
    ReferenceRule,
    Rule,
    ValueMap,
    columns_of,
)


@dataclass
class Ctx:
    """Settings as rules see them: value maps (already folded, as the Mapper gives them) and defaults."""

    tables: dict[str, dict[str, str]] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)

    def table(self, name: str) -> Mapping[str, str] | None:
        return self.tables.get(name)

    def default(self, name: str) -> Any:
        return self.defaults.get(name)


@dataclass
class FakeResolver:
    """The target as a few dicts; every question asked is recorded."""

    fno: dict[tuple[str, str | None], Any] = field(default_factory=dict)  # (key, returns) -> written
    tables: dict[tuple[str, ...], list[tuple[str, str]]] = field(default_factory=dict)
    rows: dict[tuple[str, str, Any], str] = field(default_factory=dict)  # (set, column, value) -> GUID
    price_lists: dict[str, str] = field(default_factory=dict)
    asked: list[tuple[Any, ...]] = field(default_factory=list)

    def fno_record(self, flows: Sequence[str], key: str, returns: str | None) -> tuple[bool, Any]:
        self.asked.append(("fno", tuple(flows), key, returns))
        found = (key, returns) in self.fno
        return found, self.fno.get((key, returns))

    def dataverse_tables(self, flows: Sequence[str]) -> list[tuple[str, str]]:
        return self.tables[tuple(flows)]

    def row_id(self, entity_set: str, column: str, value: Any) -> str | None:
        self.asked.append(("row", entity_set, column, value))
        return self.rows.get((entity_set, column, value))

    def price_list(self, currency: str) -> str:
        self.asked.append(("price_list", currency))
        return self.price_lists[currency]


GUID = "0f8fad5b-d9cb-469f-a165-70867728950e"
OTHER = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
CUSTOMER = Ref("customerid", ("accounts", "contact_customers"), what="customer")


# --- Field, Const, Default ------------------------------------------------------------


def test_field_copies_its_column_and_a_null_becomes_the_default():
    rule = Field("creditlimit", default=0)
    assert rule.columns() == ("creditlimit",)
    assert rule.value({"creditlimit": 250.5}, Ctx(), "CreditLimit") == (True, 250.5)
    assert rule.value({"creditlimit": None}, Ctx(), "CreditLimit") == (True, 0)
    assert rule.value({}, Ctx(), "CreditLimit") == (True, 0)
    assert Field("name").value({}, Ctx(), "OrganizationName") == (True, None)  # sent as null: clears it
    assert Field("name").value({"name": ""}, Ctx(), "OrganizationName") == (True, "")


def test_const_reads_no_column_and_is_always_its_value():
    rule = Const("Yes")
    assert rule.columns() == ()
    assert rule.value({"anything": 1}, Ctx(), "IsExternallyMaintained") == (True, "Yes")
    assert Const(False).value({}, Ctx(), "x") == (True, False)


def test_default_is_present_only_when_set():
    rule = Default("site")
    assert rule.columns() == ()
    assert rule.value({}, Ctx(defaults={"site": "2"}), "SiteId") == (True, "2")
    assert rule.value({}, Ctx(defaults={"site": None}), "SiteId") == (False, None)


def test_an_unknown_default_fails_when_the_rule_is_made_naming_the_nearest():
    with pytest.raises(FlowError, match=r"unknown default 'warehose'; did you mean 'warehouse'\?"):
        Default("warehose")


@pytest.mark.parametrize("rule", [Field("a"), Const(1), Default("site"), Calc("date", ("a",))])
def test_plain_rules_refer_to_no_flow_and_read_back_where_they_write(rule: Rule):
    assert rule.refers_to() == ()
    assert rule.read_back("SiteId", "fno") == "SiteId"
    assert rule.read_back("name", "dataverse") == "name"


# --- ValueMap --------------------------------------------------------------------------


def test_value_map_translates_its_column():
    rule = ValueMap("payment_terms", "paymenttermscode")
    assert rule.columns() == ("paymenttermscode",)
    ctx = Ctx(tables={"payment_terms": {"1": "Net30"}})
    assert rule.value({"paymenttermscode": 1}, ctx, "PaymentTerms") == (True, "Net30")
    assert rule.value({"paymenttermscode": " 1 "}, ctx, "PaymentTerms") == (True, "Net30")  # stripped


def test_an_unconfigured_map_leaves_an_optional_field_out_and_fails_a_required_one():
    data = {"paymenttermscode": 1}
    assert ValueMap("payment_terms", "paymenttermscode", optional=True).value(data, Ctx(), "PaymentTerms") == (
        False,
        None,
    )
    with pytest.raises(MappingError, match=r"^value map 'payment_terms' is not configured \(needed for PaymentTerms"):
        ValueMap("payment_terms", "paymenttermscode").value(data, Ctx(), "PaymentTerms")


def test_an_unmapped_value_fails_naming_map_value_columns_and_setting():
    ctx = Ctx(tables={"freight_terms": {"1": "FOB"}})
    with pytest.raises(MappingError) as caught:
        ValueMap("freight_terms", "address1_freighttermscode").value(
            {"address1_freighttermscode": 2}, ctx, "DeliveryTerms"
        )
    assert str(caught.value) == (
        "value map 'freight_terms' has no entry for '2' (source address1_freighttermscode -> target DeliveryTerms); "
        "add it to P2C_VALUE_MAPS__FREIGHT_TERMS"
    )


def test_a_blank_value_takes_the_maps_blank_default_or_stays_blank():
    country = ValueMap("country", "address2_country")
    ctx = Ctx(tables={"country": {"canada": "CA"}}, defaults={"country": "US"})
    for blank in (None, "", "   "):
        assert country.value({"address2_country": blank}, ctx, "InvoiceAddressCountryRegionISOCode") == (True, "US")
    terms = ValueMap("payment_terms", "paymenttermscode")  # no blank default
    assert terms.value({}, Ctx(tables={"payment_terms": {"1": "Net30"}}), "PaymentTerms") == (True, None)


def test_a_folded_map_is_looked_up_case_blind_a_plain_one_is_not():
    ctx = Ctx(tables={"country": {"canada": "CA"}, "unit": {"ea": "Primary Unit"}})
    assert ValueMap("country", "c").value({"c": " CANADA "}, ctx, "x") == (True, "CA")
    with pytest.raises(MappingError, match="has no entry for 'EA'"):
        ValueMap("unit", "u").value({"u": "EA"}, ctx, "x")


def test_a_reversed_map_reads_target_to_source_with_no_blank_default():
    rule = ValueMap("unit", "uomid", reverse=True)
    ctx = Ctx(tables={"unit": {"ea": "Primary Unit", "pcs": "Piece"}}, defaults={"country": "US"})
    assert rule.value({"uomid": "Piece"}, ctx, "SalesUnitSymbol") == (True, "pcs")
    assert rule.value({"uomid": None}, ctx, "SalesUnitSymbol") == (True, None)
    with pytest.raises(MappingError, match="'unit' has no entry for 'ea'"):
        rule.value({"uomid": "ea"}, ctx, "SalesUnitSymbol")
    reversed_country = ValueMap("country", "c", reverse=True)  # blank default is for the forward way only
    assert reversed_country.value({"c": ""}, Ctx(tables={"country": {}}, defaults={"country": "US"}), "x") == (
        True,
        None,
    )


def test_a_numeric_map_gives_a_choice_number_or_fails_saying_so():
    rule = ValueMap("product_type", "ProductType", number=True)
    ctx = Ctx(tables={"product_type": {"Item": "1", "Service": "x3"}})
    assert rule.value({"ProductType": "Item"}, ctx, "producttypecode") == (True, 1)
    with pytest.raises(MappingError, match=r"^value map 'product_type' maps 'Service' to 'x3', not a choice number$"):
        rule.value({"ProductType": "Service"}, ctx, "producttypecode")


def test_an_unknown_value_map_fails_when_the_rule_is_made():
    with pytest.raises(FlowError, match=r"unknown value map 'contry'; did you mean 'country'\?"):
        ValueMap("contry", "address1_country")


# --- Calc --------------------------------------------------------------------------------


def test_calc_reads_its_inputs_in_order_and_computes():
    rule = Calc("discount_per_unit", ("manualdiscountamount", "quantity"))
    assert rule.columns() == ("manualdiscountamount", "quantity")
    assert rule.value({"manualdiscountamount": 10.0, "quantity": 3}, Ctx(), "LineDiscountAmount") == (True, 3.33)
    assert Calc("date", ("d",)).value({}, Ctx(), "x") == (True, None)  # a missing input is None


def test_calc_checks_its_name_and_its_number_of_inputs():
    with pytest.raises(FlowError, match=r"unknown calculation 'discount_perunit'; did you mean 'discount_per_unit'\?"):
        Calc("discount_perunit", ("a", "b"))
    with pytest.raises(FlowError, match=r"^calculation 'discount_per_unit' takes 2 columns, not 1$"):
        Calc("discount_per_unit", ("a",))


# --- Lookup --------------------------------------------------------------------------------


def test_lookup_selects_the_value_column_and_gives_the_resolved_natural_key():
    rule = Lookup("transactioncurrencyid", {"transactioncurrencies": "isocurrencycode"})
    assert rule.value_column == "_transactioncurrencyid_value"
    assert rule.columns() == ("_transactioncurrencyid_value",)
    # The source reader has already replaced the GUID by the natural key under the plain name.
    assert rule.value({"transactioncurrencyid": "USD"}, Ctx(), "SalesCurrencyCode") == (True, "USD")
    assert rule.refers_to() == ()


def test_lookups_are_compared_by_identity_so_equal_ones_both_count():
    one = Lookup("customerid", {"accounts": "accountnumber"})
    two = Lookup("customerid", {"accounts": "accountnumber"})
    assert one != two and len({one, two}) == 2 and one == one


# --- Ref ---------------------------------------------------------------------------------


def test_ref_reads_its_column_refers_to_its_flows_and_yields_a_reference():
    assert CUSTOMER.columns() == ("customerid",)
    assert CUSTOMER.refers_to() == ("accounts", "contact_customers")
    present, value = CUSTOMER.value({"customerid": "ACC-1"}, Ctx(), "RequestingCustomerAccountNumber")
    assert present and value == Reference(CUSTOMER, "ACC-1") and str(value) == "ref:ACC-1"


@pytest.mark.parametrize("missing", [None, ""])
def test_ref_without_a_value_fails_naming_what_is_missing(missing):
    with pytest.raises(MappingError, match=r"^no customer set \(source customerid -> target InvoiceCustomer\)$"):
        CUSTOMER.value({"customerid": missing}, Ctx(), "InvoiceCustomer")


def test_ref_must_name_a_flow():
    with pytest.raises(FlowError, match=r"Ref\('productid'\) names no flow that carries the product"):
        Ref("productid", (), what="product")


def test_reference_rules_read_back_a_lookup_value_column_in_sales():
    assert isinstance(CUSTOMER, ReferenceRule)
    assert CUSTOMER.read_back("customerid", "dataverse") == "_customerid_value"
    assert CUSTOMER.read_back("RequestingCustomerAccountNumber", "fno") == "RequestingCustomerAccountNumber"
    assert PriceList("CurrencyCode").read_back("pricelevelid", "dataverse") == "_pricelevelid_value"


def test_ref_to_fno_takes_the_key_itself():
    resolver = FakeResolver(fno={("ACC-1", None): "ACC-1"})
    assert CUSTOMER.resolve("InvoiceCustomerAccountNumber", "ACC-1", resolver, "fno") == {
        "InvoiceCustomerAccountNumber": "ACC-1"
    }
    assert resolver.asked == [("fno", ("accounts", "contact_customers"), "ACC-1", None)]


def test_ref_to_fno_with_returns_takes_the_referenced_records_property():
    party = Ref("parentcustomerid", ("accounts",), returns="PartyNumber", what="account")
    resolver = FakeResolver(fno={("ACC-1", "PartyNumber"): "000002001"})
    assert party.resolve("AssociatedPartyNumber", "ACC-1", resolver, "fno") == {"AssociatedPartyNumber": "000002001"}
    assert resolver.asked == [("fno", ("accounts",), "ACC-1", "PartyNumber")]


def test_ref_to_fno_not_there_yet_is_a_dependency_missing_naming_record_and_flows():
    with pytest.raises(DependencyMissing) as caught:
        CUSTOMER.resolve("InvoiceCustomerAccountNumber", "ACC-9", FakeResolver(), "fno")
    assert str(caught.value) == "customer 'ACC-9' is not in F&O yet (from flow accounts or contact_customers)"
    assert caught.value.transient


def test_ref_to_sales_with_one_table_binds_the_target_navigation_property():
    order = Ref("OrderingCustomerAccountNumber", ("accounts",), what="customer")
    resolver = FakeResolver(
        tables={("accounts",): [("accounts", "accountnumber")]}, rows={("accounts", "accountnumber", "A-1"): GUID}
    )
    assert order.resolve("customerid", "A-1", resolver, "dataverse") == {"customerid@odata.bind": f"/accounts({GUID})"}


def test_ref_to_sales_with_two_tables_binds_the_navigation_property_of_the_table_it_is_in():
    resolver = FakeResolver(
        tables={
            ("accounts", "contact_customers"): [("accounts", "accountnumber"), ("contacts", "msdynce_contactnumber")]
        },
        rows={("contacts", "msdynce_contactnumber", "CP-7"): OTHER, ("accounts", "accountnumber", "A-1"): GUID},
    )
    # A polymorphic lookup (customerid) has one navigation property per table it may point to.
    assert CUSTOMER.resolve("customerid", "CP-7", resolver, "dataverse") == {
        "customerid_contact@odata.bind": f"/contacts({OTHER})"
    }
    assert CUSTOMER.resolve("customerid", "A-1", resolver, "dataverse") == {
        "customerid_account@odata.bind": f"/accounts({GUID})"
    }
    resolver.asked.clear()
    with pytest.raises(DependencyMissing, match=r"^customer 'X-0' is not in Sales yet \(from flow accounts or contact"):
        CUSTOMER.resolve("customerid", "X-0", resolver, "dataverse")
    assert [a[1] for a in resolver.asked] == ["accounts", "contacts"]  # both tables asked, in order


# --- Bind ----------------------------------------------------------------------------------


def test_bind_reads_through_its_source_rule():
    unit = Bind(ValueMap("unit", "SalesUnitSymbol"), "uoms", "name")
    assert unit.columns() == ("SalesUnitSymbol",)
    ctx = Ctx(tables={"unit": {"ea": "Primary Unit"}})
    present, value = unit.value({"SalesUnitSymbol": "ea"}, ctx, "defaultuomid")
    assert present and value == Reference(unit, "Primary Unit")
    assert unit.value({"SalesUnitSymbol": None}, ctx, "defaultuomid") == (True, None)  # nothing to bind: clears
    group = Bind(Default("unit_group"), "uomschedules", "name")
    assert group.columns() == ()
    assert group.value({}, Ctx(defaults={"unit_group": None}), "defaultuomscheduleid") == (False, None)


def test_bind_resolves_to_the_row_with_that_column_value():
    unit = Bind(Field("unit"), "uoms", "name")
    resolver = FakeResolver(rows={("uoms", "name", "Primary Unit"): GUID})
    assert unit.resolve("uomid", "Primary Unit", resolver, "dataverse") == {"uomid@odata.bind": f"/uoms({GUID})"}
    with pytest.raises(DependencyMissing, match=r"^uoms has no row with name 'Crate' \(for uomid\)$"):
        unit.resolve("uomid", "Crate", resolver, "dataverse")
    with pytest.raises(FlowError, match=r"Bind\(uoms\) for uomid: only Sales targets take @odata.bind"):
        unit.resolve("uomid", "Primary Unit", resolver, "fno")


# --- PriceList -------------------------------------------------------------------------------


def test_price_list_reads_the_currency_and_binds_the_resolvers_price_list():
    rule = PriceList("CurrencyCode")
    assert rule.columns() == ("CurrencyCode",)
    present, value = rule.value({"CurrencyCode": "EUR"}, Ctx(), "pricelevelid")
    assert present and value == Reference(rule, "EUR")
    assert rule.value({"CurrencyCode": None}, Ctx(), "pricelevelid") == (True, None)
    resolver = FakeResolver(price_lists={"EUR": GUID})
    assert rule.resolve("pricelevelid", "EUR", resolver, "dataverse") == {
        "pricelevelid@odata.bind": f"/pricelevels({GUID})"
    }
    with pytest.raises(FlowError, match="price lists are Sales rows"):
        rule.resolve("pricelevelid", "EUR", resolver, "fno")


# --- columns_of ------------------------------------------------------------------------------


def test_columns_of_lists_each_source_column_once_in_rule_order():
    rules: dict[str, Rule] = {
        "a": Field("x"),
        "b": Calc("discount_per_unit", ("y", "x")),
        "c": Const(1),
        "d": ValueMap("unit", "z"),
    }
    assert columns_of(rules) == ["x", "y", "z"]
    assert columns_of({}) == []
