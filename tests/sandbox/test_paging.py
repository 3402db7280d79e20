"""Server-driven paging, `$top`, `$count` and `$skip`, pinned to Dataverse's "Page results
using OData" and "Count rows using OData" (cited as "the paging doc" and "the count doc")
and F&O's "Open Data Protocol (OData)" ("the F&O OData doc"): Dataverse pages at 5,000 rows,
F&O at 10,000."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from p2c_sandbox import Sandbox
from p2c_sandbox.volume import generate_accounts, generate_products

DV = "/api/data/v9.2/"


@pytest.fixture(scope="module")
def big() -> Iterator[Sandbox]:
    """A sandbox with more than 5,000 accounts (Dataverse's page) and 10,000 released
    products (F&O's page)."""
    with Sandbox() as sandbox:
        generate_accounts(sandbox.dataverse_service, 5_100, seed=11)
        generate_products(sandbox.fno_service, 10_050, seed=11)
        yield sandbox


@pytest.fixture
def dv(big: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=big.dataverse_url + DV, timeout=60) as client:
        yield client


def stored(sb: Sandbox, entity_set: str) -> list[dict[str, Any]]:
    return sb.dataverse.rows(entity_set)


def test_dataverse_pages_at_5000_rows_and_ignores_a_larger_maxpagesize(big: Sandbox, dv: httpx.Client):
    # The paging doc: "If you don't specify a number, up to 5,000 records may be returned for
    # each request. [...] The service ignores max page size requests larger than 5,000."
    total = len(stored(big, "accounts"))
    assert total > 5_000
    plain = dv.get("accounts", params={"$select": "accountnumber"})
    assert len(plain.json()["value"]) == 5_000 and "$skiptoken=" in plain.json()["@odata.nextLink"]
    assert "preference-applied" not in plain.headers
    larger = dv.get("accounts", params={"$select": "accountnumber"}, headers={"Prefer": "odata.maxpagesize=6000"})
    assert len(larger.json()["value"]) == 5_000 and "@odata.nextLink" in larger.json()
    assert "preference-applied" not in larger.headers  # ignored, so not applied
    rest = dv.get(plain.json()["@odata.nextLink"]).json()
    assert len(rest["value"]) == total - 5_000 and "@odata.nextLink" not in rest
    ids = [r["accountid"] for r in plain.json()["value"] + rest["value"]]
    assert len(set(ids)) == total


def test_dataverse_count_is_capped_at_5000(dv: httpx.Client):
    # The count doc: "@odata.count annotation contains the number of rows, up to 5,000, that
    # matches the filter criteria irrespective of the page size requested."
    counted = dv.get("accounts", params={"$select": "accountid", "$count": "true"},
                     headers={"Prefer": "odata.maxpagesize=3"})  # fmt: skip
    assert counted.json()["@odata.count"] == 5_000 and len(counted.json()["value"]) == 3
    few = dv.get("accounts", params={"$select": "name", "$filter": "startswith(accountnumber,'VOL-000001')",
                                     "$count": "true"}, headers={"Prefer": "odata.maxpagesize=3"})  # fmt: skip
    assert few.json()["@odata.count"] == 10  # VOL-0000010 ... VOL-0000019
    assert len(few.json()["value"]) == 3
    # Every page of the read carries the count of all matching rows, not of those left.
    second = dv.get(few.json()["@odata.nextLink"], headers={"Prefer": "odata.maxpagesize=3"}).json()
    assert second["@odata.count"] == 10 and len(second["value"]) == 3
    # The count doc: `/$count` answers the number alone, as text.
    text = dv.get("accounts/$count", params={"$filter": "startswith(accountnumber,'VOL-000001')"})
    assert text.status_code == 200 and text.headers["content-type"].startswith("text/plain") and text.text == "10"
    assert dv.get("accounts/$count").text == "5000"


def test_dataverse_refuses_skip_and_ignores_top_when_paging(big: Sandbox, dv: httpx.Client):
    # The paging doc: "Dataverse doesn't support the $skip query option"; "Don't use $top with
    # the Prefer: odata.maxpagesize request header. If you include both, $top is ignored."
    skip = dv.get("accounts", params={"$select": "name", "$skip": "10"})
    assert skip.status_code == 400 and skip.json()["error"]["code"] == "0x80060888"
    assert "$skip" in skip.json()["error"]["message"]
    top = dv.get("accounts", params={"$select": "name", "$top": "3"})
    assert len(top.json()["value"]) == 3 and "@odata.nextLink" not in top.json()
    both = dv.get("accounts", params={"$select": "name", "$top": "3"}, headers={"Prefer": "odata.maxpagesize=5"})
    assert len(both.json()["value"]) == 5 and "@odata.nextLink" in both.json()
    # $top larger than a page: the pages together stop at $top.
    seen: list[str] = []
    link: str | None = "accounts?$select=name&$top=12000"
    while link:
        page = dv.get(link).json()
        seen += [r["accountid"] for r in page["value"]]
        link = page.get("@odata.nextLink")
    assert len(seen) == len(set(seen)) == min(12_000, len(stored(big, "accounts")))


def test_dataverse_pages_a_sorted_read(big: Sandbox, dv: httpx.Client):
    # The paging doc's nextLink works for any query; a sorted one keeps its order across pages.
    prefer = {"Prefer": "odata.maxpagesize=2000"}
    names: list[str] = []
    link: str | None = "accounts?$select=accountnumber&$orderby=accountnumber desc"
    while link:
        response = dv.get(link, headers=prefer)
        assert response.status_code == 200, response.text
        names += [r["accountnumber"] for r in response.json()["value"]]
        link = response.json().get("@odata.nextLink")
    numbers = [r["accountnumber"] for r in stored(big, "accounts")]
    assert len(names) == len(numbers)
    # SQL Server sorts nulls first, so last when descending.
    expected = sorted((n for n in numbers if n is not None), key=str.casefold, reverse=True)
    assert names == expected + [None] * (len(numbers) - len(expected))


def test_fno_pages_at_10000_rows_with_a_next_link(big: Sandbox):
    # The F&O OData doc: "The OData service supports serving driven paging with a maximum page
    # size of 10,000." $top and $skip work too, and $count counts every matching row.
    url = big.fno_url + "/data/CDSReleasedDistinctProducts"
    with httpx.Client(timeout=60) as client:
        first = client.get(url, params={"$select": "ProductNumber", "$count": "true"}).json()
        total = first["@odata.count"]
        ours = [r for r in big.fno.rows("CDSReleasedDistinctProducts") if r["dataAreaId"] == "usmf"]
        assert total == len(ours) > 10_000
        assert len(first["value"]) == 10_000 and first["@odata.nextLink"]
        rest = client.get(first["@odata.nextLink"]).json()
        assert len(rest["value"]) == total - 10_000 and "@odata.nextLink" not in rest
        numbers = [r["ProductNumber"] for r in first["value"] + rest["value"]]
        assert len(set(numbers)) == total
        window = client.get(url, params={"$select": "ProductNumber", "$orderby": "ProductNumber",
                                         "$skip": "5", "$top": "3"}).json()  # fmt: skip
        assert [r["ProductNumber"] for r in window["value"]] == sorted(numbers, key=str.casefold)[5:8]
        assert client.get(url + "/$count").text == str(total)
        filtered = client.get(url + "/$count", params={"$filter": "ProductNumber eq 'VOL-P00001*'"})
        assert filtered.text == "10"  # VOL-P000010 ... VOL-P000019, by the * wildcard
