"""p2c beside Microsoft's P2C solution (issue 22): p2c writes what FLOWS.md says, the solution's
plug-ins in the sandbox do the rest, and `p2c check` tells an org without the solution."""

from __future__ import annotations

import uuid
from collections import Counter
from typing import Any

import httpx
import pytest

from p2c_core import ops
from p2c_core.flows import all_flows

from .conftest import E2E

ALL = [f.name for f in all_flows()]
INVOICED, CONFIRMED = 647390003, 647390001


def fno_client(e2e: E2E) -> httpx.Client:
    return httpx.Client(base_url=e2e.sandbox.fno_url + "/data/", params={"cross-company": "true"})


def rows(e2e: E2E, entity_set: str, **match: Any) -> list[dict[str, Any]]:
    return [r for r in e2e.sandbox.dataverse.rows(entity_set) if all(r.get(k) == v for k, v in match.items())]


@pytest.fixture
def quick(e2e: E2E, monkeypatch: pytest.MonkeyPatch) -> E2E:
    monkeypatch.setenv("P2C_RECORD_RETRY_BASE_SECONDS", "0.2")
    e2e.restart_runtime()
    return e2e


def test_repeated_syncs_leave_one_price_list_item_per_product_made_by_the_solution(quick: E2E):
    e2e = quick
    for _ in range(2):
        e2e.sync("products")
    with fno_client(e2e) as fno:  # a repriced product: the item follows, still one
        fno.patch("CDSReleasedDistinctProducts(dataAreaId='usmf',ProductNumber='D0002')", json={"SalesPrice": 360.0})
    e2e.sync("products")
    e2e.sync("products")
    items = e2e.sandbox.dataverse.rows("productpricelevels")
    per_pair = Counter((i["_productid_value"], i["_pricelevelid_value"]) for i in items)
    assert per_pair and max(per_pair.values()) == 1
    products = {p["productid"]: p for p in e2e.sandbox.dataverse.rows("products")}
    for item in items:  # on the product's default price list, at its price: what p2c wrote on the product
        product = products[item["_productid_value"]]
        assert (item["_pricelevelid_value"], item["amount"]) == (product["_pricelevelid_value"], product["price"])
    (d0002,) = [p for p in products.values() if p["productnumber"] == "D0002"]
    assert [i["amount"] for i in items if i["_productid_value"] == d0002["productid"]] == [360.0]
    # p2c itself wrote no price list item: every write to the table came from the plug-in.
    writes = [r for r in e2e.sandbox.dataverse_service.accounting.snapshot()["requests"]
              if r["entity_set"] == "productpricelevels" and r["method"] != "GET"]  # fmt: skip
    assert writes == []


def test_an_invoiced_order_is_set_invoiced_and_the_invoice_takes_its_owner_from_the_solution(quick: E2E):
    e2e = quick
    e2e.sync(*[n for n in ALL if n != "invoices"])
    invoiced = {r["SalesOrderNumber"] for r in e2e.sandbox.fno.rows("ExternallyMaintainedCustomerSalesInvoiceHeaders")
                if r["SalesOrderNumber"]}  # fmt: skip
    order = next(o for o in e2e.sandbox.dataverse.rows("salesorders") if o["ordernumber"] in invoiced)
    seller = str(uuid.uuid4())
    with e2e.dataverse() as dv:
        dv.patch(f"systemusers({seller})", json={"firstname": "Sam", "lastname": "Seller"}).raise_for_status()
        # Before the invoice: the order back at Confirmed and owned by someone else than p2c.
        back = {"msdynce_processingstatus": CONFIRMED, "ownerid@odata.bind": f"/systemusers({seller})"}
        dv.patch(f"salesorders({order['salesorderid']})", json=back).raise_for_status()
    for _ in range(2):
        e2e.sync("invoices")
    (invoice,) = rows(e2e, "invoices", _salesorderid_value=order["salesorderid"])
    assert invoice["_ownerid_value"] == seller
    (after,) = rows(e2e, "salesorders", salesorderid=order["salesorderid"])
    assert after["msdynce_processingstatus"] == INVOICED
    assert invoice["msdynce_invoicedate"] and invoice["invoicenumber"]
    lines = rows(e2e, "invoicedetails", _invoiceid_value=invoice["invoiceid"])
    assert lines and all(r["msdynce_invoicenumber"] == invoice["invoicenumber"] for r in lines)


def test_an_order_waits_for_its_totals_and_syncs_once_they_are_calculated(quick: E2E):
    e2e = quick
    fno = e2e.sandbox.fno_service
    waiting = [r["SalesOrderNumber"] for r in e2e.sandbox.fno.rows("CDSSalesOrderHeaders")
               if r["AreTotalsUpdated"] == "No"]  # fmt: skip
    assert len(waiting) == 1  # the demo's order changed since the job last ran
    e2e.sync(*ALL)
    assert rows(e2e, "salesorders", ordernumber=waiting[0]) == []
    # A carried order changed in F&O while the job does not run: Sales keeps the old totals.
    order = next(o for o in e2e.sandbox.dataverse.rows("salesorders") if o["msdynce_ismaintainedexternally"])
    number = order["ordernumber"]
    fno.calculate_totals = False
    with fno_client(e2e) as client:
        line = next(r for r in e2e.sandbox.fno.rows("CDSSalesOrderLines") if r["SalesOrderNumber"] == number)
        address = (f"CDSSalesOrderLines(dataAreaId='usmf',SalesOrderNumber='{number}',"
                   f"LineCreationSequenceNumber={line['LineCreationSequenceNumber']})")  # fmt: skip
        client.patch(address, json={"OrderedSalesQuantity": line["OrderedSalesQuantity"] + 5}).raise_for_status()
    assert e2e.sync("fno_orders").flows["fno_orders"].written == 0
    assert rows(e2e, "salesorders", ordernumber=number)[0]["totalamount"] == order["totalamount"]
    assert fno.calculate_sales_totals() == 2  # the batch job runs: both get their totals
    fno.calculate_totals = True
    assert e2e.sync("fno_orders").flows["fno_orders"].written == 2
    assert rows(e2e, "salesorders", ordernumber=waiting[0])
    (header,) = [r for r in e2e.sandbox.fno.rows("CDSSalesOrderHeaders") if r["SalesOrderNumber"] == number]
    assert rows(e2e, "salesorders", ordernumber=number)[0]["totalamount"] == header["OrderTotalAmount"]
    assert header["OrderTotalAmount"] != order["totalamount"]


def test_a_revised_quote_updates_its_one_f_and_o_quotation_with_the_active_revisions_lines(quick: E2E):
    e2e = quick
    e2e.sync(*ALL)
    quote = next(q for q in e2e.sandbox.dataverse.rows("quotes") if q["statecode"] == 1
                 and q["msdynce_hasexternallymaintainedproductsonly"]
                 and len(rows(e2e, "quotedetails", _quoteid_value=q["quoteid"])) >= 2)  # fmt: skip
    number = quote["quotenumber"]
    with e2e.dataverse() as dv:
        got = dv.post("ReviseQuote", json={"QuoteId": quote["quoteid"], "ColumnSet": {"Columns": ["quotenumber"]}})
        got.raise_for_status()
        revision = got.json()["quoteid"]
        draft = sorted(rows(e2e, "quotedetails", _quoteid_value=revision), key=lambda r: r["sequencenumber"])
        dv.patch(f"quotedetails({draft[0]['quotedetailid']})", json={"quantity": 42.0}).raise_for_status()
        dv.delete(f"quotedetails({draft[-1]['quotedetailid']})").raise_for_status()
        # A draft revision is not synced: F&O keeps the previous one until it is activated.
        assert e2e.sync("quotes").flows["quotes"].written == 0
        dv.patch(f"quotes({revision})", json={"statecode": 1, "statuscode": 3}).raise_for_status()
    assert e2e.sync("quotes").flows["quotes"].written == 1
    headers = [r for r in e2e.sandbox.fno.rows("CDSSalesQuotationHeaders") if r["SalesQuotationNumber"] == number]
    assert len(headers) == 1
    in_fno = {r["LineCreationSequenceNumber"]: r for r in e2e.sandbox.fno.rows("CDSSalesQuotationLines")
              if r["SalesQuotationNumber"] == number}  # fmt: skip
    active = rows(e2e, "quotedetails", _quoteid_value=revision)
    assert set(in_fno) == {r["sequencenumber"] for r in active}
    assert in_fno[draft[0]["sequencenumber"]]["RequestedSalesQuantity"] == 42.0
    assert all(r["msdynce_quoterevisionnumber"] == 1 for r in active)
    assert ops.reconcile(e2e.runtime, "quotes").differing == {}
    assert e2e.sync("quotes").flows["quotes"].written == 0  # settled


class TestWithoutTheSolution:
    @pytest.fixture
    def sandbox_options(self) -> dict[str, object]:
        return {"p2c_solution": False}

    def test_check_fails_naming_the_missing_columns(self, e2e: E2E):
        problems = [p for p in ops.check(e2e.runtime) if p.flow == "p2c solution"]
        named = {(p.entity_set, p.name) for p in problems}
        assert ("contacts", "msdynce_contactnumber") in named
        assert ("salesorders", "msdynce_processingstatus") in named
        assert ("invoicedetails", "msdynce_ismisctax") in named
        assert ("msdynce_p2cautonumbers", "") in named
        assert all("not installed" in p.problem or "adds it" in p.problem for p in problems)
        assert "msdynce_contactnumber" in str(next(p for p in problems if p.name == "msdynce_contactnumber"))
        # The flows' own check names the same columns where they read them.
        flow_problems = {(p.flow, p.name) for p in ops.check(e2e.runtime) if p.flow != "p2c solution"}
        assert ("contacts", "msdynce_contactnumber") in flow_problems


def test_check_names_missing_processing_status_values(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    assert [p for p in ops.check(e2e.runtime) if p.flow == "p2c solution"] == []
    from p2c_sandbox import metadata_api

    monkeypatch.setitem(metadata_api._CHOICES, "msdynce_processingstatus", [(647390000, "Active")])
    monkeypatch.setattr(metadata_api, "_BUILT", {})
    (problem,) = [p for p in ops.check(e2e.runtime) if p.flow == "p2c solution"]
    assert problem.name == "msdynce_processingstatus" and "647390003 Invoiced" in problem.problem
