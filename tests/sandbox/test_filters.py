"""`$filter` as each service reads it. Dataverse: "Filter rows using OData" (cited as "the
filter doc"); F&O: "Open Data Protocol (OData)", Filter details and Using Enums ("the F&O
OData doc")."""

from __future__ import annotations

import re
from typing import Any

import httpx

from p2c_sandbox import Sandbox


def names(client: httpx.Client, flt: str, entity_set: str = "accounts", column: str = "name") -> list[Any]:
    response = client.get(entity_set, params={"$select": column, "$filter": flt})
    assert response.status_code == 200, response.text
    return sorted(r[column] for r in response.json()["value"])


def stored(sb: Sandbox, entity_set: str) -> list[dict[str, Any]]:
    return sb.dataverse.rows(entity_set)


def test_logical_and_grouping_operators_and_string_functions(sb: Sandbox, dv: httpx.Client):
    # The filter doc: `and`, `or`, `not`, parentheses; contains, startswith, endswith; string
    # comparisons are case-insensitive.
    flt = "(customertypecode eq 1 or customertypecode eq 5) and not contains(name,'CONSULTING')"
    assert names(dv, flt) == ["Contoso Competitor Corp"]
    assert names(dv, "endswith(name,'gmbh')") == ["Müller Maschinenbau GmbH"]
    inactive = sorted(r["name"] for r in stored(sb, "accounts") if r["statecode"] == 1)
    assert names(dv, "statecode ne 0") == inactive and len(inactive) == 3
    assert names(dv, "accountnumber eq null") == ["Unnumbered Holdings"]


def test_string_function_values_are_like_patterns(sb: Sandbox, dv: httpx.Client):
    # The filter doc, "Use wildcard characters": in string filters % _ [] [^] are SQL
    # wildcards ("Matches any single character within the specified range or set").
    every = [r["name"] for r in stored(sb, "accounts")]
    expected = sorted(n for n in every if re.match(r"(?i)[cf]o", n))
    assert names(dv, "startswith(name,'[cf]o')") == expected and len(expected) >= 4
    assert names(dv, "startswith(name,'_ontoso')") == sorted(n for n in every if n[1:7].lower() == "ontoso")
    assert names(dv, "contains(name,'100%')") == ["100% Natural Foods"]


def test_dataverse_query_functions_in_and_not_in(sb: Sandbox, dv: httpx.Client):
    # The filter doc, "Dataverse query functions" and "Manage single quotes": In and NotIn take
    # an array of values; a value with a single quote in it goes in double quotes.
    both = 'Microsoft.Dynamics.CRM.In(PropertyName=\'name\',PropertyValues=["O\'Brien & Sons","Relecloud"])'
    assert names(dv, both) == ["O'Brien & Sons", "Relecloud"]
    single = "Microsoft.Dynamics.CRM.In(PropertyName='name',PropertyValues=['O''Brien & Sons'])"
    assert names(dv, single) == ["O'Brien & Sons"]
    others = "Microsoft.Dynamics.CRM.NotIn(PropertyName='customertypecode',PropertyValues=['3'])"
    got = dv.get("accounts", params={"$select": "customertypecode", "$filter": others}).json()["value"]
    codes = {r["customertypecode"] for r in got}  # other tests of this module may add accounts
    assert 3 not in codes and {1, 5, 6, 10, 11} <= codes


def test_the_odata_in_operator_is_not_dataverses(dv: httpx.Client):
    # Dataverse has no `in` operator ("Filter rows using OData" lists none; its In function
    # is the way): it answers "The method or operation is not implemented." (DynamicsWebApi
    # issue 121), a not implemented operation being 501 ("Compose HTTP requests and handle errors").
    refused = dv.get("accounts", params={"$filter": "customertypecode in (1,5)"})
    assert refused.status_code == 501
    assert refused.json()["error"]["message"] == "The method or operation is not implemented."
    assert refused.headers["x-ms-service-request-id"]


def test_date_comparisons_and_lookup_values(sb: Sandbox, dv: httpx.Client):
    # The filter doc: comparison operators on any column, lookups by their _<name>_value.
    new = dv.post("accounts", json={"name": "Dated Co"}, headers={"Prefer": "return=representation"}).json()
    stamp = new["modifiedon"]
    later = dv.get("accounts", params={"$select": "name,modifiedon", "$filter": f"modifiedon ge {stamp}"}).json()
    assert "Dated Co" in {r["name"] for r in later["value"]} and all(r["modifiedon"] >= stamp for r in later["value"])
    assert "Dated Co" not in names(dv, f"modifiedon lt {stamp}")
    # An Edm.Date literal against a date column compares days.
    lines = stored(sb, "quotedetails")
    expected = sorted(r["quotedetailid"] for r in lines if (r.get("requestdeliveryby") or "") >= "2026-12-03")
    assert names(dv, "requestdeliveryby ge 2026-12-03", "quotedetails", "quotedetailid") == expected
    assert 0 < len(expected) < len(lines)
    usd = dv.get("transactioncurrencies(isocurrencycode='USD')").json()["transactioncurrencyid"]
    in_usd = sorted(r["accountid"] for r in stored(sb, "accounts") if r.get("_transactioncurrencyid_value") == usd)
    assert names(dv, f"_transactioncurrencyid_value eq {usd}", column="accountid") == in_usd and in_usd


def test_fno_enums_compare_with_eq_and_ne_only(fno: httpx.Client):
    # The F&O OData doc, Using Enums: Microsoft.Dynamics.DataEntities.NoYes'Yes'; "The
    # operations supported for enums are eq and ne."
    yes = "IsExternallyMaintained ne Microsoft.Dynamics.DataEntities.NoYes'No'"
    rows = fno.get("CustomersV3", params={"$filter": yes}).json()["value"]
    assert all(r["IsExternallyMaintained"] == "Yes" for r in rows)
    after = "PartyType gt Microsoft.Dynamics.DataEntities.DirPartyBaseType'Organization'"
    ordered = fno.get("CustomersV3", params={"$filter": after})
    assert ordered.status_code == 400 and "eq and ne" in ordered.json()["error"]["innererror"]["message"]


def test_fno_refuses_in_and_matches_wildcards(fno: httpx.Client):
    # The F&O OData doc: "The operators 'has' and 'in' are not supported."; Contains "has been
    # implemented as a wildcard character": $filter=StringField eq '*retail*'.
    refused = fno.get("CustomersV3", params={"$filter": "CustomerAccount in ('US-001','US-002')"})
    assert refused.status_code == 400
    assert refused.json()["error"]["innererror"]["message"] == "The operators 'has' and 'in' are not supported."
    assert refused.headers["ms-dyn-aid"]
    every = names(fno, "CustomerAccount ne ''", "CustomersV3", "OrganizationName")
    wholesale = names(fno, "OrganizationName eq '*WHOLESALES'", "CustomersV3", "OrganizationName")
    assert wholesale == [n for n in every if n.endswith("Wholesales")] and len(wholesale) == 6
    assert names(fno, "OrganizationName eq '*o*s*'", "CustomersV3", "OrganizationName") == [
        n for n in every if re.fullmatch(r"(?i).*o.*s.*", n)
    ]
    others = names(fno, "OrganizationName ne '*Wholesales'", "CustomersV3", "OrganizationName")
    assert sorted(others + wholesale) == every


def test_fno_date_comparisons_and_free_text_invoices(sb: Sandbox, fno: httpx.Client):
    # FLOWS.md, invoices: "InvoiceDate watermark" and "SalesOrderNumber ne ''" (free-text
    # invoices excluded); InvoiceDate is an Edm.DateTimeOffset (fno-entities.json).
    # The caller's company's invoices (another company's are seeded too).
    headers = [r for r in sb.fno.rows("ExternallyMaintainedCustomerSalesInvoiceHeaders") if r["dataAreaId"] == "usmf"]
    entity = "ExternallyMaintainedCustomerSalesInvoiceHeaders"
    since = names(fno, "InvoiceDate ge 2026-11-20T00:00:00Z", entity, "InvoiceNumber")
    assert since == sorted(r["InvoiceNumber"] for r in headers if r["InvoiceDate"] >= "2026-11-20")
    assert 0 < len(since) < len(headers)
    of_orders = names(fno, "SalesOrderNumber ne ''", entity, "InvoiceNumber")
    assert of_orders == sorted(r["InvoiceNumber"] for r in headers if r["SalesOrderNumber"])
    assert len(of_orders) == len(headers) - 1
