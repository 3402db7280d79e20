"""The volume generator: the same seed gives the same accounts, and they page like any others."""

from __future__ import annotations

import httpx

from p2c_sandbox import Sandbox
from p2c_sandbox.volume import generate_accounts, generate_products


def _volume(sb: Sandbox) -> list[dict]:
    return sorted((r for r in sb.dataverse.rows("accounts") if (r["accountnumber"] or "").startswith("VOL-")),
                  key=lambda r: r["accountnumber"])  # fmt: skip


def test_generated_accounts_are_repeatable_versioned_and_read_page_by_page():
    with Sandbox() as first, Sandbox() as second:
        generate_accounts(first.dataverse_service, 3000, seed=5)
        generate_accounts(second.dataverse_service, 3000, seed=5)
        ours, theirs = _volume(first), _volume(second)
        # The same rows; only the server's timestamps may differ (the two were made apart).
        stamps = ("createdon", "modifiedon")
        assert len(ours) == 3000
        assert [{k: v for k, v in r.items() if k not in stamps} for r in ours] == [
            {k: v for k, v in r.items() if k not in stamps} for r in theirs
        ]
        assert ours[0]["accountnumber"] == "VOL-0000001" and ours[-1]["accountnumber"] == "VOL-0003000"
        customers = [r for r in ours if r["customertypecode"] == 3 and r["statecode"] == 0]
        assert 0.8 < len(customers) / len(ours) < 0.97  # some the accounts flow must leave out
        assert any(r["customertypecode"] == 3 and r["statecode"] == 1 for r in ours)  # an inactive customer
        assert len({r["versionnumber"] for r in ours}) == 3000  # each its own row version
        seen: list[str] = []
        url: str | None = first.dataverse_url + "/api/data/v9.2/accounts"
        params: dict[str, str] | None = {"$select": "accountnumber"}
        body: dict = {}
        with httpx.Client() as client:
            while url:
                page = client.get(url, params=params, headers={"Prefer": "odata.track-changes,odata.maxpagesize=1000"})
                body = page.json()
                assert len(body["value"]) <= 1000
                seen += [r["accountnumber"] for r in body["value"] if r.get("accountnumber")]
                url, params = body.get("@odata.nextLink"), None
            assert "@odata.deltaLink" in body
            delta = client.get(body["@odata.deltaLink"]).json()
        assert {r["accountnumber"] for r in ours} <= set(seen) and len(seen) == len(set(seen))
        assert delta["value"] == []  # generated rows are older than the delta token


def test_alternate_key_reads_and_writes_among_many_rows_match_case_insensitively():
    with Sandbox() as sb, httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/") as dv:
        generate_accounts(sb.dataverse_service, 2000, seed=3)
        target = next(r for r in sb.dataverse.rows("accounts") if r["accountnumber"] == "VOL-0001234")
        assert dv.get("accounts(accountnumber='vol-0001234')").json()["accountid"] == target["accountid"]
        assert dv.patch("accounts(accountnumber='Vol-0001234')", json={"telephone1": "1"}).status_code == 204
        rows = [r for r in sb.dataverse.rows("accounts") if (r["accountnumber"] or "").casefold() == "vol-0001234"]
        assert len(rows) == 1 and rows[0]["telephone1"] == "1"  # updated, not a second row
        clash = dv.post("accounts", json={"name": "Again", "accountnumber": "VOL-0001234".lower()})
        assert clash.status_code == 412 and clash.json()["error"]["code"] == "0x80060892"
        # Casefolded as Python does, beyond ASCII: ß is ss.
        assert dv.post("accounts", json={"name": "Straße", "accountnumber": "STRASSE-1"}).status_code == 204
        assert dv.get("accounts(accountnumber='straße-1')").json()["name"] == "Straße"
        assert dv.get("accounts(accountnumber='VOL-9999999')").status_code == 404


def test_generated_products_are_repeatable_sellable_and_priced_in_currencies_sales_has():
    with Sandbox() as first, Sandbox() as second:
        generate_products(first.fno_service, 200, seed=5)
        generate_products(second.fno_service, 200, seed=5)
        url = first.fno_url + "/data/CDSReleasedDistinctProducts"
        params = {"$filter": "startswith(ProductNumber,'VOL-P')", "$count": "true", "$orderby": "ProductNumber"}
        body = httpx.get(url, params=params).json()
        assert body["@odata.count"] == 200
        assert (
            body["value"][0]["ProductNumber"] == "VOL-P000001" and body["value"][-1]["ProductNumber"] == "VOL-P000200"
        )
        theirs = httpx.get(second.fno_url + "/data/CDSReleasedDistinctProducts", params=params).json()["value"]
        assert body["value"] == theirs
        price_lists = httpx.get(
            first.dataverse_url + "/api/data/v9.2/pricelevels?$expand=transactioncurrencyid($select=isocurrencycode)"
        ).json()
        priced = {p["transactioncurrencyid"]["isocurrencycode"] for p in price_lists["value"]}
        assert {r["CurrencyCode"] for r in body["value"]} <= priced  # the products flow can price every one
        assert {r["SalesUnitSymbol"] for r in body["value"]} == {"ea", "hr"}
