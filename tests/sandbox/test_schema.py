"""The entity sets both services serve and their `$metadata`, pinned to what the real
services publish: F&O to `fno-entities.json` (keys, property types and nullability from a
real environment's `$metadata`), Dataverse to the table references (Web API column types:
String -> Edm.String with MaxLength, Picklist/State/Integer -> Edm.Int32, Money/Decimal ->
Edm.Decimal, DateTime of UserLocal behaviour -> Edm.DateTimeOffset, Lookup -> an Edm.Guid
`_<name>_value` and a navigation property)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from p2c_sandbox import Sandbox

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
SPEC = Path(__file__).resolve().parents[2] / "p2c_sandbox/data/fno-entities.json"
# The F&O entity sets FLOWS.md's six flows name.
FNO_FLOW_ENTITIES = {
    "CustomersV3", "CDSContactPersons", "CDSReleasedDistinctProducts", "CDSSalesQuotationHeaders",
    "CDSSalesQuotationLines", "CDSSalesOrderHeaders", "CDSSalesOrderLines",
    "ExternallyMaintainedCustomerSalesInvoiceHeaders", "ExternallyMaintainedCustomerSalesInvoiceLines",
}  # fmt: skip


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def entity_types(url: str) -> dict[str, ET.Element]:
    root = ET.fromstring(httpx.get(url).content)
    return {t.get("Name", ""): t for t in root.iter(f"{EDM}EntityType")}


def entity_sets(url: str) -> dict[str, str]:
    root = ET.fromstring(httpx.get(url).content)
    return {s.get("Name", ""): s.get("EntityType", "") for s in root.iter(f"{EDM}EntitySet")}


def test_fno_entities_keys_types_and_nullability_are_the_real_ones(sb: Sandbox):
    spec = json.loads(SPEC.read_text())["entities"]
    types = entity_types(sb.fno_url + "/data/$metadata")
    sets = entity_sets(sb.fno_url + "/data/$metadata")
    for name, entity in spec.items():
        assert sets[name] == f"Microsoft.Dynamics.DataEntities.{name}", name
        element = types[name]
        key = element.find(f"{EDM}Key")
        assert key is not None
        assert [r.get("Name") for r in key.iter(f"{EDM}PropertyRef")] == entity["keys"], name
        served = {p.get("Name"): p for p in element.iter(f"{EDM}Property")}
        assert set(served) == set(entity["properties"]), name
        for prop, (edm, nullable) in entity["properties"].items():
            expected = f"Microsoft.Dynamics.DataEntities.{edm[5:]}" if edm.startswith("enum:") else edm
            assert served[prop].get("Type") == expected, (name, prop)
            assert (served[prop].get("Nullable") != "false") == bool(nullable), (name, prop)
    # "the P2C entities expose no modified date-time" (APIS.md, from fno-entities.json): none made up.
    modified = [(n, p) for n, e in spec.items() for p in e["properties"] if re.search("modif", p, re.I)]
    assert modified == []


def test_every_fno_entity_flows_md_names_is_served(sb: Sandbox):
    # Beside the flows' entities, the company list (for clients that work across companies).
    served = FNO_FLOW_ENTITIES | {"LegalEntities"}
    assert set(json.loads(SPEC.read_text())["entities"]) == served
    assert set(entity_sets(sb.fno_url + "/data/$metadata")) == served


# Dataverse entity sets APIS.md and FLOWS.md name, with their primary key and the alternate key
# the flows address them by (none for the tables p2c looks up by id or by name).
DATAVERSE_TABLES = {
    "accounts": ("accountid", ["accountnumber"]),
    "contacts": ("contactid", ["msdynce_contactnumber"]),
    "products": ("productid", ["productnumber"]),
    "quotes": ("quoteid", ["quotenumber", "revisionnumber"]),
    "quotedetails": ("quotedetailid", None),
    "salesorders": ("salesorderid", ["ordernumber"]),
    "salesorderdetails": ("salesorderdetailid", None),
    "invoices": ("invoiceid", ["invoicenumber"]),
    "invoicedetails": ("invoicedetailid", None),
    "uoms": ("uomid", None),
    "pricelevels": ("pricelevelid", None),
    "productpricelevels": ("productpricelevelid", None),
    "transactioncurrencies": ("transactioncurrencyid", ["isocurrencycode"]),
}

# Columns of the flows as the table references give them (entity set, column) -> (Edm type,
# MaxLength): account AccountNumber "Type String, MaxLength 20"; quote QuoteNumber and
# salesorder OrderNumber "String, MaxLength 100"; product ProductNumber "String, MaxLength
# 100"; RequestDeliveryBy on quotes, orders and their lines "DateTime, UserLocal, DateOnly".
DATAVERSE_COLUMNS = {
    ("accounts", "accountnumber"): ("Edm.String", "20"),
    ("accounts", "name"): ("Edm.String", "160"),
    ("accounts", "creditlimit"): ("Edm.Decimal", None),
    ("accounts", "numberofemployees"): ("Edm.Int32", None),
    ("accounts", "customertypecode"): ("Edm.Int32", None),
    ("accounts", "paymenttermscode"): ("Edm.Int32", None),
    ("accounts", "address1_shippingmethodcode"): ("Edm.Int32", None),
    ("accounts", "_transactioncurrencyid_value"): ("Edm.Guid", None),
    ("accounts", "createdon"): ("Edm.DateTimeOffset", None),
    ("accounts", "modifiedon"): ("Edm.DateTimeOffset", None),
    ("accounts", "versionnumber"): ("Edm.Int64", None),
    ("products", "productnumber"): ("Edm.String", "100"),
    ("products", "price"): ("Edm.Decimal", None),
    ("products", "producttypecode"): ("Edm.Int32", None),
    ("quotes", "quotenumber"): ("Edm.String", "100"),
    ("quotes", "requestdeliveryby"): ("Edm.DateTimeOffset", None),
    ("quotes", "statecode"): ("Edm.Int32", None),
    ("quotedetails", "requestdeliveryby"): ("Edm.DateTimeOffset", None),
    ("quotedetails", "quantity"): ("Edm.Decimal", None),
    ("quotedetails", "sequencenumber"): ("Edm.Int32", None),
    ("salesorders", "ordernumber"): ("Edm.String", "100"),
    ("salesorders", "requestdeliveryby"): ("Edm.DateTimeOffset", None),
    ("salesorderdetails", "requestdeliveryby"): ("Edm.DateTimeOffset", None),
    ("salesorderdetails", "priceperunit"): ("Edm.Decimal", None),
    ("invoices", "invoicenumber"): ("Edm.String", "100"),
    ("transactioncurrencies", "isocurrencycode"): ("Edm.String", "5"),
}


def test_dataverse_tables_keys_alternate_keys_and_column_types(sb: Sandbox):
    url = sb.dataverse_url + "/api/data/v9.2/$metadata"
    sets = entity_sets(url)
    types = entity_types(url)
    for entity_set, (pk, alternate) in DATAVERSE_TABLES.items():
        element = types[sets[entity_set].removeprefix("Microsoft.Dynamics.CRM.")]
        key = element.find(f"{EDM}Key")
        assert key is not None and [r.get("Name") for r in key.iter(f"{EDM}PropertyRef")] == [pk], entity_set
        props = {p.get("Name"): p for p in element.iter(f"{EDM}Property")}
        assert props[pk].get("Type") == "Edm.Guid"
        # OData.Community.Keys.V1.AlternateKeys: one record per key, one PropertyRef per column.
        keys = [
            [v.get("PropertyPath") for v in record.iter(f"{EDM}PropertyValue") if v.get("Property") == "Name"]
            for annotation in element.iter(f"{EDM}Annotation")
            if annotation.get("Term") == "OData.Community.Keys.V1.AlternateKeys"
            for record in annotation.iter(f"{EDM}Record")
            if record.get("Type") == "OData.Community.Keys.V1.AlternateKey"
        ]
        assert keys == ([alternate] if alternate else []), entity_set
    for (entity_set, column), (edm, max_length) in DATAVERSE_COLUMNS.items():
        element = types[sets[entity_set].removeprefix("Microsoft.Dynamics.CRM.")]
        prop = next(p for p in element.iter(f"{EDM}Property") if p.get("Name") == column)
        assert (prop.get("Type"), prop.get("MaxLength")) == (edm, max_length), (entity_set, column)


def test_every_dataverse_column_flows_md_maps_is_served(sb: Sandbox):
    # FLOWS.md's mapping tables: each Sales column of a flow exists on its table (lookups as
    # navigation properties), so `p2c check` and the flows meet what a real org serves.
    url = sb.dataverse_url + "/api/data/v9.2/$metadata"
    sets, types = entity_sets(url), entity_types(url)

    def names(entity_set: str) -> set[str]:
        element = types[sets[entity_set].removeprefix("Microsoft.Dynamics.CRM.")]
        return {p.get("Name", "") for p in element.iter(f"{EDM}Property")} | {
            n.get("Name", "") for n in element.iter(f"{EDM}NavigationProperty")
        }

    expected = {
        "accounts": "accountnumber name telephone1 fax emailaddress1 websiteurl address1_line1 address1_city "
        "address1_stateorprovince address1_postalcode address1_county address1_country address2_line1 "
        "address2_city address2_stateorprovince address2_postalcode address2_country creditlimit "
        "numberofemployees description transactioncurrencyid paymenttermscode address1_freighttermscode "
        "address1_shippingmethodcode customertypecode statecode",
        "products": "productnumber name description defaultuomid price currentcost "
        "transactioncurrencyid producttypecode quantitydecimal msdynce_ismaintainedexternally",
        "contacts": "msdynce_contactnumber firstname middlename lastname jobtitle department emailaddress1 "
        "telephone1 fax websiteurl address1_line1 address1_city address1_stateorprovince address1_postalcode "
        "address1_country description msdynce_isactivecustomer parentcustomerid_account msdynce_iscompanyanaccount",
        "quotes": "quotenumber customerid_account customerid_contact name transactioncurrencyid requestdeliveryby "
        "shipto_line1 shipto_line2 shipto_city shipto_stateorprovince shipto_postalcode shipto_country "
        "paymenttermscode shippingmethodcode freighttermscode statecode msdynce_hasexternallymaintainedproductsonly",
        "quotedetails": "sequencenumber productid quantity priceperunit manualdiscountamount uomid "
        "requestdeliveryby description",
        "salesorders": "ordernumber msdynce_ismaintainedexternally msdynce_processingstatus totalamount discountamount "
        "totaltax freightamount pricelevelid",
        "salesorderdetails": "sequencenumber productid quantity priceperunit manualdiscountamount uomid "
        "extendedamount tax",
        "invoices": "invoicenumber name salesorderid customerid_account msdynce_invoicedate "
        "transactioncurrencyid totalamount totaltax freightamount totaldiscountamount billto_line1 billto_city "
        "billto_stateorprovince billto_postalcode billto_country",
        "invoicedetails": "sequencenumber productid quantity priceperunit manualdiscountamount tax extendedamount "
        "uomid msdynce_invoicenumber msdynce_invoicedate",
        "productpricelevels": "pricelevelid productid uomid amount",
        "uoms": "name",
        "pricelevels": "name transactioncurrencyid",
        "transactioncurrencies": "isocurrencycode",
    }
    for entity_set, columns in expected.items():
        missing = set(columns.split()) - names(entity_set)
        assert not missing, (entity_set, sorted(missing))


def test_a_date_only_column_of_user_local_behaviour_is_a_datetime_in_the_metadata_api(sb: Sandbox):
    # The quote reference: RequestDeliveryBy "Type DateTime, DateTimeBehavior UserLocal,
    # Format DateOnly", as EntityDefinitions(...)/Attributes describes it.
    url = sb.dataverse_url + "/api/data/v9.2/EntityDefinitions(LogicalName='quote')/Attributes"
    body = httpx.get(url, params={"$filter": "LogicalName eq 'requestdeliveryby'"}).json()
    [column] = body["value"]
    assert column["AttributeType"] == "DateTime" and column["Format"] == "DateOnly"
    assert column["DateTimeBehavior"] == {"Value": "UserLocal"}
