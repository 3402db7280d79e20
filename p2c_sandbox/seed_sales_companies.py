"""Sales' side of the two legal entities: business units, teams and users per company.

Under the org's root business unit (organization.py) the seed adds "Contoso US" (F&O usmf)
and "Contoso DE" (F&O demf), each with its default team (made by the server, named as the
unit) and a salesperson. The demo's Sales rows are created as Contoso US's salesperson, so
they are owned by a user of Contoso US; every fourth account is owned by the unit's team
instead, as rows assigned to a team are. The German rows (accounts, contacts, quotes and
orders of Contoso DE) come with `Companies.BUSINESS_UNITS` and up (seed_german_sales.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from p2c_sandbox import organization
from p2c_sandbox.dataverse import DataverseService
from p2c_sandbox.ownership import CALLER, default_team_id

CONTOSO_US = "5e1f0000-0000-4000-8000-0000000000b1"
CONTOSO_DE = "5e1f0000-0000-4000-8000-0000000000b2"
US_TEAM = default_team_id(CONTOSO_US)
DE_TEAM = default_team_id(CONTOSO_DE)
US_USER = "5e1f0000-0000-4000-8000-000000000002"
DE_USER = "5e1f0000-0000-4000-8000-000000000003"
# F&O legal entity -> its business unit, default team and salesperson.
COMPANIES = {
    "usmf": {"business_unit": "Contoso US", "business_unit_id": CONTOSO_US, "team_id": US_TEAM, "user_id": US_USER},
    "demf": {"business_unit": "Contoso DE", "business_unit_id": CONTOSO_DE, "team_id": DE_TEAM, "user_id": DE_USER},
}


def seed_business_units(dataverse: DataverseService) -> None:
    organization.add_business_unit(dataverse, CONTOSO_US, "Contoso US")
    organization.add_business_unit(dataverse, CONTOSO_DE, "Contoso DE")
    organization.add_user(dataverse, US_USER, "Avery", "Miller", "avery.miller@contoso.example", CONTOSO_US)
    organization.add_user(dataverse, DE_USER, "Jonas", "Becker", "jonas.becker@contoso.example", CONTOSO_DE)


@contextmanager
def acting_as(user_id: str) -> Iterator[None]:
    """Rows saved inside are created by (and so owned by) this user, as if it had made them."""
    token = CALLER.set(user_id)
    try:
        yield
    finally:
        CALLER.reset(token)
