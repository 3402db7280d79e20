"""What every Dataverse org has before anyone adds data: its root business unit, that unit's
default team, and the user the sandbox's requests run as (schema.ADMIN_USER).

"Create or edit business units" (Power Platform admin): an environment starts with one root
business unit, named after the organization, with no parent; every user and team belongs to
one business unit. The sandbox installs these into an empty Dataverse store, seeded or not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2c_sandbox.ownership import default_team_id
from p2c_sandbox.schema import ADMIN_USER

if TYPE_CHECKING:
    from p2c_sandbox.dataverse import DataverseService

ROOT_BUSINESS_UNIT = "5e1f0000-0000-4000-8000-0000000000b0"
ROOT_NAME = "Contoso"
ROOT_TEAM = default_team_id(ROOT_BUSINESS_UNIT)  # named "Contoso", as its unit


def install(dataverse: DataverseService) -> None:
    units, users = dataverse.schemas["businessunits"], dataverse.schemas["systemusers"]
    dataverse.save(units, {**units.defaults, "businessunitid": ROOT_BUSINESS_UNIT, "name": ROOT_NAME}, created=True)
    dataverse.save(users, {
        **users.defaults, "systemuserid": ADMIN_USER, "fullname": "System Administrator", "firstname": "System",
        "lastname": "Administrator", "domainname": "admin@contoso.example",
        "internalemailaddress": "admin@contoso.example", "_businessunitid_value": ROOT_BUSINESS_UNIT,
    }, created=True)  # fmt: skip


def add_business_unit(dataverse: DataverseService, unit_id: str, name: str, parent: str = ROOT_BUSINESS_UNIT) -> str:
    """A child business unit (its default team comes with it); returns the default team's id."""
    units = dataverse.schemas["businessunits"]
    row = {**units.defaults, "businessunitid": unit_id, "name": name, "_parentbusinessunitid_value": parent}
    dataverse.save(units, row, created=True)
    return default_team_id(unit_id)


def add_user(dataverse: DataverseService, user_id: str, first: str, last: str, email: str, unit_id: str) -> None:
    users = dataverse.schemas["systemusers"]
    dataverse.save(users, {
        **users.defaults, "systemuserid": user_id, "fullname": f"{first} {last}", "firstname": first, "lastname": last,
        "domainname": email, "internalemailaddress": email, "_businessunitid_value": unit_id,
    }, created=True)  # fmt: skip
