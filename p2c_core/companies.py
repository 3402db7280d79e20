"""The company map: which F&O legal entity each Sales row belongs to, and who owns the
rows p2c creates in Sales for it (`P2C_COMPANIES`, docs/companies.md).

Two ways to recognise a Sales row's company, one per deployment:
- by its owning business unit (any org): `{"usmf": {"business_unit": "Contoso US"}}`;
- by dual-write's company column (orgs with `cdm_company`): `{"usmf": {"company_code": "USMF"}}`,
  the row's `msdyn_company` lookup read as `cdm_companycode`.
Rows p2c creates in Sales for a company are owned by its `team` (default: the business
unit's default team, which Dataverse names after the business unit).

`P2C_FNO_COMPANY` alone is the one-company case: every Sales row goes to that company and
keys stay as they always were (no company in them), so a deployment that never sets
`P2C_COMPANIES` stores and reads exactly what it did before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

from p2c_core import catalog
from p2c_core.suggest import did_you_mean

COMPANY_ID = re.compile(r"[A-Za-z0-9]{1,4}")
# Between company and natural key in a key map / failure key (not a character F&O allows
# in a legal entity id, so the split is unambiguous).
KEY_SEPARATOR = "|"
Routing = Literal["single", "business_unit", "company_column"]


class CompanyEntry(BaseModel):
    """One legal entity's entry in `P2C_COMPANIES`."""

    model_config = ConfigDict(extra="forbid")

    business_unit: str | None = None
    company_code: str | None = None
    # Owner of rows created in Sales for this company; None = the business unit's default team.
    team: str | None = None
    # Per-company overrides of `P2C_DEFAULTS__*` and `P2C_VALUE_MAPS__*` (entries merged
    # over the global map), by the catalog's names.
    defaults: dict[str, str | None] = {}
    value_maps: dict[str, dict[str, str | None]] = {}

    @model_validator(mode="after")
    def _one_way(self) -> CompanyEntry:
        if (self.business_unit is None) == (self.company_code is None):
            raise ValueError("give exactly one of business_unit (owning business unit) or company_code (msdyn_company)")
        return self

    @field_validator("defaults")
    @classmethod
    def _known_defaults(cls, v: dict[str, str | None]) -> dict[str, str | None]:
        for name in v:
            if name not in catalog.DEFAULTS:
                raise ValueError(f"unknown default {name!r}{did_you_mean(name, list(catalog.DEFAULTS))}")
        return v

    @field_validator("value_maps", mode="before")
    @classmethod
    def _known_maps(cls, v: object) -> object:
        if isinstance(v, dict):
            for name, table in v.items():
                if name not in catalog.VALUE_MAPS:
                    raise ValueError(f"unknown value map {name!r}{did_you_mean(name, list(catalog.VALUE_MAPS))}")
                if isinstance(table, dict):  # choice values arrive as JSON numbers: compare as text
                    v[name] = {str(k): None if x is None else str(x) for k, x in table.items()}
        return v


def parse_company_map(raw: dict[str, CompanyEntry]) -> dict[str, CompanyEntry]:
    """Validate the map's keys and that every entry routes the same way; keys lower-cased."""
    if not raw:
        raise ValueError("an empty company map; leave P2C_COMPANIES unset for one company (P2C_FNO_COMPANY)")
    out: dict[str, CompanyEntry] = {}
    for company, entry in raw.items():
        if not COMPANY_ID.fullmatch(company):
            raise ValueError(f"not an F&O legal entity id (1-4 letters/digits): {company!r}")
        if company.lower() in out:
            raise ValueError(f"legal entity {company!r} is named twice")
        out[company.lower()] = entry
    ways = {e.business_unit is not None for e in out.values()}
    if len(ways) > 1:
        raise ValueError("every entry routes the same way: all by business_unit or all by company_code")
    seen: dict[str, str] = {}
    for company, entry in out.items():
        name = (entry.business_unit or entry.company_code or "").casefold()
        if name in seen:
            raise ValueError(f"{company} and {seen[name]} name the same business unit / company code")
        seen[name] = company
    return out


@dataclass(frozen=True)
class Companies:
    """The companies of one deployment: the configured map, or the one company."""

    default: str  # P2C_FNO_COMPANY: the one company, or the company keys without one belong to
    entries: dict[str, CompanyEntry]  # empty: one company

    @property
    def routing(self) -> Routing:
        if not self.entries:
            return "single"
        first = next(iter(self.entries.values()))
        return "business_unit" if first.business_unit is not None else "company_column"

    @property
    def ids(self) -> list[str]:
        """Every legal entity p2c serves, in the order configured."""
        return list(self.entries) or [self.default]

    def qualified(self, company: str, key: str) -> str:
        """The key a record is stored and reported under: the natural key itself with one
        company (as every release before several companies stored it), else `company|key`."""
        return key if self.routing == "single" else f"{company}{KEY_SEPARATOR}{key}"

    def split(self, stored: str) -> tuple[str, str]:
        """(company, natural key) of a stored key; a key without a company (written before
        the company map was set) belongs to the default company."""
        if self.routing == "single":
            return self.default, stored
        company, sep, key = stored.partition(KEY_SEPARATOR)
        if sep and COMPANY_ID.fullmatch(company):
            return company.lower(), key
        return self.default, stored
