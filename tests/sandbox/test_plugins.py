"""The P2C solution's plug-in behaviours in the sandbox, step by step (p2c_sandbox/plugins.py),
and Sales' ReviseQuote action (p2c_sandbox/actions.py)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx

from p2c_sandbox import Sandbox
from p2c_sandbox.plugins import steps
from p2c_sandbox.solution import spec

REP = {"Prefer": "return=representation"}


def one(sb: Sandbox, entity_set: str, **match: Any) -> dict[str, Any]:
    (row,) = [r for r in sb.dataverse.rows(entity_set) if all(r.get(k) == v for k, v in match.items())]
    return row


def test_every_registered_step_has_its_behaviour_in_its_stage_and_mode():
    registered = {(s["plugin_type"].rsplit(".", 1)[-1], s["stage"], s["mode"]) for s in spec()["plugin_steps"]}
    assert len(registered) == 19
    assert {(s.plugin_type, s.stage, s.mode) for s in steps()} == registered
    asynchronous = {s.plugin_type for s in steps() if s.mode == "asynchronous"}
    assert asynchronous == {"PostOperationInvoiceUpdateAsync", "PostOperationOrderUpdateAsync"}


def test_accounts_and_contacts_are_numbered_and_contacts_know_their_company(sb: Sandbox, dv: httpx.Client):
    account = dv.post("accounts", json={"name": "Numbered By P2C"}, headers=REP).json()
    assert re.fullmatch(r"ACC-\d{5}-[A-Z]{6}", account["accountnumber"])
    person = dv.post("contacts", headers=REP, json={
        "lastname": "Employee", "parentcustomerid_account@odata.bind": f"/accounts({account['accountid']})",
    }).json()  # fmt: skip
    assert re.fullmatch(r"CON-\d{5}-[A-Z]{6}", person["msdynce_contactnumber"])
    assert person["msdynce_iscompanyanaccount"] is True
    # The update step filters on parentcustomerid: a move to no company clears the flag.
    dv.patch(f"contacts({person['contactid']})", json={"parentcustomerid_account@odata.bind": None})
    assert one(sb, "contacts", contactid=person["contactid"])["msdynce_iscompanyanaccount"] is False
    given = dv.post("contacts", json={"lastname": "Given", "msdynce_contactnumber": "CON-KEPT"}, headers=REP).json()
    assert given["msdynce_contactnumber"] == "CON-KEPT"


def test_a_contact_with_an_order_becomes_an_active_customer(sb: Sandbox, dv: httpx.Client):
    buyer = dv.post("contacts", json={"lastname": "Buyer"}, headers=REP).json()
    assert buyer["msdynce_isactivecustomer"] is False
    dv.post(
        "salesorders", json={"name": "First order", "customerid_contact@odata.bind": f"/contacts({buyer['contactid']})"}
    )
    assert one(sb, "contacts", contactid=buyer["contactid"])["msdynce_isactivecustomer"] is True


def test_a_product_created_or_repriced_is_on_its_price_list_once(sb: Sandbox, dv: httpx.Client):
    usd = one(sb, "transactioncurrencies", isocurrencycode="USD")["transactioncurrencyid"]
    retail = one(sb, "pricelevels", name="Retail USA")["pricelevelid"]
    product = dv.post("products", headers=REP, json={
        "productnumber": "PLUG-1", "name": "Plug-in priced", "price": 10.0,
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({usd})",
        "pricelevelid@odata.bind": f"/pricelevels({retail})",
    }).json()  # fmt: skip

    def items() -> list[dict[str, Any]]:
        return [r for r in sb.dataverse.rows("productpricelevels") if r["_productid_value"] == product["productid"]]

    assert [(i["_pricelevelid_value"], i["amount"]) for i in items()] == [(retail, 10.0)]
    dv.patch(f"products({product['productid']})", json={"price": 12.5})
    dv.patch(f"products({product['productid']})", json={"name": "Renamed: no price change"})
    assert [(i["_pricelevelid_value"], i["amount"]) for i in items()] == [(retail, 12.5)]


def test_an_orders_misc_tax_is_its_one_freight_tax_line(sb: Sandbox, dv: httpx.Client):
    order = dv.post("salesorders", json={"name": "Taxed", "msdynce_misctax": 5.0}, headers=REP).json()

    def tax_lines() -> list[dict[str, Any]]:
        return [r for r in sb.dataverse.rows("salesorderdetails")
                if r["_salesorderid_value"] == order["salesorderid"] and r["msdynce_ismisctax"]]  # fmt: skip

    (line,) = tax_lines()  # created by the synchronous create step
    assert (line["productdescription"], line["isproductoverridden"], line["priceperunit"]) == ("Freight Tax", True, 5.0)
    dv.patch(f"salesorders({order['salesorderid']})", json={"msdynce_misctax": 7.5})
    sb.dataverse_service.plugins.settle()  # the update is the asynchronous step's
    assert [r["priceperunit"] for r in tax_lines()] == [7.5]
    second = dv.post("salesorderdetails", json={
        "salesorderid@odata.bind": f"/salesorders({order['salesorderid']})", "msdynce_ismisctax": True,
        "isproductoverridden": True, "productdescription": "Freight Tax", "quantity": 1.0, "priceperunit": 1.0,
    })  # fmt: skip
    assert second.status_code == 400 and "only one Freight Tax line" in second.json()["error"]["message"]
    dv.patch(f"salesorders({order['salesorderid']})", json={"msdynce_misctax": 0})
    sb.dataverse_service.plugins.settle()
    assert tax_lines() == [] and sb.dataverse_service.plugins.errors == []


def test_an_invoice_of_an_order_sets_it_invoiced_and_takes_its_owner(sb: Sandbox, dv: httpx.Client):
    seller = str(uuid.uuid4())
    dv.patch(f"systemusers({seller})", json={"firstname": "Sam", "lastname": "Seller"}).raise_for_status()
    order = dv.post("salesorders", headers=REP, json={
        "name": "To invoice", "msdynce_processingstatus": 647390001, "ownerid@odata.bind": f"/systemusers({seller})",
    }).json()  # fmt: skip
    invoice = dv.post("invoices", headers=REP, json={
        "name": "INV for order", "salesorderid@odata.bind": f"/salesorders({order['salesorderid']})",
    }).json()  # fmt: skip
    assert one(sb, "salesorders", salesorderid=order["salesorderid"])["msdynce_processingstatus"] == 647390003
    assert one(sb, "invoices", invoiceid=invoice["invoiceid"])["_ownerid_value"] == seller


def test_order_lines_keep_the_externally_maintained_only_flag(sb: Sandbox, dv: httpx.Client):
    external = one(sb, "products", productnumber="D0001")["productid"]
    local = one(sb, "products", productnumber="LOCAL-1")["productid"]
    order = dv.post("salesorders", json={"name": "Mixed"}, headers=REP).json()
    bind = {"salesorderid@odata.bind": f"/salesorders({order['salesorderid']})", "quantity": 1.0}
    dv.post("salesorderdetails", json={**bind, "sequencenumber": 1, "productid@odata.bind": f"/products({external})"})
    flag = "msdynce_hasexternallymaintainedproductsonly"
    assert one(sb, "salesorders", salesorderid=order["salesorderid"])[flag] is True
    second = {**bind, "sequencenumber": 2, "productid@odata.bind": f"/products({local})"}
    made = dv.post("salesorderdetails", json=second, headers=REP).json()
    assert one(sb, "salesorders", salesorderid=order["salesorderid"])[flag] is False
    dv.delete(f"salesorderdetails({made['salesorderdetailid']})").raise_for_status()
    assert one(sb, "salesorders", salesorderid=order["salesorderid"])[flag] is True


def test_revise_quote_closes_the_quote_and_drafts_the_next_revision(sb: Sandbox, dv: httpx.Client):
    product = one(sb, "products", productnumber="D0002")["productid"]
    quote = dv.post("quotes", json={"name": "To revise", "statecode": 1, "statuscode": 3}, headers=REP).json()
    dv.post("quotedetails", json={"quoteid@odata.bind": f"/quotes({quote['quoteid']})", "sequencenumber": 1,
                                  "quantity": 2.0, "productid@odata.bind": f"/products({product})"})  # fmt: skip
    got = dv.post("ReviseQuote", json={"QuoteId": quote["quoteid"], "ColumnSet": {"AllColumns": True}})
    assert got.status_code == 200, got.text
    revised = got.json()
    assert (revised["quotenumber"], revised["revisionnumber"], revised["statecode"]) == (quote["quotenumber"], 1, 0)
    old = one(sb, "quotes", quoteid=quote["quoteid"])
    assert (old["statecode"], old["statuscode"]) == (3, 7)  # Closed, Revised
    (line,) = [r for r in sb.dataverse.rows("quotedetails") if r["_quoteid_value"] == revised["quoteid"]]
    assert (line["quantity"], line["msdynce_quoterevisionnumber"]) == (2.0, 1)
    again = dv.post("ReviseQuote", json={"QuoteId": quote["quoteid"]})
    assert again.status_code == 400  # a closed revision is not revised again


def test_an_org_without_the_solution_runs_no_plugins():
    with Sandbox(p2c_solution=False) as bare, httpx.Client(base_url=bare.dataverse_url + "/api/data/v9.2/") as dv:
        account = dv.post("accounts", json={"name": "Plain"}, headers=REP).json()
        assert account["accountnumber"] is None
        refused = dv.post("salesorders", json={"name": "Taxed", "msdynce_misctax": 5.0})
        assert refused.status_code == 400  # no such column
