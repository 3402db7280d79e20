"""The sandbox's F&O OData endpoint, pinned to the real one's behaviour."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from p2c_sandbox import Sandbox


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox(fno_page_size=4) as sandbox:
        yield sandbox


@pytest.fixture
def fno(sb: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb.fno_url + "/data/") as client:
        yield client


def test_company_scoping_cross_company_and_paging(sb: Sandbox, fno: httpx.Client):
    fno.post("CustomersV3", json={"dataAreaId": "demf", "CustomerAccount": "DE-901", "OrganizationName": "Berlin"})
    default = fno.get("CustomersV3", params={"$select": "CustomerAccount,dataAreaId"}).json()
    assert all(r["dataAreaId"] == "usmf" for r in default["value"]) and "@odata.nextLink" in default
    rows, link = [], "CustomersV3?cross-company=true&$select=CustomerAccount,dataAreaId"
    while link:
        page = fno.get(link).json()
        rows += page["value"]
        link = page.get("@odata.nextLink")
    # Every company's customers: usmf's, the second company's (seed_companies.py), the one just created.
    assert {r["dataAreaId"] for r in rows} == {"usmf", "demf"} and len(rows) == len(sb.fno.rows("CustomersV3"))
    only = fno.get("CustomersV3", params={"cross-company": "true", "$filter": "dataAreaId eq 'demf'", "$top": "10"})
    demf = sorted(r["CustomerAccount"] for r in rows if r["dataAreaId"] == "demf")
    assert demf == ["DE-001", "DE-002", "DE-003", "DE-004", "DE-901"]
    assert sorted(r["CustomerAccount"] for r in only.json()["value"]) == demf[:4]  # a page of four
    other = "CustomersV3(dataAreaId='demf',CustomerAccount='DE-901')"
    assert fno.get(other).status_code == 404
    assert fno.get(other, params={"cross-company": "true"}).json()["OrganizationName"] == "Berlin"


def test_no_upsert_create_conflict_and_update_rules(fno: httpx.Client):
    key = "CustomersV3(dataAreaId='usmf',CustomerAccount='O''B%2F1')"
    assert fno.patch(key, json={"OrganizationName": "x"}).status_code == 404
    created = fno.post(
        "CustomersV3", json={"CustomerAccount": "O'B/1", "OrganizationName": "O'Brien", "IsExternallyMaintained": "Yes"}
    )
    assert created.status_code == 201 and created.json()["PartyNumber"]
    assert created.json()["dataAreaId"] == "usmf" and created.json()["CreditLimit"] == 0
    again = fno.post("CustomersV3", json={"CustomerAccount": "o'b/1", "OrganizationName": "dup"})
    assert again.status_code == 400 and "already exists" in again.json()["error"]["innererror"]["message"]
    assert again.headers["ms-dyn-aid"]
    assert fno.patch(key, json={"OrganizationName": "O'Brien Ltd"}).status_code == 204
    assert fno.get(key).json()["OrganizationName"] == "O'Brien Ltd"
    assert fno.patch(key, json={"CustomerAccount": "OTHER"}).status_code == 400
    long = fno.patch(key, json={"OrganizationName": "n" * 101})
    assert long.status_code == 400 and "maximum" in long.json()["error"]["innererror"]["message"]
    enum = fno.patch(key, json={"IsExternallyMaintained": "Maybe"})
    assert enum.status_code == 400
    assert fno.delete(key).status_code == 204 and fno.get(key).status_code == 404


def test_enum_literal_filters_and_unknown_property(fno: httpx.Client):
    flt = "IsExternallyMaintained eq Microsoft.Dynamics.DataEntities.NoYes'No'"
    rows = fno.get("CustomersV3", params={"$filter": flt, "$top": "3"}).json()["value"]
    assert len(rows) == 3 and all(r["IsExternallyMaintained"] == "No" for r in rows)
    bad = fno.post("CustomersV3", json={"CustomerAccount": "X-1", "OrgName": "x"})
    assert bad.status_code == 400 and "OrgName" in bad.json()["error"]["innererror"]["message"]


def test_metadata_lists_every_entity_of_the_spec(fno: httpx.Client):
    import json
    from pathlib import Path

    from p2c_core.clients.metadata import parse_csdl

    spec = json.loads((Path(__file__).resolve().parents[2] / "p2c_sandbox/data/fno-entities.json").read_text())
    sets = parse_csdl(fno.get("$metadata").content)
    for name, entity in spec["entities"].items():
        assert set(sets[name].properties) == set(entity["properties"]), name


def test_number_sequences_number_documents_and_customers_and_orders_get_their_creation_time(fno: httpx.Client):
    # APIS.md: "Documents numbered by F&O number sequences (sales orders, quotations) get
    # their number on create"; customer accounts likewise. FLOWS.md finds new F&O orders by
    # OrderCreationDateTime, which F&O stamps when it creates the order.
    before = datetime.now(UTC).replace(microsecond=0)
    for entity_set, key, prefix in (("CDSSalesOrderHeaders", "SalesOrderNumber", "SO-"),
                                    ("CDSSalesQuotationHeaders", "SalesQuotationNumber", "QT-"),
                                    ("CustomersV3", "CustomerAccount", "C")):  # fmt: skip
        first = fno.post(entity_set, json={"dataAreaId": "usmf"})
        second = fno.post(entity_set, json={"dataAreaId": "usmf"})
        assert first.status_code == second.status_code == 201, first.text
        a, b = first.json()[key], second.json()[key]
        assert a.startswith(prefix) and b.startswith(prefix) and int(b[len(prefix) :]) == int(a[len(prefix) :]) + 1
        assert first.headers["location"].endswith(f"{entity_set}(dataAreaId='usmf',{key}='{a}')")
        assert fno.get(f"{entity_set}(dataAreaId='usmf',{key}='{a}')").status_code == 200
    order = fno.post("CDSSalesOrderHeaders", json={"SalesOrderNumber": "SO-GIVEN-1"}).json()
    assert order["SalesOrderNumber"] == "SO-GIVEN-1"  # a number the client gives is kept
    stamped = datetime.fromisoformat(order["OrderCreationDateTime"].replace("Z", "+00:00"))
    assert before <= stamped <= datetime.now(UTC)
    quote = fno.post("CDSSalesQuotationHeaders", json={}).json()
    assert quote["SalesQuotationExpiryDate"] == "1900-01-01T00:00:00Z"  # F&O's empty date, not a stamp


def test_unauthorized_and_request_ids(fno: httpx.Client):
    # APIS.md: a bearer token authenticates; the activity id comes back in ms-dyn-aid, on
    # every answer.
    denied = fno.get("CustomersV3", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert denied.status_code == 401 and denied.headers["ms-dyn-aid"]
    ok = fno.get("CustomersV3", params={"$top": "1"}, headers={"Authorization": "Bearer token"})
    assert ok.status_code == 200 and ok.headers["ms-dyn-aid"] != denied.headers["ms-dyn-aid"]
