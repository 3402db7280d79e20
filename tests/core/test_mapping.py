import pytest

from p2c_core.errors import MappingError
from p2c_core.flows import get_flow
from p2c_core.mapping import Mapper, content_hash
from p2c_core.settings import Settings

accounts = get_flow("accounts")


def settings(**kw) -> Settings:
    return Settings(
        dataverse_url="http://127.0.0.1:1", fno_url="http://127.0.0.1:2", fno_company="usmf", auth_mode="none", **kw
    )  # fmt: skip


ROW = {
    "accountnumber": "ACC-01000-BVRCPS",
    "name": "O'Brien & Sons",
    "address1_country": " united states ",
    "address2_country": None,
    "creditlimit": None,
    "numberofemployees": 40,
    "transactioncurrencyid": "USD",
    "paymenttermscode": 1,
    "address1_freighttermscode": 2,
    "address1_shippingmethodcode": None,
}


def test_account_mapping_with_defaults_and_country_map():
    payload, create = Mapper(settings()).map(accounts, ROW["accountnumber"], ROW)
    assert payload["CustomerAccount"] == "ACC-01000-BVRCPS"
    assert payload["OrganizationName"] == "O'Brien & Sons"
    assert payload["DeliveryAddressCountryRegionISOCode"] == "US"
    assert payload["InvoiceAddressCountryRegionISOCode"] == "US"  # blank -> default country
    assert payload["CreditLimit"] == 0 and payload["OrganizationNumberOfEmployees"] == 40
    assert payload["SalesCurrencyCode"] == "USD"
    assert payload["CustomerGroupId"] == "10" and payload["SiteId"] == "1" and payload["WarehouseId"] == "13"
    assert payload["LanguageId"] == "en-us"
    # terms maps have no template default: the fields are left out until configured
    assert "PaymentTerms" not in payload and "DeliveryTerms" not in payload and "DeliveryMode" not in payload
    assert create == {"IsExternallyMaintained": "Yes", "PartyType": "Organization"}


def test_configured_value_maps_apply_and_unmapped_value_fails_naming_map():
    s = settings(value_maps={"payment_terms": {"1": "Net30"}, "freight_terms": {"1": "FOB"}})
    with pytest.raises(MappingError, match=r"value map 'freight_terms' has no entry for '2'.*DeliveryTerms"):
        Mapper(s).map(accounts, ROW["accountnumber"], ROW)
    payload, _ = Mapper(s).map(accounts, ROW["accountnumber"], {**ROW, "address1_freighttermscode": 1})
    assert payload["PaymentTerms"] == "Net30" and payload["DeliveryTerms"] == "FOB"
    assert "DeliveryMode" not in payload  # shipping_method map not configured
    s = settings(value_maps={"shipping_method": {"4": "UPS"}})
    payload, _ = Mapper(s).map(accounts, ROW["accountnumber"], ROW)
    assert payload["DeliveryMode"] is None  # configured map, empty source value


def test_unknown_country_fails_naming_map_and_value():
    with pytest.raises(MappingError, match=r"value map 'country' has no entry for 'Narnia'"):
        Mapper(settings()).map(accounts, "A-1", {**ROW, "address1_country": "Narnia"})


def test_over_long_value_fails_naming_field():
    with pytest.raises(MappingError, match=r"OrganizationName is 101 characters, over the target's maximum of 100"):
        Mapper(settings()).map(accounts, "A-1", {**ROW, "name": "x" * 101})
    with pytest.raises(MappingError, match="CustomerAccount is 21 characters"):
        Mapper(settings()).map(accounts, "A" * 21, {**ROW, "accountnumber": "A" * 21})


def test_blank_key_fails():
    with pytest.raises(MappingError, match="empty accountnumber"):
        Mapper(settings()).map(accounts, "  ", ROW)


def test_content_hash_is_order_independent_and_value_sensitive():
    assert content_hash({"a": 1, "b": "x"}) == content_hash({"b": "x", "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


@pytest.mark.parametrize(
    ("total", "quantity", "per_unit", "charge"),
    [(10.0, 3, 3.33, -0.01), (10.0, 7, 1.43, 0.01), (0, 5, 0.0, 0.0), (25.0, 4, 6.25, 0.0), (5.0, 0, 0.0, -5.0)],
)
def test_the_discount_rule_splits_a_line_total_and_comes_back_to_it(total, quantity, per_unit, charge):
    from p2c_core.calcs import discount_per_unit, discount_remainder, discount_total

    assert (discount_per_unit(total, quantity), discount_remainder(total, quantity)) == (per_unit, charge)
    if quantity:
        assert discount_total(per_unit, quantity, charge) == total  # FLOWS.md: 3 x 3.33 - (-0.01) = 10.00


def test_document_lines_map_with_their_keys_and_reverse_and_numeric_maps():
    from p2c_core.rules import Reference

    quotes, fno_orders = get_flow("quotes"), get_flow("fno_orders")
    mapper = Mapper(settings())
    data = {"quotenumber": "QUO-1", "customerid": "ACC-1", "requestdeliveryby": "2026-12-01",
            "lines": [{"sequencenumber": 2, "productid": "D0001", "quantity": 3.0, "priceperunit": 9.5,
                       "manualdiscountamount": 10.0, "uomid": "Primary Unit", "requestdeliveryby": None}]}  # fmt: skip
    payload, _ = mapper.map(quotes, "QUO-1", data)
    assert payload["RequestedShippingDate"] == "2026-12-01T12:00:00Z"
    customer = payload["RequestingCustomerAccountNumber"]
    assert isinstance(customer, Reference) and (customer.value, str(customer)) == ("ACC-1", "ref:ACC-1")
    (line,) = mapper.map_lines(quotes, data) or []
    assert line.key == 2 and line.payload["SalesUnitSymbol"] == "ea"  # the unit map, read backwards
    assert (line.payload["LineDiscountAmount"], line.payload["FixedPriceCharges"]) == (3.33, -0.01)
    assert line.payload["RequestedShippingDate"] == "1900-01-01T00:00:00Z"  # F&O's "no date"
    status, _ = mapper.map(fno_orders, "SO-1", {"SalesOrderNumber": "SO-1", "OrderingCustomerAccountNumber": "A",
                                                 "SalesOrderProcessingStatus": "Invoiced"})  # fmt: skip
    assert status["msdynce_processingstatus"] == 647390003 and status["requestdeliveryby"] is None
    with pytest.raises(MappingError, match="no customer set"):
        mapper.map(quotes, "QUO-2", {**data, "customerid": None})
    with pytest.raises(MappingError, match="two lines share one sequencenumber"):
        mapper.map_lines(quotes, {**data, "lines": data["lines"] * 2})
    with pytest.raises(MappingError, match="'processing_status' has no entry for 'Teleported'"):
        mapper.map(fno_orders, "SO-1", {"SalesOrderNumber": "SO-1", "OrderingCustomerAccountNumber": "A",
                                        "SalesOrderProcessingStatus": "Teleported"})  # fmt: skip
