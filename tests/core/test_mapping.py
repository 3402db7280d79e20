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


TWO_COMPANIES = {
    "usmf": {"business_unit": "Contoso US"},
    "demf": {
        "business_unit": "Contoso DE",
        "defaults": {"customer_group": "40", "language": "de"},
        "value_maps": {"payment_terms": {"1": "14T"}, "country": {"deutschland": "DE", "usa": None}},
    },
}


def test_a_companys_defaults_and_value_maps_override_the_global_ones_for_that_company_only():
    mapper = Mapper(settings(companies=TWO_COMPANIES, value_maps={"payment_terms": {"1": "Net30"}}))
    us, _ = mapper.map(accounts, "A-1", ROW, "usmf")
    de, _ = mapper.map(accounts, "A-1", {**ROW, "address1_country": "Deutschland"}, "demf")
    assert (us["CustomerGroupId"], us["LanguageId"], us["PaymentTerms"]) == ("10", "en-us", "Net30")
    assert (de["CustomerGroupId"], de["LanguageId"], de["PaymentTerms"]) == ("40", "de", "14T")
    assert de["DeliveryAddressCountryRegionISOCode"] == "DE"
    # None: the default company's (keys queued before the map), the global values.
    assert mapper.map(accounts, "A-1", ROW)[0] == us
    # A company's entry mapped to null is gone for that company only.
    assert (
        mapper.map(accounts, "A-1", {**ROW, "address1_country": "usa"}, "usmf")[0][
            "DeliveryAddressCountryRegionISOCode"
        ]
        == "US"
    )
    with pytest.raises(MappingError, match="no entry for 'usa'"):
        mapper.map(accounts, "A-1", {**ROW, "address1_country": "usa"}, "demf")


def test_the_overlays_change_for_one_company_wins_over_the_company_map_and_the_global_overlay():
    overlay = (
        '[{"defaults": {"customer_group": "20"}},'
        ' {"company": "demf", "defaults": {"customer_group": "50"}, "value_maps": {"payment_terms": {"1": "7T"}}}]'
    )
    mapper = Mapper(settings(companies=TWO_COMPANIES, mapping_overlay=overlay))
    assert mapper.default("customer_group", "usmf") == "20"  # the global overlay over the template
    assert mapper.default("customer_group", "demf") == "50"  # the company's overlay over its map entry (40)
    assert mapper.default("language", "demf") == "de"
    assert mapper.table("payment_terms", "demf") == {"1": "7T"}
    assert mapper.table("payment_terms", "usmf") is None
