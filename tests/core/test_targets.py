"""Writers on the sandbox: F&O create/update and lines; Sales upserts, lines by derived id, batches."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from p2c_core.clients.dataverse import PROFILE as DATAVERSE
from p2c_core.clients.dataverse import DataverseClient
from p2c_core.clients.odata import ODataClient
from p2c_core.errors import P2CError, PermanentError
from p2c_core.flow import Const, Dataverse, Field, FinOps, Flow, Lines
from p2c_core.flows import get_flow
from p2c_core.targets import BatchWriter, DataverseWriter, FnoWriter, LineWrite, WriteItem, WriteResult
from tests.core.sandboxed import Services, services

ACCOUNTS = get_flow("accounts")
QUOTES = get_flow("quotes")
# Products with one line each, their price list item: a flow with Sales lines matched by a
# column, not a line number (the standard products flow leaves price list items to the P2C solution).
PRODUCTS = Flow(
    name="priced_products",
    source=FinOps("CDSReleasedDistinctProducts", key="ProductNumber"),
    target=Dataverse("products", key="productnumber"),
    fields={"productnumber": Field("ProductNumber"), "name": Field("ProductName")},
    lines=Lines(
        source=None, source_parent="ProductNumber", source_key=None, target="productpricelevels",
        target_parent="productid", target_key=None, match=("pricelevelid",), fields={"amount": Field("SalesPrice")},
    ),
)  # fmt: skip
CREATE_ONLY = {"IsExternallyMaintained": "Yes", "PartyType": "Organization"}
# Sales accounts from F&O customers: a header-only flow with a create-only field.
SALES_ACCOUNTS = Flow(
    name="sales_accounts",
    source=FinOps("CustomersV3", key="CustomerAccount"),
    target=Dataverse("accounts", key="accountnumber"),
    fields={"accountnumber": Field("CustomerAccount"), "name": Field("OrganizationName")},
    on_create={"description": Const("created by p2c")},
)


@pytest.fixture
def sx() -> Iterator[Services]:
    with services() as s:
        yield s


def customer(sx: Services, account: str) -> dict[str, Any] | None:
    found = [r for r in sx.sandbox.fno.rows("CustomersV3") if r["CustomerAccount"] == account]
    return found[0] if found else None


def customer_item(key: str, name: str, *, known: bool, create_only: dict[str, Any] | None = None) -> WriteItem:
    payload = {"CustomerAccount": key, "OrganizationName": name, "CustomerGroupId": "10", "SalesCurrencyCode": "USD"}
    return WriteItem(
        key=key, payload=payload, create_only=CREATE_ONLY if create_only is None else create_only, known=known
    )


# --- F&O -----------------------------------------------------------------------------------


def test_fno_create_sends_create_only_fields_and_update_does_not(sx: Services):
    writer = FnoWriter(sx.fno, ACCOUNTS)
    assert writer.write(customer_item("P2C-1", "Created", known=False)) == WriteResult(target_key="P2C-1")
    created = customer(sx, "P2C-1")
    assert created is not None and created["dataAreaId"] == "usmf"
    assert (created["OrganizationName"], created["IsExternallyMaintained"]) == ("Created", "Yes")
    sx.reset_counts()
    writer.write(customer_item("P2C-1", "Renamed", known=True, create_only={"IsExternallyMaintained": "No"}))
    updated = customer(sx, "P2C-1")
    assert updated is not None and (updated["OrganizationName"], updated["IsExternallyMaintained"]) == (
        "Renamed",
        "Yes",
    )
    assert sx.requests("fno") == [("PATCH", "CustomersV3")]  # known: no look-up first


def test_fno_create_of_a_record_that_exists_becomes_an_update(sx: Services):
    before = customer(sx, "US-001")
    assert before is not None and before["IsExternallyMaintained"] == "No"
    sx.reset_counts()
    FnoWriter(sx.fno, ACCOUNTS).write(customer_item("US-001", "Forest Wholesales Renamed", known=False))
    after = customer(sx, "US-001")
    assert after is not None and after["OrganizationName"] == "Forest Wholesales Renamed"
    assert after["IsExternallyMaintained"] == "No"  # create-only fields are not sent to an existing record
    assert sx.requests("fno") == [("GET", "CustomersV3"), ("PATCH", "CustomersV3")]


def test_fno_update_of_a_record_that_is_gone_becomes_a_create(sx: Services):
    FnoWriter(sx.fno, ACCOUNTS).write(customer_item("P2C-GONE", "Back", known=True))
    back = customer(sx, "P2C-GONE")
    assert back is not None and (back["OrganizationName"], back["PartyType"]) == ("Back", "Organization")


def test_a_create_only_flow_leaves_an_existing_fno_record_alone(sx: Services):
    flow = Flow(
        name="once",
        source=Dataverse("accounts", key="accountnumber"),
        target=FinOps("CustomersV3", key="CustomerAccount"),
        fields={"CustomerAccount": Field("accountnumber"), "OrganizationName": Field("name")},
        create_only=True,
    )
    FnoWriter(sx.fno, flow).write(customer_item("US-002", "Not Written", known=False))
    after = customer(sx, "US-002")
    assert after is not None and after["OrganizationName"] == "Grand Hotel Supplies"


def quotation_lines(sx: Services, number: str) -> dict[int, dict[str, Any]]:
    return {
        r["LineCreationSequenceNumber"]: r
        for r in sx.sandbox.fno.rows("CDSSalesQuotationLines")
        if r["SalesQuotationNumber"] == number
    }


def quote_item(number: str, lines: dict[int, float], *, known: bool) -> WriteItem:
    header = {"SalesQuotationNumber": number, "RequestingCustomerAccountNumber": "US-001",
              "InvoiceCustomerAccountNumber": "US-001", "CurrencyCode": "USD"}  # fmt: skip
    return WriteItem(
        key=number,
        payload=header,
        create_only={},
        known=known,
        lines=[
            LineWrite(
                key=n,
                payload={"LineCreationSequenceNumber": n, "ProductNumber": "D0001", "RequestedSalesQuantity": q},
                create_only={"LineDescription": f"line {n}"},
            )
            for n, q in lines.items()
        ],
    )


def test_fno_lines_are_created_updated_and_deleted_as_the_source_has_them(sx: Services):
    writer = FnoWriter(sx.fno, QUOTES)
    writer.write(quote_item("QUO-T1", {1: 1.0, 2: 2.0}, known=False))
    lines = quotation_lines(sx, "QUO-T1")
    assert {n: r["RequestedSalesQuantity"] for n, r in lines.items()} == {1: 1.0, 2: 2.0}
    assert lines[2]["LineDescription"] == "line 2"
    sx.reset_counts()
    writer.write(quote_item("QUO-T1", {1: 1.0, 2: 5.0, 3: 3.0}, known=True))
    lines = quotation_lines(sx, "QUO-T1")
    assert {n: r["RequestedSalesQuantity"] for n, r in lines.items()} == {1: 1.0, 2: 5.0, 3: 3.0}
    # The header, one read of the lines, then one changeset: line 2 changed, line 3 new;
    # line 1 is equal and left alone.
    assert sx.requests("fno") == [
        ("GET", "CDSSalesQuotationLines"),
        ("PATCH", "CDSSalesQuotationHeaders"),
        ("POST", "$batch"),
    ]
    assert sx.operations("fno") == [("PATCH", "CDSSalesQuotationLines"), ("POST", "CDSSalesQuotationLines")]
    writer.write(quote_item("QUO-T1", {3: 3.0}, known=True))
    assert set(quotation_lines(sx, "QUO-T1")) == {3}


# --- Dataverse -------------------------------------------------------------------------------


def account_item(key: str, name: str, *, known: bool, note: str = "created by p2c") -> WriteItem:
    return WriteItem(
        key=key, payload={"accountnumber": key, "name": name}, create_only={"description": note}, known=known
    )


def test_dataverse_upsert_sends_create_only_fields_only_when_it_creates(sx: Services):
    writer = DataverseWriter(sx.dataverse, SALES_ACCOUNTS)
    writer.write(account_item("FO-1", "New", known=False))
    assert sx.row("accounts", accountnumber="FO-1")["description"] == "created by p2c"
    writer.write(account_item("FO-1", "Renamed", known=False, note="second create-only"))  # exists: looked up first
    row = sx.row("accounts", accountnumber="FO-1")
    assert (row["name"], row["description"]) == ("Renamed", "created by p2c")
    sx.reset_counts()
    writer.write(account_item("FO-1", "Known", known=True, note="third"))
    row = sx.row("accounts", accountnumber="FO-1")
    assert (row["name"], row["description"]) == ("Known", "created by p2c")
    assert sx.requests() == [("PATCH", "accounts")]


def test_a_create_only_flow_does_not_write_an_existing_sales_record(sx: Services):
    flow = Flow(**{**vars(SALES_ACCOUNTS), "name": "sales_once", "create_only": True})
    existing = sx.sandbox.dataverse.rows("accounts")[0]
    DataverseWriter(sx.dataverse, flow).write(account_item(existing["accountnumber"], "Not Written", known=False))
    assert sx.row("accounts", accountnumber=existing["accountnumber"])["name"] == existing["name"]


class LoseFirstAnswer(httpx.BaseTransport):
    """A network that loses the answer to the first request `lost` picks, after the service handled it."""

    def __init__(self, lost: str) -> None:
        self.inner = httpx.HTTPTransport()
        self.lost = lost
        self.fired = False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if not self.fired and f"{request.method} {request.url.path}".startswith(self.lost):
            self.fired = True
            response.read()
            raise httpx.ReadError("connection reset after the request was handled", request=request)
        return response

    def close(self) -> None:
        self.inner.close()


def product_item(sx: Services, number: str, price: float, *, known: bool) -> WriteItem:
    retail = sx.row("pricelevels", name="Retail USA")["pricelevelid"]
    unit = sx.row("uoms", name="Primary Unit")["uomid"]
    line = LineWrite(
        key=None,
        payload={"pricelevelid@odata.bind": f"/pricelevels({retail})", "uomid@odata.bind": f"/uoms({unit})",
                 "amount": price},
        create_only={},
    )  # fmt: skip
    return WriteItem(
        key=number, payload={"productnumber": number, "name": f"Product {number}"}, create_only={}, known=known,
        lines=[line],
    )  # fmt: skip


def test_sales_lines_go_by_patch_to_an_id_derived_from_document_and_line(sx: Services):
    # The lines go in a changeset: the first `$batch` is theirs.
    lossy = LoseFirstAnswer("POST /api/data/v9.2/$batch")
    odata = ODataClient(DATAVERSE, sx.sandbox.dataverse_url, transport=lossy, sleep=lambda _: None)
    writer = DataverseWriter(DataverseClient(odata), PRODUCTS)
    try:
        writer.write(product_item(sx, "P2C-LINES", 10.0, known=False))
    finally:
        odata.close()
    assert lossy.fired  # the line's create was answered into the void and sent again
    product = sx.row("products", productnumber="P2C-LINES")["productid"]
    (line,) = [r for r in sx.sandbox.dataverse.rows("productpricelevels") if r["_productid_value"] == product]
    retail = sx.row("pricelevels", name="Retail USA")["pricelevelid"]
    ident = (retail.lower(),)
    assert line["productpricelevelid"] == str(
        uuid.uuid5(uuid.NAMESPACE_URL, f"p2c:productpricelevels:{product}:{ident}")
    )
    assert line["amount"] == 10.0


def test_sales_lines_are_updated_in_place_and_deleted_when_gone(sx: Services):
    writer = DataverseWriter(sx.dataverse, PRODUCTS)
    writer.write(product_item(sx, "P2C-L2", 10.0, known=False))
    writer.write(product_item(sx, "P2C-L2", 12.5, known=True))
    product = sx.row("products", productnumber="P2C-L2")["productid"]

    def lines() -> list[dict[str, Any]]:
        return [r for r in sx.sandbox.dataverse.rows("productpricelevels") if r["_productid_value"] == product]

    assert [r["amount"] for r in lines()] == [12.5]
    writer.write(WriteItem(key="P2C-L2", payload={"name": "No lines"}, create_only={}, known=True, lines=[]))
    assert lines() == []


# --- batches ---------------------------------------------------------------------------------


def test_fno_write_many_redoes_alone_what_it_guessed_wrong(sx: Services):
    writer = FnoWriter(sx.fno, ACCOUNTS)
    assert isinstance(writer, BatchWriter)
    items = [
        customer_item("P2C-B1", "Batch New", known=False),
        customer_item("US-003", "Jupiter Renamed", known=False),  # exists: the batched create fails
        customer_item("P2C-B2", "Was Deleted", known=True),  # gone: the batched update meets nothing
    ]
    results = writer.write_many(items)
    assert results == [WriteResult("P2C-B1"), WriteResult("US-003"), WriteResult("P2C-B2")]
    names = {k: (customer(sx, k) or {}).get("OrganizationName") for k in ("P2C-B1", "US-003", "P2C-B2")}
    assert names == {"P2C-B1": "Batch New", "US-003": "Jupiter Renamed", "P2C-B2": "Was Deleted"}
    assert (customer(sx, "US-003") or {})["IsExternallyMaintained"] == "No"  # updated, not re-created


def test_fno_write_many_returns_an_items_own_error_and_writes_the_others(sx: Services):
    bad = customer_item("P2C-BAD", "Bad", known=False)
    bad = WriteItem(key=bad.key, payload={**bad.payload, "NoSuchProperty": 1}, create_only={}, known=False)
    results = FnoWriter(sx.fno, ACCOUNTS).write_many([bad, customer_item("P2C-OK", "Good", known=False)])
    assert isinstance(results[0], PermanentError) and isinstance(results[0], P2CError)
    assert results[1] == WriteResult("P2C-OK")
    assert customer(sx, "P2C-BAD") is None and customer(sx, "P2C-OK") is not None


def test_dataverse_write_many_updates_without_create_only_fields_what_it_took_for_new(sx: Services):
    existing = sx.sandbox.dataverse.rows("accounts")[0]
    writer = DataverseWriter(sx.dataverse, SALES_ACCOUNTS)
    sx.reset_counts()
    results = writer.write_many(
        [
            account_item("FO-B1", "Batch New", known=False),
            account_item(existing["accountnumber"], "Renamed", known=False),
        ]
    )
    assert results == [WriteResult("FO-B1"), WriteResult(existing["accountnumber"])]
    assert sx.row("accounts", accountnumber="FO-B1")["description"] == "created by p2c"
    again = sx.row("accounts", accountnumber=existing["accountnumber"])
    assert (again["name"], again["description"]) == ("Renamed", existing["description"])
    # One batch of creates; the existing one (412) in one more batch, as an update only.
    assert sx.requests() == [("POST", "$batch"), ("POST", "$batch")]


def test_dataverse_write_many_leaves_existing_records_of_a_create_only_flow_alone(sx: Services):
    existing = sx.sandbox.dataverse.rows("accounts")[0]
    writer = DataverseWriter(sx.dataverse, dataclasses.replace(SALES_ACCOUNTS, create_only=True))
    sx.reset_counts()
    items = [account_item("FO-C1", "Batch New", known=False), account_item(existing["accountnumber"], "X", known=False)]
    assert writer.write_many(items) == [WriteResult("FO-C1"), WriteResult(existing["accountnumber"])]
    assert sx.row("accounts", accountnumber=existing["accountnumber"])["name"] == existing["name"]
    assert sx.requests() == [("POST", "$batch")]  # no updates: nothing else sent


def test_dataverse_write_many_creates_alone_what_was_deleted_between_its_batches(
    sx: Services, monkeypatch: pytest.MonkeyPatch
):
    existing = sx.sandbox.dataverse.rows("accounts")[0]
    number, guid = existing["accountnumber"], existing["accountid"]
    odata = sx.dataverse.odata
    sent = odata.batch
    calls: list[int] = []

    def batch(requests):  # the record is deleted in Sales after the creates, before the updates
        calls.append(len(requests))
        if len(calls) == 2:
            sx.dataverse.delete("accounts", guid)
        return sent(requests)

    monkeypatch.setattr(odata, "batch", batch)
    writer = DataverseWriter(sx.dataverse, SALES_ACCOUNTS)
    assert writer.write_many([account_item(number, "Back again", known=False)]) == [WriteResult(number)]
    assert calls == [1, 1]  # the update met nothing (If-Match: *, a 404): `write` created it
    again = sx.row("accounts", accountnumber=number)
    assert (again["name"], again["description"]) == ("Back again", "created by p2c")
