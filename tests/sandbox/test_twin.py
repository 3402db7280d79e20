"""What a client written by someone else calls first: the service documents, F&O's metadata
service and enum members, strict JSON bodies, the second company, F&O's derived order fields."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import httpx
import pytest

from p2c_sandbox import Sandbox
from p2c_sandbox.enums import DATA, fno_enums

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture
def fno(sb: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb.fno_url) as client:
        yield client


def _container_sets(client: httpx.Client, path: str) -> set[str]:
    root = ET.fromstring(client.get(path).text)
    return {e.get("Name") or "" for e in root.iter(f"{EDM}EntitySet")}


def test_service_documents_list_every_entity_set(dv: httpx.Client, fno: httpx.Client):
    for client, root in ((dv, ""), (fno, "/data/")):
        doc = client.get(root)
        assert doc.status_code == 200 and doc.json()["@odata.context"].endswith("$metadata")
        listed = {e["name"] for e in doc.json()["value"]}
        assert all(e["kind"] == "EntitySet" and e["url"] == e["name"] for e in doc.json()["value"])
        assert listed == _container_sets(client, root + "$metadata") and listed


def test_fno_metadata_service_entities_and_enums(fno: httpx.Client):
    entities = fno.get("/Metadata/DataEntities", params={"$filter": "contains(tolower(Name), 'customer')"}).json()
    customer = next(e for e in entities["value"] if e["PublicCollectionName"] == "CustomersV3")
    assert customer["PublicEntityName"] == "CustomerV3" and customer["DataServiceEnabled"] is True
    master = fno.get(
        "/Metadata/DataEntities",
        params={"$filter": "EntityCategory eq Microsoft.Dynamics.Metadata.EntityCategory'Master'", "$select": "Name"},
    ).json()["value"]
    assert {"Name": "CustCustomerV3Entity"} in master and all(set(e) == {"Name"} for e in master)

    public = fno.get("/Metadata/PublicEntities('CustomerV3')").json()
    assert public["EntitySetName"] == "CustomersV3"
    keys = [p["Name"] for p in public["Properties"] if p["IsKey"]]
    assert keys == ["dataAreaId", "CustomerAccount"]
    flag = next(p for p in public["Properties"] if p["Name"] == "IsExternallyMaintained")
    assert (flag["DataType"], flag["TypeName"]) == ("Enum", "NoYes")
    assert fno.get("/Metadata/PublicEntities('NoSuchEntity')").status_code == 404

    status = fno.get("/Metadata/PublicEnumerations('SalesOrderProcessingStatus')").json()
    assert [m["Name"] for m in status["Members"]] == [
        "Active", "Confirmed", "Picked", "PartiallyDelivered", "Delivered", "Invoiced", "PartiallyInvoiced",
        "Canceled", "DeliveredPartiallyInvoiced",
    ]  # fmt: skip
    assert [m["Value"] for m in status["Members"]] == list(range(9))
    assert fno.post("/Metadata/PublicEntities", json={}).status_code == 405


def test_fno_metadata_publishes_exactly_the_enum_members_of_the_data_file(fno: httpx.Client):
    root = ET.fromstring(fno.get("/data/$metadata").text)
    published = {
        e.get("Name"): [(m.get("Name"), int(m.get("Value") or -1)) for m in e.iter(f"{EDM}Member")]
        for e in root.iter(f"{EDM}EnumType")
    }
    assert published == {name: list(members or ()) for name, members in fno_enums().items()}
    assert "None" not in dict(published["SalesOrderProcessingStatus"])


def test_enum_values_outside_the_members_are_refused_and_seeded_ones_are_members(sb: Sandbox, fno: httpx.Client):
    known = {name: {m for m, _ in members} for name, members in fno_enums().items() if members is not None}
    for entity, schema in sb.fno_service.schemas.items():
        for row in sb.fno.rows(entity):
            for prop, spec in schema.props.items():
                enum = spec.type[5:] if spec.type.startswith("enum:") else None
                if enum in known and row.get(prop) is not None:
                    assert row[prop] in known[enum], (entity, prop, row[prop])
    bad = fno.post("/data/CustomersV3", json={"CustomerAccount": "ENUM-1", "CreditCardAddressVerification": "x"})
    assert bad.status_code == 400 and "CreditCardAddressVerification" in bad.json()["error"]["innererror"]["message"]
    refused = fno.patch(
        "/data/CDSSalesOrderHeaders(dataAreaId='usmf',SalesOrderNumber='SO-001000')",
        json={"SalesOrderProcessingStatus": "None"},
    )
    assert (
        refused.status_code == 400 and "SalesOrderProcessingStatus" in refused.json()["error"]["innererror"]["message"]
    )


BAD_BODIES = [
    b'{"name": NaN}',
    b'{"name": Infinity}',
    b'{"name": -Infinity}',
    b'{"name": "a", "name": "b"}',
    b'{"name": {"x": 1, "x": 2}}',
    b'["name"]',
    b'"name"',
    b"{not json",
]


@pytest.mark.parametrize("body", BAD_BODIES)
def test_bad_json_is_400_with_an_odata_error_and_nothing_is_stored(sb: Sandbox, dv: httpx.Client, body: bytes):
    before = len(sb.dataverse.rows("accounts"))
    headers = {"Content-Type": "application/json"}
    answer = dv.post("accounts", content=body, headers=headers)
    assert answer.status_code == 400 and answer.json()["error"]["code"] and answer.json()["error"]["message"]
    some = sb.dataverse.rows("accounts")[0]["accountid"]
    patched = dv.patch(f"accounts({some})", content=body, headers=headers)
    assert patched.status_code == 400 and patched.json()["error"]["message"]
    assert len(sb.dataverse.rows("accounts")) == before

    fno_before = len(sb.fno.rows("CustomersV3"))
    fno_body = body.replace(b'"name"', b'"OrganizationName"')
    with httpx.Client(base_url=sb.fno_url + "/data/") as fno:
        refused = fno.post("CustomersV3", content=fno_body, headers=headers)
    assert refused.status_code == 400 and refused.json()["error"]["innererror"]["message"]
    assert len(sb.fno.rows("CustomersV3")) == fno_before


def test_bad_json_inside_a_batch_is_that_operation_400(sb: Sandbox, dv: httpx.Client):
    before = len(sb.dataverse.rows("accounts"))
    part = (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\nContent-ID: 1\r\n\r\n"
        "POST accounts HTTP/1.1\r\nContent-Type: application/json; type=entry\r\n\r\n"
        '{"name": "a", "description": "$1", "name": "b"}'
    )
    inner = f"--c\r\n{part}\r\n--c--"
    batch = f'--b\r\nContent-Type: multipart/mixed; boundary="c"\r\n\r\n{inner}\r\n--b--\r\n'
    answer = dv.post("$batch", content=batch, headers={"Content-Type": "multipart/mixed; boundary=b"})
    assert answer.status_code == 400 and "more than once" in answer.text
    assert len(sb.dataverse.rows("accounts")) == before


def test_second_company_is_there_across_companies_only(fno: httpx.Client):
    names = {e["LegalEntityId"]: e["Name"] for e in fno.get("/data/LegalEntities").json()["value"]}
    assert set(names) == {"USMF", "DEMF"}
    # The invoice entities hold invoices of customers from Sales only: demf's come with the
    # German Sales rows (Companies.BUSINESS_UNITS, tests/sandbox/test_companies_seed.py).
    invoices = ("ExternallyMaintainedCustomerSalesInvoiceHeaders", "ExternallyMaintainedCustomerSalesInvoiceLines")
    for entity in (
        "CustomersV3",
        "CDSReleasedDistinctProducts",
        "CDSSalesOrderHeaders",
        "CDSSalesOrderLines",
        *invoices,
    ):
        mine = fno.get(f"/data/{entity}", params={"$select": "dataAreaId"}).json()["value"]
        every = fno.get(f"/data/{entity}", params={"$select": "dataAreaId", "cross-company": "true"}).json()["value"]
        assert {r["dataAreaId"] for r in mine} == {"usmf"}, entity
        assert {r["dataAreaId"] for r in every} == ({"usmf"} if entity in invoices else {"usmf", "demf"}), entity
    order = fno.get(
        "/data/CDSSalesOrderHeaders(dataAreaId='demf',SalesOrderNumber='DE-SO-000001')",
        params={"cross-company": "true"},
    ).json()
    lines = fno.get(
        "/data/CDSSalesOrderLines",
        params={"cross-company": "true", "$filter": "dataAreaId eq 'demf' and SalesOrderNumber eq 'DE-SO-000001'"},
    ).json()["value"]
    assert order["CurrencyCode"] == "EUR" and order["OrderTotalAmount"] == round(sum(r["LineAmount"] for r in lines), 2)


def test_order_customer_flags_are_derived_from_the_customers(fno: httpx.Client):
    made = fno.post("/data/CustomersV3", json={"CustomerAccount": "EXT-1", "IsExternallyMaintained": "Yes"})
    assert made.status_code == 201
    body = {"OrderingCustomerAccountNumber": "EXT-1", "InvoiceCustomerAccountNumber": "US-001", "CurrencyCode": "USD",
            "OrderingCustomerIsExternallyMaintained": "No", "InvoiceCustomerIsExternallyMaintained": "Yes"}  # fmt: skip
    order = fno.post("/data/CDSSalesOrderHeaders", json=body).json()
    # A client's values are not kept: the entity reads them from the customers.
    assert order["OrderingCustomerIsExternallyMaintained"] == "Yes"
    assert order["InvoiceCustomerIsExternallyMaintained"] == "No"
    key = f"/data/CDSSalesOrderHeaders(dataAreaId='usmf',SalesOrderNumber='{order['SalesOrderNumber']}')"
    assert fno.patch(key, json={"InvoiceCustomerAccountNumber": "EXT-1"}).status_code == 204
    assert fno.get(key).json()["InvoiceCustomerIsExternallyMaintained"] == "Yes"
    number = order["SalesOrderNumber"]
    line = fno.post(
        "/data/CDSSalesOrderLines",
        json={"SalesOrderNumber": number, "LineCreationSequenceNumber": 1, "ProductNumber": "P1"},
    )
    assert line.status_code == 201
    assert line.json()["OrderingCustomerIsExternallyMaintained"] == "Yes"
    assert line.json()["InvoiceCustomerIsExternallyMaintained"] == "Yes"
    found = fno.get(
        "/data/CDSSalesOrderHeaders",
        params={"$filter": "OrderingCustomerIsExternallyMaintained eq Microsoft.Dynamics.DataEntities.NoYes'Yes'"
                f" and SalesOrderNumber eq '{order['SalesOrderNumber']}'"},
    ).json()["value"]  # fmt: skip
    assert len(found) == 1


def test_service_document_answers_json_and_is_counted(sb: Sandbox, dv: httpx.Client):
    assert json.loads(dv.get("").text)["value"]
    assert any(r["entity_set"] == "$service" for r in dv.get(sb.dataverse_url + "/_sandbox/stats").json()["requests"])


def test_metadata_api_answers_discovery_as_the_docs_show(dv: httpx.Client):
    # What an ELT connector's discovery sends (airbyte-source-microsoft-dataverse).
    found = dv.get(
        "EntityDefinitions",
        params={
            "$select": "LogicalName,EntitySetName,PrimaryIdAttribute,CanChangeTrackingBeEnabled,ChangeTrackingEnabled",
            "$expand": "Attributes($select=LogicalName,AttributeType)",
            "$filter": "LogicalName eq 'account'",
        },
    )
    assert found.status_code == 200
    (account,) = found.json()["value"]
    assert account["CanChangeTrackingBeEnabled"]["Value"] is True and account["EntitySetName"] == "accounts"
    kinds = {a["LogicalName"]: a["AttributeType"] for a in account["Attributes"]}
    assert (kinds["revenue"], kinds["revenue_base"], kinds["ownerid"], kinds["parentaccountid"]) == (
        "Money", "Money", "Owner", "Lookup",
    )  # fmt: skip
    base = dv.get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='revenue_base')").json()
    assert base["IsValidForCreate"] is False and base["IsValidForUpdate"] is False and base["IsBaseCurrency"] is True
    choice = dv.get(
        "EntityDefinitions(LogicalName='account')/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata",
        params={"$select": "LogicalName", "$filter": "LogicalName eq 'industrycode'", "$expand": "OptionSet"},
    ).json()["value"]
    assert choice and choice[0]["OptionSet"]["Options"]


def test_every_enum_the_entities_use_has_its_members_or_says_why_not():
    # fno-entities.json names each property's enum type; fno-enums.json lists each one's
    # members with their source, or null members with the reason (docs/fidelity.md).
    entities = json.loads((DATA / "fno-entities.json").read_text())["entities"]
    used = {edm[5:] for e in entities.values() for edm, _nullable in e["properties"].values()
            if edm.startswith("enum:")}  # fmt: skip
    enums = json.loads((DATA / "fno-enums.json").read_text())["enums"]
    assert used == set(enums)
    for name, spec in enums.items():
        assert spec["source"], name
        # names are unique (CSDL); values need not be: Timezone publishes two names with 255
        assert spec["members"] is None or len({m["name"] for m in spec["members"]}) == len(spec["members"]), name
    assert all(spec["members"] for spec in enums.values())  # all 37 found (docs/fidelity.md)


def test_members_read_from_the_ax_reference_are_served_and_enforced(fno: httpx.Client):
    # UseCashDisc: Normal 0, Always 1, Never 2 (AX 2012 base enum reference, kept by F&O).
    root = ET.fromstring(fno.get("/data/$metadata").text)
    cash = next(e for e in root.iter(f"{EDM}EnumType") if e.get("Name") == "UseCashDisc")
    assert [(m.get("Name"), m.get("Value")) for m in cash.iter(f"{EDM}Member")] == [
        ("Normal", "0"), ("Always", "1"), ("Never", "2"),
    ]  # fmt: skip
    ok = fno.post("/data/CustomersV3", json={"CustomerAccount": "ENUM-2", "PaymentUseCashDiscount": "Always"})
    assert ok.status_code == 201, ok.text
    bad = fno.post("/data/CustomersV3", json={"CustomerAccount": "ENUM-3", "PaymentUseCashDiscount": "Sometimes"})
    assert bad.status_code == 400 and "PaymentUseCashDiscount" in bad.json()["error"]["innererror"]["message"]


def test_members_read_from_a_generated_fno_client_are_served_and_enforced(fno: httpx.Client):
    # EcoResProductType (the products flow's ProductType): Item 1, Service 2; Timezone: 105 members,
    # EASTERNTIME 29 (fno-enums.json: a client generated from an F&O $metadata, and F&O's API reference).
    root = ET.fromstring(fno.get("/data/$metadata").text)
    served = {
        e.get("Name"): {m.get("Name"): int(m.get("Value") or -1) for m in e.iter(f"{EDM}Member")}
        for e in root.iter(f"{EDM}EnumType")
    }
    assert served["EcoResProductType"] == {"Item": 1, "Service": 2}
    assert len(served["Timezone"]) == 105 and served["Timezone"]["GMTMINUS0500EASTERNTIME"] == 29
    assert served["Gender"]["NonSpecific"] == 3  # added by F&O since the AX 2012 reference
    ok = fno.post("/data/CustomersV3", json={"CustomerAccount": "ENUM-4", "AddressTimeZone": "GMTMINUS0500EASTERNTIME"})
    assert ok.status_code == 201, ok.text
    bad = fno.post("/data/CustomersV3", json={"CustomerAccount": "ENUM-5", "AddressTimeZone": "EST"})
    assert bad.status_code == 400 and "AddressTimeZone" in bad.json()["error"]["innererror"]["message"]
