"""Change readers on the sandbox: Sales change tracking, F&O scans and watermarks, lookups."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from p2c_core.clients.dataverse import DataverseClient
from p2c_core.flow import FinOps, Lookup, Where
from p2c_core.flows import get_flow
from p2c_core.sources import SINCE, DataverseChanges, FnoChanges, LookupResolver, SourcePage
from p2c_core.state import StateStore
from p2c_core.state.storage import Storage
from tests.core.sandboxed import Services, services

ACCOUNTS = get_flow("accounts")
QUOTES = get_flow("quotes")
PRODUCTS = get_flow("products")
INVOICES = get_flow("invoices")


def _active_quotes() -> Where:
    where = QUOTES.source.where
    assert where is not None
    return where


def _invoice_source() -> FinOps:
    assert isinstance(INVOICES.source, FinOps)
    return INVOICES.source


QUOTED = _active_quotes()
OVERLAP_DAYS = _invoice_source().overlap_days
CURRENCY = Lookup("transactioncurrencyid", {"transactioncurrencies": "isocurrencycode"})


@pytest.fixture
def sx() -> Iterator[Services]:
    with services() as s:
        yield s


class Spy:
    """The filters a real client is queried with (the client still answers from the sandbox)."""

    def __init__(self, client: DataverseClient) -> None:
        self.filters: list[tuple[str, str | None]] = []
        query = client.query

        def spied(entity_set: str, *, select: list[str], filter: str | None = None) -> Any:
            self.filters.append((entity_set, filter))
            return query(entity_set, select=select, filter=filter)

        client.query = spied  # type: ignore[method-assign]


# --- Dataverse change tracking --------------------------------------------------------------------


def test_an_initial_read_pages_with_next_links_and_ends_with_a_delta_link(sx: Services):
    reader = DataverseChanges(DataverseClient(sx.dataverse.odata, page_size=10), ACCOUNTS, LookupResolver(sx.dataverse))
    pages = list(reader.pages(None))
    total = len(sx.sandbox.dataverse.rows("accounts"))
    assert len(pages) == -(-total // 10) and sum(len(p.rows) for p in pages) == total
    assert all(not p.done and p.resume and "$skiptoken" in p.resume for p in pages[:-1])
    last = pages[-1]
    assert last.done and last.resume is not None and "$deltatoken" in last.resume
    assert not last.resume.startswith("http")  # stored relative to the service root
    assert reader.version_of(pages[0].rows[0]) > 0


def test_a_delta_link_gives_changed_rows_and_deleted_ids(sx: Services):
    reader = DataverseChanges(sx.dataverse, ACCOUNTS, LookupResolver(sx.dataverse))
    *_, last = reader.pages(None)
    changed, gone = sx.sandbox.dataverse.rows("accounts")[:2]
    sx.dataverse.update("accounts", changed["accountid"], {"name": "Changed Name"})
    sx.dataverse.delete("accounts", gone["accountid"])
    (page,) = reader.pages(last.resume)
    assert [(r["accountnumber"], r["name"]) for r in page.rows] == [(changed["accountnumber"], "Changed Name")]
    assert page.deleted == [gone["accountid"]]
    assert page.done and page.resume is not None and "$deltatoken" in page.resume


def test_lookups_are_read_as_natural_keys(sx: Services):
    reader = DataverseChanges(sx.dataverse, ACCOUNTS, LookupResolver(sx.dataverse))
    rows = [row for page in reader.pages(None) for row in page.rows]
    codes = {r["transactioncurrencyid"] for r in rows}
    assert "USD" in codes and codes <= {"USD", "EUR", "GBP", "CAD", None}
    assert all("_transactioncurrencyid_value" not in r for r in rows)
    select = reader.select()
    assert "_transactioncurrencyid_value" in select and {"versionnumber", "modifiedon"} <= set(select)


def test_document_lines_are_attached_in_line_order_with_their_lookups_resolved(sx: Services):
    quote = next(r for r in sx.sandbox.dataverse.rows("quotes") if QUOTED.matches(r))
    detail = next(r for r in sx.sandbox.dataverse.rows("quotedetails") if r["_quoteid_value"] == quote["quoteid"])
    # Lines out of order, and one numbered 10 (ordered as a number, not as text).
    sx.dataverse.odata.request("POST", "quotedetails", json_body={
        "quoteid@odata.bind": f"/quotes({quote['quoteid']})", "sequencenumber": 10, "quantity": 1.0,
        "productid@odata.bind": f"/products({detail['_productid_value']})",
        "uomid@odata.bind": f"/uoms({detail['_uomid_value']})"})  # fmt: skip
    reader = DataverseChanges(sx.dataverse, QUOTES, LookupResolver(sx.dataverse))
    rows = {r["quotenumber"]: r for page in reader.pages(None) for r in page.rows}
    lines = rows[quote["quotenumber"]]["lines"]
    numbers = [line["sequencenumber"] for line in lines]
    assert numbers == sorted(numbers) and numbers[-1] == 10 and len(numbers) >= 2
    products = {r["productnumber"] for r in sx.sandbox.dataverse.rows("products")}
    assert all(line["productid"] in products and line["uomid"] in {"Primary Unit", "Hour"} for line in lines)
    assert all(not k.startswith(("@", "_productid")) for line in lines for k in line)
    skipped = [r for r in rows.values() if not QUOTED.matches(r)]
    assert skipped and all(r["lines"] == [] for r in skipped)  # lines are read only for documents that pass


# --- F&O scans and watermarks ----------------------------------------------------------------------


def read(reader: FnoChanges, link: str | None = None) -> list[SourcePage]:
    """Every page of one poll, each marked enqueued as the engine does."""
    pages = []
    for page in reader.pages(link):
        reader.enqueued(page)
        pages.append(page)
    return pages


def keys(pages: list[SourcePage], key: str) -> list[str]:
    return sorted(r[key] for p in pages for r in p.rows)


def test_an_unchanged_fno_row_is_not_sent_twice(sx: Services, storage: Storage):
    state = StateStore(storage)
    first = read(FnoChanges(sx.fno, PRODUCTS, state))
    products = sorted(
        r["ProductNumber"]
        for r in [r for r in sx.sandbox.fno.rows("CDSReleasedDistinctProducts") if r["dataAreaId"] == "usmf"]
    )
    assert keys(first, "ProductNumber") == products and first[-1].done and first[-1].resume is None
    assert read(FnoChanges(sx.fno, PRODUCTS, state))[0].rows == []  # another poll: nothing changed
    sx.fno.update("CDSReleasedDistinctProducts", sx.fno.key(ProductNumber=products[0]), {"SalesPrice": 1234.5})
    again = read(FnoChanges(sx.fno, PRODUCTS, state))
    assert [(r["ProductNumber"], r["SalesPrice"]) for p in again for r in p.rows] == [(products[0], 1234.5)]


def test_digests_are_recorded_only_once_a_page_is_enqueued(sx: Services, storage: Storage):
    state = StateStore(storage)
    pages = list(FnoChanges(sx.fno, PRODUCTS, state).pages(None))  # read, never enqueued
    assert pages[0].digests and all(len(d) == 24 for d in pages[0].digests.values())
    assert len(keys(read(FnoChanges(sx.fno, PRODUCTS, state)), "ProductNumber")) == sum(len(p.rows) for p in pages)


def invoice_dates(sx: Services) -> dict[str, str]:
    rows = [
        r for r in sx.sandbox.fno.rows("ExternallyMaintainedCustomerSalesInvoiceHeaders") if r["dataAreaId"] == "usmf"
    ]
    return {r["InvoiceNumber"]: r["InvoiceDate"] for r in rows if r["SalesOrderNumber"]}


def test_a_watermark_read_starts_overlap_days_before_the_last_date_seen(sx: Services, storage: Storage):
    dates = invoice_dates(sx)
    latest = max(dates.values())
    window = _days_before(latest, OVERLAP_DAYS)
    in_overlap = sorted(k for k, d in dates.items() if d >= window)
    assert 0 < len(in_overlap) < len(dates)
    state = StateStore(storage)
    # From a watermark: the rows of the overlap only (each with its lines), and the watermark stays.
    overlap = read(FnoChanges(sx.fno, INVOICES, state), f"{SINCE}{latest}")
    assert keys(overlap, "InvoiceNumber") == in_overlap
    assert all(len(r["lines"]) >= 1 for p in overlap for r in p.rows)
    assert overlap[-1].resume == f"{SINCE}{latest}"
    # From the start: every invoice of a sales order (free-text ones are filtered out) not sent yet.
    full = read(FnoChanges(sx.fno, INVOICES, state))
    assert keys(full, "InvoiceNumber") == sorted(set(dates) - set(in_overlap))
    assert full[-1].resume == f"{SINCE}{latest}"
    # The overlap read again: those rows are re-read and dropped as sent.
    assert read(FnoChanges(sx.fno, INVOICES, state), f"{SINCE}{latest}")[0].rows == []


def _days_before(stamp: str, days: int) -> str:
    from datetime import datetime, timedelta

    start = datetime.fromisoformat(stamp.replace("Z", "+00:00")) - timedelta(days=days)
    return start.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_the_filter_joins_the_flows_where_and_the_watermark(sx: Services, storage: Storage):
    reader = FnoChanges(sx.fno, INVOICES, StateStore(storage))
    assert reader.filter(None) == "SalesOrderNumber ne ''"
    assert reader.filter("2026-11-24T00:00:00Z") == "SalesOrderNumber ne '' and InvoiceDate ge 2026-11-21T00:00:00Z"
    assert FnoChanges(sx.fno, PRODUCTS, StateStore(storage)).filter("2026-11-24T00:00:00Z") is None  # no `since`
    assert "InvoiceDate" in reader.select()


# --- lookups ------------------------------------------------------------------------------------


def test_lookup_resolver_reads_only_guids_it_does_not_know(sx: Services):
    currencies = {
        r["transactioncurrencyid"]: r["isocurrencycode"] for r in sx.sandbox.dataverse.rows("transactioncurrencies")
    }
    usd, eur, gbp = (next(g for g, c in currencies.items() if c == code) for code in ("USD", "EUR", "GBP"))
    spy = Spy(sx.dataverse)
    resolver = LookupResolver(sx.dataverse)
    rows = [{"_transactioncurrencyid_value": usd}, {"_transactioncurrencyid_value": eur.upper()}, {}]
    resolver.resolve([CURRENCY], rows)
    assert rows == [{"transactioncurrencyid": "USD"}, {"transactioncurrencyid": "EUR"}, {"transactioncurrencyid": None}]
    assert len(spy.filters) == 1
    more = [{"_transactioncurrencyid_value": usd}, {"_transactioncurrencyid_value": gbp}]
    resolver.resolve([CURRENCY], more)
    assert [r["transactioncurrencyid"] for r in more] == ["USD", "GBP"]
    assert spy.filters[1] == ("transactioncurrencies", f"transactioncurrencyid eq {gbp}")  # only the new one
    resolver.resolve([CURRENCY], [{"_transactioncurrencyid_value": gbp}])
    assert len(spy.filters) == 2  # all known: no request


def test_a_polymorphic_lookup_tries_each_table_and_remembers_a_miss(sx: Services):
    customer = Lookup("customerid", {"accounts": "accountnumber", "contacts": "msdynce_contactnumber"})
    account = next(r for r in sx.sandbox.dataverse.rows("accounts") if r["accountnumber"])
    contact = sx.sandbox.dataverse.rows("contacts")[0]
    nobody = "00000000-0000-0000-0000-00000000abcd"
    spy = Spy(sx.dataverse)
    resolver = LookupResolver(sx.dataverse)
    rows = [{"_customerid_value": g} for g in (account["accountid"], contact["contactid"], nobody)]
    resolver.resolve([customer], rows)
    assert [r["customerid"] for r in rows] == [account["accountnumber"], contact["msdynce_contactnumber"], None]
    assert [s for s, _ in spy.filters] == ["accounts", "contacts"]
    again = [{"_customerid_value": nobody}]
    resolver.resolve([customer], again)
    assert again == [{"customerid": None}] and len(spy.filters) == 2  # the miss is remembered too
