"""`check` of the company map (P2C_COMPANIES): every legal entity exists in F&O, every
business unit / company code and owner team exists in Dataverse; a misspelling is named
with the nearest real name.

F&O lists its legal entities in the `LegalEntities` entity (LegalEntityId, not per company);
Dataverse its business units in `businessunits` (name), teams in `teams` (name; a business
unit's default team is named as the unit) and, where dual-write's company model is
installed, companies in `cdm_companies` (cdm_companycode).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from p2c_core.errors import ODataError
from p2c_core.suggest import nearest

if TYPE_CHECKING:
    from p2c_core.clients.odata import Page
    from p2c_core.ops.problems import CheckProblem
    from p2c_core.runtime import Runtime

WHERE = "P2C_COMPANIES"


def check_companies(rt: Runtime) -> list[CheckProblem]:
    """The company map against both services (nothing to check with one company)."""
    from p2c_core.ops.problems import CheckProblem

    companies = rt.companies
    if companies.routing == "single":
        return []
    problems: list[CheckProblem] = []
    entities = {str(v).lower(): str(v) for v in _values(rt.fno.odata.pages("LegalEntities",
                params={"$select": "LegalEntityId"}), "LegalEntityId")}  # fmt: skip
    for company in companies.ids:
        if company not in entities:
            close = nearest(company, entities)  # ids compared lower-case; named as F&O spells them
            hint = entities[close] if close else None
            problems.append(CheckProblem(WHERE, "fno", "LegalEntities", company, "no such legal entity", hint))
    if companies.routing == "business_unit":
        units = _names(rt, "businessunits", "name")
        for company, entry in companies.entries.items():
            problems += _missing(company, "businessunits", entry.business_unit, units, "no such business unit")
    else:
        try:
            codes = _names(rt, "cdm_companies", "cdm_companycode")
        except ODataError as exc:
            problem = f"dual-write's company table cannot be read ({exc.status}): routing by company_code needs it"
            return [*problems, CheckProblem(WHERE, "dataverse", "cdm_companies", "", problem)]
        for company, entry in companies.entries.items():
            problems += _missing(company, "cdm_companies", entry.company_code, codes, "no such company code")
    teams = _names(rt, "teams", "name") if any(e.team for e in companies.entries.values()) else []
    for company, entry in companies.entries.items():
        if entry.team:
            problems += _missing(company, "teams", entry.team, teams, "no such team")
    return problems


def companies_with_maps(rt: Runtime) -> list[str]:
    """Companies whose value maps differ from the global ones (the map's or the overlay's own)."""
    overlay = rt.settings.overlay()
    entries = rt.companies.entries
    return [c for c in rt.companies.ids if (c in entries and entries[c].value_maps) or overlay.company_value_maps(c)]


def _values(pages: Iterable[Page], column: str) -> list[object]:
    return [row.get(column) for page in pages for row in page.rows]


def _names(rt: Runtime, entity_set: str, column: str) -> list[str]:
    return [str(v) for v in _values(rt.dataverse.query(entity_set, select=[column]), column) if v]


def _missing(company: str, entity_set: str, name: str | None, known: list[str], problem: str) -> list[CheckProblem]:
    from p2c_core.ops.problems import CheckProblem

    if name is None or name.strip().casefold() in {k.strip().casefold() for k in known}:
        return []
    return [CheckProblem(WHERE, "dataverse", entity_set, f"{company}: {name}", problem, nearest(name, known))]
