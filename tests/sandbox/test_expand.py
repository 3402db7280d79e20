"""`$expand`, pinned to Dataverse's "Join tables using OData" (cited per test as "the join
doc") and, for F&O, to APIS.md: `$expand` only on navigation properties the entity defines,
and the P2C entities (fno-entities.json) define none."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from p2c_sandbox import Sandbox

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@pytest.fixture
def dv(sb: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/", headers={"OData-Version": "4.0"}) as client:
        yield client


def a_quote(dv: httpx.Client) -> dict[str, Any]:
    """A seeded quote with more than one line."""
    quotes = dv.get("quotes", params={"$select": "name", "$expand": "quote_details($select=quantity)"}).json()
    return next(q for q in quotes["value"] if len(q["quote_details"]) > 1)


def test_single_valued_navigation_with_select(dv: httpx.Client):
    # The join doc, "Expand single-valued navigation properties": the related row comes as an
    # object with the selected columns and its key; @odata.context names the expansion.
    usd = dv.get("transactioncurrencies(isocurrencycode='USD')").json()
    dv.patch("accounts(accountnumber='EXP-1')", json={"name": "Expand One",
             "transactioncurrencyid@odata.bind": "/transactioncurrencies(isocurrencycode='USD')"})  # fmt: skip
    dv.patch("accounts(accountnumber='EXP-2')", json={"name": "Expand Two"})
    both = "accountnumber eq 'EXP-1' or accountnumber eq 'EXP-2'"  # the module's other tests add EXP- rows
    got = dv.get("accounts", params={"$select": "name", "$filter": both,
                                     "$orderby": "accountnumber",
                                     "$expand": "transactioncurrencyid($select=isocurrencycode)"}).json()  # fmt: skip
    assert got["@odata.context"].endswith("$metadata#accounts(name,transactioncurrencyid(isocurrencycode))")
    one, two = got["value"]
    usd_id = usd["transactioncurrencyid"]
    assert one["transactioncurrencyid"] == {"isocurrencycode": "USD", "transactioncurrencyid": usd_id}
    assert two["transactioncurrencyid"] is None  # no currency: null, as OData writes an empty single-valued one


def test_primary_contact_of_an_account_and_a_single_row_read(dv: httpx.Client):
    # The join doc, "Limit columns with $select": primarycontactid($select=fullname); the
    # same $expand works on one row read by its key. fullname is read-only, computed on save.
    person = {"firstname": "Susanna", "lastname": "Stubberod"}
    contact = dv.post("contacts", json=person, headers={"Prefer": "return=representation"}).json()
    key = "accounts(accountnumber='EXP-3')"
    bind = f"/contacts({contact['contactid']})"
    assert dv.patch(key, json={"name": "Litware", "primarycontactid@odata.bind": bind}).is_success
    row = dv.get(key, params={"$select": "name", "$expand": "primarycontactid($select=fullname)"}).json()
    assert row["@odata.context"].endswith("$metadata#accounts(name,primarycontactid(fullname))/$entity")
    assert row["primarycontactid"] == {"fullname": "Susanna Stubberod", "contactid": contact["contactid"]}
    # "Return references": /$ref gives the related row's URL.
    ref = dv.get(key, params={"$select": "name", "$expand": "primarycontactid/$ref"}).json()
    assert ref["primarycontactid"] == {"@odata.id": f"{dv.base_url}contacts({contact['contactid']})"}


def test_collection_valued_navigation_with_select_filter_orderby_top(dv: httpx.Client):
    # The join doc, "Single $expand on collection-valued navigation properties": $select,
    # $filter, $orderby and $top apply to the related rows; each row carries the lookup back
    # to its parent; <nav>@odata.nextLink is the filtered collection with the options, no paging.
    quote = a_quote(dv)
    options = "$select=quantity,priceperunit;$filter=quantity gt 0;$orderby=quantity desc;$top=1"
    got = dv.get(f"quotes({quote['quoteid']})", params={"$select": "name", "$expand": f"quote_details({options})"})
    assert got.status_code == 200, got.text
    lines = got.json()["quote_details"]
    assert len(lines) == 1 and set(lines[0]) == {"@odata.etag", "quantity", "priceperunit", "_quoteid_value",
                                                 "quotedetailid"}  # fmt: skip
    assert lines[0]["quantity"] == max(line["quantity"] for line in quote["quote_details"])
    assert lines[0]["_quoteid_value"] == quote["quoteid"]
    link = got.json()["quote_details@odata.nextLink"]
    assert link.startswith(f"{dv.base_url}quotes({quote['quoteid']})/quote_details?$select=quantity,priceperunit")
    followed = dv.get(link).json()["value"]  # the same rows, ordered and filtered, without $top
    assert [r["quantity"] for r in followed] == sorted((r["quantity"] for r in quote["quote_details"]), reverse=True)


def test_order_and_invoice_lines_and_nested_expand(dv: httpx.Client):
    # The join doc, "Nested expand of single-valued navigation properties" and "Nested
    # $expand on collection-valued navigation properties".
    orders = dv.get("salesorders", params={"$select": "name", "$expand": "order_details($select=quantity)"})
    assert orders.status_code == 200 and any(o["order_details"] for o in orders.json()["value"])
    invoices = dv.get("invoices", params={"$select": "name", "$expand": "invoice_details($select=quantity)"})
    assert invoices.status_code == 200 and all("invoice_details" in i for i in invoices.json()["value"])
    nested = "customerid_account($select=name;$expand=contact_customer_accounts($select=fullname))"
    got = dv.get("quotes", params={"$select": "name", "$expand": nested}).json()
    assert got["@odata.context"].endswith("#quotes(name,customerid_account(name,contact_customer_accounts(fullname)))")
    customer = next(q["customerid_account"] for q in got["value"] if q["customerid_account"])
    contacts = [r for r in dv.get("contacts", params={"$select": "fullname,_parentcustomerid_value"}).json()["value"]
                if r["_parentcustomerid_value"] == customer["accountid"]]  # fmt: skip
    expanded = customer["contact_customer_accounts"]
    assert sorted(c["fullname"] for c in expanded) == sorted(c["fullname"] for c in contacts)


def test_the_documented_errors(dv: httpx.Client):
    def error(expand: str, entity_set: str = "accounts") -> str:
        r = dv.get(entity_set, params={"$select": "name", "$expand": expand})
        assert r.status_code == 400, r.text
        return r.json()["error"]["message"]

    # An unknown navigation property, in the OData library's words.
    assert error("nosuchnav") == "Could not find a property named 'nosuchnav' on type 'Microsoft.Dynamics.CRM.account'."
    assert "'nmae'" in error("primarycontactid($select=nmae)")
    # The join doc, "Return references": /$ref only on single-valued navigation properties.
    refs = "Expand with $ref is only supported on lookup type navigation property."
    assert error("contact_customer_accounts/$ref") == refs
    # The join doc, "Nested $expand on collection-valued navigation properties".
    only = "Only $select and $filter clause can be provided while doing $expand on many-to-one relationship or nested one-to-many relationship."  # noqa: E501
    assert error("primarycontactid($top=1)") == only
    assert error("contact_customer_accounts($top=1;$expand=parentcustomerid_account($select=name))") == only
    # The join doc: $skip, $count, $search and $levels are not supported in an expand.
    assert "$skip" in error("contact_customer_accounts($skip=1)")
    # Change tracking takes no $expand (Dataverse "Use change tracking to synchronize data").
    tracked = dv.get("accounts", params={"$select": "name", "$expand": "primarycontactid"},
                     headers={"Prefer": "odata.track-changes"})  # fmt: skip
    assert tracked.status_code == 400


def test_metadata_declares_both_kinds_of_navigation_property(dv: httpx.Client):
    # CSDL (OData 4.0 Part 3, 7.1): single-valued ones with their referential constraint,
    # collection-valued ones as Collection(...) with the partner lookup.
    root = ET.fromstring(dv.get("$metadata").content)
    types = {t.get("Name"): t for t in root.iter(f"{EDM}EntityType")}
    navs = {n.get("Name"): n for n in types["account"].iter(f"{EDM}NavigationProperty")}
    assert navs["primarycontactid"].get("Type") == "Microsoft.Dynamics.CRM.contact"
    constraint = navs["primarycontactid"].find(f"{EDM}ReferentialConstraint")
    assert constraint is not None and constraint.get("Property") == "_primarycontactid_value"
    assert navs["contact_customer_accounts"].get("Type") == "Collection(Microsoft.Dynamics.CRM.contact)"
    assert navs["contact_customer_accounts"].get("Partner") == "parentcustomerid_account"
    quote_navs = {n.get("Name"): n.get("Type") for n in types["quote"].iter(f"{EDM}NavigationProperty")}
    assert quote_navs["quote_details"] == "Collection(Microsoft.Dynamics.CRM.quotedetail)"
    order_navs = {n.get("Name") for n in types["salesorder"].iter(f"{EDM}NavigationProperty")}
    invoice_navs = {n.get("Name") for n in types["invoice"].iter(f"{EDM}NavigationProperty")}
    assert "order_details" in order_navs and "invoice_details" in invoice_navs


def test_f_and_o_expand_of_a_navigation_property_the_entity_does_not_define(sb: Sandbox):
    # APIS.md: F&O expands only navigation properties the entity defines; the P2C entities
    # define none (fno-entities.json, and so no NavigationProperty in the sandbox's CSDL).
    fno = httpx.Client(base_url=sb.fno_url + "/data/")
    r = fno.get("CustomersV3", params={"$expand": "CustomerContacts"})
    assert r.status_code == 400
    assert r.json()["error"]["innererror"]["message"] == (
        "Could not find a property named 'CustomerContacts' on type 'Microsoft.Dynamics.DataEntities.CustomersV3'."
    )
    one = fno.get("CustomersV3(dataAreaId='usmf',CustomerAccount='US-001')", params={"$expand": "Lines"})
    assert one.status_code == 400
    assert b"NavigationProperty" not in fno.get("$metadata").content


def an_account_with_contacts(dv: httpx.Client, number: str, count: int) -> str:
    created = dv.post("accounts", json={"name": f"Paged {number}", "accountnumber": number},
                      headers={"Prefer": "return=representation"}).json()  # fmt: skip
    bind = f"/accounts({created['accountid']})"
    for n in range(count):
        person = {"firstname": "Page", "lastname": f"{number} {n}", "parentcustomerid_account@odata.bind": bind}
        assert dv.post("contacts", json=person).status_code == 204
    return created["accountid"]


def test_a_single_level_expand_is_not_paged_and_its_next_link_has_no_paging(dv: httpx.Client):
    # The join doc, "Single $expand on collection-valued navigation properties": "no paging is
    # applied to the expanded rows. If you include the Prefer: odata.maxpagesize request
    # header, paging is only applied to the EntitySet resource"; the <nav>@odata.nextLink
    # "includes no paging information".
    account = an_account_with_contacts(dv, "EXP-SINGLE", 5)
    got = dv.get("accounts", params={"$select": "name", "$filter": "accountnumber eq 'EXP-SINGLE'",
                                     "$expand": "contact_customer_accounts($select=fullname)"},
                 headers={"Prefer": "odata.maxpagesize=2"}).json()  # fmt: skip
    contacts = got["value"][0]["contact_customer_accounts"]
    assert len(contacts) == 5
    assert all(c["@odata.etag"] and c["_parentcustomerid_value"] == account for c in contacts)
    link = got["value"][0]["contact_customer_accounts@odata.nextLink"]
    assert link == f"{dv.base_url}accounts({account})/contact_customer_accounts?$select=fullname"


def test_a_nested_expand_pages_every_expanded_collection(dv: httpx.Client):
    # The join doc, "Nested $expand on collection-valued navigation properties": with a nested
    # $expand anywhere in the query and Prefer: odata.maxpagesize, "paging is applied to each
    # of the expanded collections"; each <nav>@odata.nextLink "includes paging information"
    # and returns "the next set of records". In its example the paged rows come without
    # etag or lookup back to the parent, and a sibling collection without a nested expand
    # of its own is paged as well.
    account = an_account_with_contacts(dv, "EXP-NESTED", 5)
    usd = dv.get("transactioncurrencies(isocurrencycode='USD')").json()["transactioncurrencyid"]
    first = dv.get(f"contacts?$select=contactid&$filter=_parentcustomerid_value eq {account}").json()["value"][0]
    contact = first["contactid"]
    bind = {"transactioncurrencyid@odata.bind": f"/transactioncurrencies({usd})"}
    assert dv.patch(f"contacts({contact})", json=bind).status_code == 204
    expand = ("contact_customer_accounts($select=lastname;$expand=transactioncurrencyid($select=isocurrencycode)),"
              "quote_customer_accounts($select=name)")  # fmt: skip
    prefer = {"Prefer": "odata.maxpagesize=2"}
    got = dv.get(f"accounts({account})", params={"$select": "name", "$expand": expand}, headers=prefer)
    assert got.status_code == 200, got.text
    body = got.json()
    page = body["contact_customer_accounts"]
    assert len(page) == 2 and all(set(c) == {"lastname", "contactid", "transactioncurrencyid"} for c in page)
    link = body["contact_customer_accounts@odata.nextLink"]
    assert link.startswith(f"{dv.base_url}accounts({account})/contact_customer_accounts?$select=lastname&$expand=")
    assert "$skiptoken=" in link
    names = [c["lastname"] for c in page]
    while link:
        more = dv.get(link, headers=prefer).json()
        assert len(more["value"]) <= 2
        names += [c["lastname"] for c in more["value"]]
        link = more.get("@odata.nextLink")
    assert sorted(names) == sorted(f"EXP-NESTED {n}" for n in range(5))
    # Rows come in key order, so the first contact is on the first page, its currency expanded.
    expanded = {c["contactid"]: c["transactioncurrencyid"] for c in page}
    assert expanded[contact] == {"isocurrencycode": "USD", "transactioncurrencyid": usd}
    # The sibling with no quotes: an empty page, a next link without a skip token.
    assert body["quote_customer_accounts"] == []
    assert "$skiptoken" not in body["quote_customer_accounts@odata.nextLink"]


def test_an_expanded_collection_stops_at_5000_rows():
    # The join doc: "Because no paging is applied to the expanded records, up to 5,000 related
    # records can be returned for each expanded collection-valued navigation property."
    with Sandbox(seed=False) as sb, httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/", timeout=60) as dv:
        account = dv.post("accounts", json={"name": "Crowded"}, headers={"Prefer": "return=representation"}).json()
        store = sb.dataverse_store
        with store.transaction():
            for n in range(5_001):
                contactid = f"00000000-0000-4000-8000-{n:012d}"
                version = store.next("version")
                row = {"contactid": contactid, "fullname": f"Person {n}", "statecode": 0,
                       "_parentcustomerid_value": account["accountid"], "versionnumber": version}  # fmt: skip
                store.put("contacts", contactid, row, version)
        got = dv.get(f"accounts({account['accountid']})",
                     params={"$expand": "contact_customer_accounts($select=fullname)"}).json()  # fmt: skip
        assert len(got["contact_customer_accounts"]) == 5_000
        link = got["contact_customer_accounts@odata.nextLink"]
        assert "$skiptoken" not in link  # no paging information: the collection, from its start
        first = dv.get(link).json()
        assert len(first["value"]) == 5_000 and "@odata.nextLink" in first
        assert len(dv.get(first["@odata.nextLink"]).json()["value"]) == 1
