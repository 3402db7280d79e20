"""Who owns the rows p2c creates in Sales for a company (F&O-born orders, invoices).

As dual-write's "DW Owner" team does, a company's rows are owned by a team: its entry's
`team` in P2C_COMPANIES, else its business unit's default team, which Dataverse creates with
the business unit and names after it (`team.isdefault`, the team table reference:
learn.microsoft.com/power-apps/developer/data-platform/reference/entities/team). The owner
goes into the create only (`ownerid@odata.bind` to `/teams(<id>)`, as the on-create fields):
an update never moves a row someone reassigned. A document's lines take their document's
owner. Products have none (organization-owned). One company (P2C_FNO_COMPANY only), or a
company routed by its company code without a team: no owner is named and the calling user
owns the row, as before several companies.
"""

from __future__ import annotations

import threading

from cachetools import TTLCache

from p2c_core.clients.dataverse import DataverseClient
from p2c_core.clients.keys import literal
from p2c_core.companies import Companies
from p2c_core.errors import MappingError
from p2c_core.flow import Flow

OWNER_BIND = "ownerid@odata.bind"
# Tables without an owner: the product table is OrganizationOwned (its table reference), so a
# Sales product is the org's, seen by every business unit, whichever company released it.
ORGANIZATION_OWNED = frozenset({"products"})
TTL_SECONDS = 900.0  # teams are set up by people: found ones are remembered this long


class OwnerTeams:
    """The owning team of each company's new Sales rows, looked up by name and remembered."""

    def __init__(self, dataverse: DataverseClient, companies: Companies, ttl_seconds: float = TTL_SECONDS) -> None:
        self.dataverse = dataverse
        self.companies = companies
        self._found = TTLCache[tuple[str, bool], str](maxsize=256, ttl=ttl_seconds)
        self._lock = threading.Lock()

    def team_name(self, company: str) -> tuple[str, bool] | None:
        """(team name, whether it is the business unit's default team); None: no owner named."""
        entry = self.companies.entries.get(company)
        if entry is None:
            return None
        if entry.team is not None:
            return entry.team, False
        return (entry.business_unit, True) if entry.business_unit is not None else None

    def bind(self, flow: Flow, company: str | None) -> dict[str, str]:
        """The create-only owner of a record of `company` written to Sales ({}: none)."""
        if company is None or flow.target.service != "dataverse" or flow.target.entity_set in ORGANIZATION_OWNED:
            return {}
        named = self.team_name(company)
        if named is None:
            return {}
        return {OWNER_BIND: f"/teams({self.team_id(company, *named)})"}

    def team_id(self, company: str, name: str, default: bool) -> str:
        with self._lock:
            found = self._found.get((name, default))
        if found is not None:
            return found
        where = f"name eq {literal(name)}" + (" and isdefault eq true" if default else "")
        rows = [r for page in self.dataverse.query("teams", select=["teamid", "name"], filter=where) for r in page.rows]
        if len(rows) != 1:
            what = f"the default team of business unit {name!r}" if default else f"team {name!r}"
            problem = "is not in Sales" if not rows else f"is not one team ({len(rows)} have that name)"
            # Teams are set up by people, not synced: waiting would not bring one.
            raise MappingError(f"{what} (owner of company {company}'s rows, P2C_COMPANIES) {problem}")
        guid = str(rows[0]["teamid"])
        with self._lock:
            self._found[(name, default)] = guid
        return guid
