"""F&O-sourced flows (products, fno_orders, invoices) read per legal entity.

F&O's data entities are read one company at a time (`cross-company=true` and a `dataAreaId`
filter, clients/fno.py), so with several companies (P2C_COMPANIES, docs/companies.md) a poll
reads each company in turn, with its own cursor (scan or date watermark) and its own seen
digests; each record is stamped with its company and its key qualified (`company|key`).
An idle tick costs one request per flow and company.

Where that state lives: the default company's (P2C_FNO_COMPANY) cursor and digests stay in
the rows one company wrote (`cursor`, `<flow>~seen`), so a deployment that adds companies
keeps its scans and sends nothing again; every other company has rows of its own
(`cursor|<company>`, `<flow>~seen|<company>`). Dataverse sources keep one change-tracking
read per flow: it serves every company.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2c_core.clients.fno import FnoClient
from p2c_core.clients.odata import Row
from p2c_core.companies import Companies
from p2c_core.flow import FinOps, Flow
from p2c_core.sources import IDS_PER_QUERY, ChangeReader, FnoChanges, any_of

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime


def read_companies(companies: Companies, flow: Flow) -> list[str | None]:
    """The companies a poll of the flow reads one after the other: every legal entity for an
    F&O source with several companies, else one read for all ([None]: as one company reads)."""
    if flow.source.service != "fno" or companies.routing == "single":
        return [None]
    return [*companies.ids]


def state_scope(companies: Companies, company: str | None) -> str | None:
    """The company part of an F&O flow's cursor and seen rows: None for the default company
    (the rows as one company wrote them)."""
    return None if company is None or company == companies.default else company


def record_key(companies: Companies, company: str | None, key: str) -> str:
    """The key a record read from `company` travels and is stored under."""
    return key if company is None else companies.qualified(company, key)


def reader_for(rt: Runtime, flow: Flow, company: str | None) -> ChangeReader:
    """The flow's reader of one company (None: the reader one company uses)."""
    if company is None or flow.source.service != "fno":
        return rt.reader(flow)
    gone = rt.settings.flow(flow.name).on_delete == "deactivate"
    scope = state_scope(rt.companies, company)
    window = rt.settings.fno_scan_window
    return FnoChanges(rt.fno_for(company), flow, rt.state, find_gone=gone, scope=scope, window=window)


def owned_here(rt: Runtime, flow: Flow, company: str | None, rows: list[Row]) -> list[Row]:
    """The rows of a shared F&O source (`FinOps.shared`: released products) that `company`
    sends: those no company before it in P2C_COMPANIES order holds (docs/companies-products.md).
    One request per earlier company for a page of changed rows; none when nothing changed."""
    source = flow.source
    if company is None or not isinstance(source, FinOps) or not source.shared or not rows:
        return rows
    ids = rt.companies.ids
    keys = [str(r[source.key]) for r in rows if r.get(source.key)]
    held: set[str] = set()
    for earlier in ids[: ids.index(company)]:
        held |= _held_by(rt.fno_for(earlier), source, keys)
    return [r for r in rows if str(r.get(source.key)).casefold() not in held]


def _held_by(client: FnoClient, source: FinOps, keys: list[str]) -> set[str]:
    """Which of the keys the client's company holds in the source (case-folded, as F&O compares)."""
    found: set[str] = set()
    for i in range(0, len(keys), IDS_PER_QUERY):
        where = any_of(source.key, keys[i : i + IDS_PER_QUERY])
        if source.where is not None:
            where = f"({where}) and {source.where.odata()}"
        for page in client.query(source.entity_set, select=[source.key], filter=where):
            found.update(str(r[source.key]).casefold() for r in page.rows if r.get(source.key))
    return found
