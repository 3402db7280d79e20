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

from p2c_core.companies import Companies
from p2c_core.flow import Flow


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
