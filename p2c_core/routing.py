"""Which company a Sales row belongs to, and the key its record travels and is stored under.

With several legal entities (P2C_COMPANIES, docs/companies.md) a Sales -> F&O flow reads
the row's company column in the same change-tracking read that serves every company: the
owning business unit (`_owningbusinessunit_value`, read as the business unit's `name`) or
dual-write's company (`_msdyn_company_value`, read as `cdm_companycode`); both are lookups
resolved through the cached `LookupResolver`, so an idle poll costs no extra request. The
record then carries its company and the key `company|key`. With one company nothing of
this runs: records carry no company and keys stay as they always were.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from p2c_core.envelope import Record
from p2c_core.errors import KeyChanged
from p2c_core.flow import Dataverse, Flow, Lookup

if TYPE_CHECKING:
    from p2c_core.companies import Companies
    from p2c_core.runtime import Runtime
    from p2c_core.state import KeyMapEntry

# Dataverse sets `owningbusinessunit` on every user- or team-owned row (the owner's business
# unit); `msdyn_company` is dual-write's lookup to `cdm_company` (learn.microsoft.com, dual-write
# "Company concept in Dataverse").
BUSINESS_UNIT = Lookup("owningbusinessunit", {"businessunits": "name"})
COMPANY_CODE = Lookup("msdyn_company", {"cdm_companies": "cdm_companycode"})


class CompanyChanged(KeyChanged):
    """A row synced to one company now belongs to another (its owner moved to another
    business unit): not a new record in the other company, and nothing is written."""


def company_lookup(companies: Companies) -> Lookup | None:
    """The lookup that reads a Sales row's company column, or None with one company."""
    routing = companies.routing
    if routing == "business_unit":
        return BUSINESS_UNIT
    if routing == "company_column":
        return COMPANY_CODE
    return None


def reading(flow: Flow, companies: Companies) -> Flow:
    """The flow as a Sales -> F&O poll reads it: with its company column when there are
    several companies (one read serves them all)."""
    lookup = company_lookup(companies)
    if lookup is None or not isinstance(flow.source, Dataverse) or flow.target.service != "fno":
        return flow
    if lookup in flow.resolve:
        return flow
    return dataclasses.replace(flow, resolve=(*flow.resolve, lookup))


def company_of_row(companies: Companies, row: dict[str, Any]) -> str | None:
    """The legal entity a (read and resolved) Sales row maps to; None outside every mapped one."""
    lookup = company_lookup(companies)
    if lookup is None:
        return companies.default
    value = row.get(lookup.column)
    if not isinstance(value, str) or not value.strip():
        return None
    wanted = value.strip().casefold()
    for company, entry in companies.entries.items():
        name = entry.business_unit if lookup is BUSINESS_UNIT else entry.company_code
        if name is not None and name.strip().casefold() == wanted:
            return company
    return None


def outside_reason(companies: Companies, row: dict[str, Any]) -> str:
    """Why a row is not synced: the business unit / company code it has, which no company maps."""
    lookup = company_lookup(companies)
    column = lookup.column if lookup is not None else "company"
    what = "business unit" if lookup is BUSINESS_UNIT else "company code"
    value = row.get(column)
    named = f"{what} {value!r}" if value else f"no {what}"
    return f"outside every mapped company ({named}; P2C_COMPANIES maps {', '.join(companies.ids)})"


def outside_note(companies: Companies) -> str:
    """What `status` says of rows outside every mapped company."""
    what = "business unit" if company_lookup(companies) is BUSINESS_UNIT else "company (msdyn_company)"
    return f"skipped: their {what} is none of P2C_COMPANIES ({', '.join(companies.ids)}); docs/companies.md"


def routes(companies: Companies, flow: Flow) -> bool:
    """Whether the flow's rows are routed by their company column (several companies,
    Sales -> F&O)."""
    return company_lookup(companies) is not None and isinstance(flow.source, Dataverse) and flow.target.service == "fno"


def routed(companies: Companies, record: Record, company: str) -> Record:
    """The record as it travels: with its company and the company-qualified key."""
    return record.model_copy(update={"key": companies.qualified(company, record.key), "company": company})


def normalized(companies: Companies, record: Record) -> Record:
    """A record as the apply reads it. One queued before the company map was set (no
    company, an unqualified key) belongs to the default company: with several companies
    it is applied under the default company's qualified key, like the records polled now."""
    if companies.routing == "single" or record.company is not None:
        return record
    company, key = companies.split(record.key)
    return record.model_copy(update={"key": companies.qualified(company, key), "company": company})


def company_of(rt: Runtime, record: Record) -> str | None:
    """The record's company for its F&O client, value maps and references; None with one company."""
    companies = rt.companies
    if companies.routing == "single":
        return None
    return record.company or companies.split(record.key)[0]


def natural_key(rt: Runtime, record: Record) -> str:
    """The key the target knows the record by (without its company)."""
    return rt.companies.split(record.key)[1]


def entry(rt: Runtime, flow: str, key: str) -> KeyMapEntry | None:
    """The key map entry of a stored key, also when it was written before the company map:
    an entry under the default company's bare key is read for its qualified key, as a new
    entry (no ETag), so the record is claimed and committed under the qualified key."""
    found = rt.state.get_entry(flow, key)
    if found is not None or (bare := _bare(rt, key)) is None:
        return found
    legacy = rt.state.get_entry(flow, bare)
    return None if legacy is None else _as_qualified(legacy, key)


def _bare(rt: Runtime, key: str) -> str | None:
    """The key a default-company record had before the company map, if it may have one."""
    if rt.companies.routing == "single":
        return None
    company, bare = rt.companies.split(key)
    return bare if company == rt.companies.default and bare != key else None


def _as_qualified(legacy: KeyMapEntry, key: str) -> KeyMapEntry:
    return dataclasses.replace(legacy, source_key=key, etag=None, lease_version=None, lease_until=None)


def may_be_bare(rt: Runtime, record: Record) -> bool:
    """Whether the record's key map entry may still be under its bare key (the default
    company's, written before P2C_COMPANIES was set): such a record is read, not claimed new."""
    return rt.companies.routing != "single" and company_of(rt, record) == rt.companies.default


def entries(rt: Runtime, flow: str, keys: list[str]) -> dict[str, KeyMapEntry]:
    """`entry` of many keys in few requests: those not found under their key are read under
    their bare key together (a batched read each, state/keyreads.py)."""
    found = rt.state.get_entries(flow, keys)
    bare = {b: key for key in keys if key not in found and (b := _bare(rt, key)) is not None}
    if bare:
        found |= {bare[b]: _as_qualified(e, bare[b]) for b, e in rt.state.get_entries(flow, list(bare)).items()}
    return found


def check_company(companies: Companies, flow: Flow, before: str, now: str, row: str) -> None:
    """Raise CompanyChanged when a row written under one company's key now has another's."""
    if companies.routing == "single":
        return
    was, was_key = companies.split(before)
    is_, is_key = companies.split(now)
    if was_key == is_key and was != is_:
        raise CompanyChanged(
            f"{flow.source.entity_set} row {row} ({was_key!r}) was written to company {was} and now belongs to "
            f"company {is_}: nothing was written to either. Move it back, or remove {was_key!r} from {was} "
            f"and replay to write it to {is_} as a new record (docs/companies.md)"
        )


def same_record(companies: Companies, before: str, now: str) -> bool:
    """Two stored keys of one record (a bare key of the default company and its qualified form)."""
    return before == now or companies.split(before) == companies.split(now)
