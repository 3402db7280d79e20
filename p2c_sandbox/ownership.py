"""Who owns a Dataverse row, as the server keeps it.

A user-owned table's `ownerid` is a user or a team ("Table record ownership": user- or
team-owned tables, learn.microsoft.com/power-apps/maker/data-platform/types-of-entities);
the Web API binds it as `ownerid@odata.bind: "/systemusers(<id>)"` or `"/teams(<id>)"`.
The server derives the rest on every save: `owneridtype` (the owner's table), `owninguser` or
`owningteam` (the one that applies, the other empty) and `owningbusinessunit` (the owner's
business unit), none of them valid for create or update in the table reference. A row
created without an owner is owned by the calling user (the `MSCRMCallerID` header when a
request impersonates one, else the org's application user, schema.ADMIN_USER). A document
line takes its document's owner (parental relationship). A principal moved to another
business unit takes its records along (SetBusinessSystemUser / SetParentTeam:
DoNotMoveAllRecords false by default; "Behavior of specialized update operations": an
update of businessunitid does the same). A business unit gets its default team on create,
named as the unit and renamed with it (businessunit and team references: team.isdefault).
"""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import TYPE_CHECKING

from p2c_sandbox.schema import ADMIN_USER, USER_OWNED, EntitySchema
from p2c_sandbox.service import ServiceError
from p2c_sandbox.store import Row

if TYPE_CHECKING:
    from p2c_sandbox.org import Org

PRINCIPALS = {"systemusers": "systemuser", "teams": "team"}
# Tables whose updates move or rename something else (after_save compares with the row before).
WATCHED = frozenset({"businessunits", *PRINCIPALS})
OWNER_COLUMNS = ("_ownerid_value", "owneridtype", "_owninguser_value", "_owningteam_value", "_owningbusinessunit_value")
# The owner's name, where the table has the reference's read-only copies of it.
_OWNER_NAMES = ("owneridname", "owneridyominame")
# The user a request runs as: MSCRMCallerID when it impersonates one ("Impersonate another
# user using the Web API"), else the application user.
CALLER: ContextVar[str | None] = ContextVar("dataverse_caller", default=None)
_TEAMS = uuid.UUID("0a7c1f3e-5b2d-4c8e-9f61-2d3b4c5e6f70")  # namespace of default teams' ids


def caller() -> str:
    return CALLER.get() or ADMIN_USER


def default_team_id(business_unit_id: str) -> str:
    """The id of a business unit's default team: stable, so a seed and its tests agree."""
    return str(uuid.uuid5(_TEAMS, business_unit_id))


def bind_owner(service: Org, ref: str | None) -> tuple[str, str]:
    """`ownerid@odata.bind`: a user's or a team's reference -> (id, owneridtype)."""
    if ref is None:
        raise ServiceError(400, "0x80040200", "The owner of a record cannot be empty.")
    for entity_set, logical in PRINCIPALS.items():
        if ref.split("/api/data/v9.2/", 1)[-1].lstrip("/").startswith(f"{entity_set}("):
            return service.bind(entity_set, ref), logical
    raise ServiceError(
        400, "0x80060888", f"The @odata.bind reference '{ref}' of 'ownerid' must point to systemusers or teams."
    )


def principal(service: Org, owner: str, kind: str | None) -> tuple[Row | None, str]:
    """The owner's row and table (a user, else a team), looked up when `kind` is not known."""
    kinds = [kind] if kind is not None and kind in PRINCIPALS.values() else list(PRINCIPALS.values())
    for logical in kinds:
        entity_set = next(s for s, name in PRINCIPALS.items() if name == logical)
        row = service.store.get(entity_set, owner)
        if row is not None:
            return row, logical
    return None, kinds[0]


def derive(service: Org, schema: EntitySchema, row: Row, *, created: bool) -> Row:
    """The owner columns of a row about to be stored, and who created and last modified it
    (createdby, modifiedby: the calling user, on tables that have them)."""
    stamps = {"_modifiedby_value": caller(), **({"_createdby_value": caller()} if created else {})}
    row = {**row, **{c: v for c, v in stamps.items() if c in schema.props}}
    if created and schema.entity_set in PRINCIPALS and not row.get("_businessunitid_value"):
        # businessunitid is SystemRequired on both: taken as the caller's unit (docs/fidelity.md).
        row["_businessunitid_value"] = (service.store.get("systemusers", caller()) or {}).get("_businessunitid_value")
    if schema.entity_set == "systemusers" and (row.get("firstname") or row.get("lastname")):
        # fullname is read-only (systemuser reference): made of the names, "First Last" as the
        # org's full-name format (Organization.FullNameConventionCode) is assumed to be.
        row["fullname"] = " ".join(n for n in (row.get("firstname"), row.get("lastname")) if n)
    if schema.ownership != USER_OWNED:
        return row
    if schema.parent is not None:
        header_set = schema.lookups[schema.parent]
        header_id = row.get(f"_{schema.parent}_value")
        header = service.store.get(header_set, header_id) if header_id else None
        if header is not None:
            return {**row, **{c: header.get(c) for c in OWNER_COLUMNS}}
    owner = row.get("_ownerid_value") or caller()
    found, kind = principal(service, owner, row.get("owneridtype") if row.get("_ownerid_value") else None)
    names = {c: (found or {}).get("fullname" if kind == "systemuser" else "name") for c in _OWNER_NAMES}
    return {
        **row,
        **{c: v for c, v in names.items() if c in schema.props},
        "_ownerid_value": owner,
        "owneridtype": kind,
        "_owninguser_value": owner if kind == "systemuser" else None,
        "_owningteam_value": owner if kind == "team" else None,
        "_owningbusinessunit_value": (found or {}).get("_businessunitid_value"),
    }


def after_save(service: Org, schema: EntitySchema, row: Row, before: Row | None) -> None:
    """What Dataverse does itself after a principal or a business unit is written."""
    if schema.entity_set == "businessunits":
        _default_team(service, row, before)
    elif schema.entity_set in PRINCIPALS and before is not None:
        moved = before.get("_businessunitid_value") != row.get("_businessunitid_value")
        if moved:
            _move_records(service, row[schema.keys[0]], row.get("_businessunitid_value"))


def _default_team(service: Org, unit: Row, before: Row | None) -> None:
    teams = service.schemas["teams"]
    team_id = default_team_id(unit["businessunitid"])
    team = service.store.get("teams", team_id)
    if team is None:
        service.save(teams, {
            **teams.defaults, "teamid": team_id, "name": unit.get("name"), "isdefault": True, "teamtype": 0,
            "_businessunitid_value": unit["businessunitid"], "_administratorid_value": caller(),
            "description": "Default team for the parent business unit. The name and membership for default team "
            "are inherited from their parent business unit.",
        }, created=True)  # fmt: skip
    elif before is not None and before.get("name") != unit.get("name"):
        service.save(teams, {**team, "name": unit.get("name")}, created=False)


def _move_records(service: Org, owner: str, unit: str | None) -> None:
    """A principal's records follow it to its new business unit."""
    for schema in service.schemas.values():
        if schema.ownership != USER_OWNED:
            continue
        for row in service.store.find_by(schema.entity_set, {"_ownerid_value": owner}):
            if row.get("_ownerid_value") == owner and row.get("_owningbusinessunit_value") != unit:
                service.save(schema, {**row, "_owningbusinessunit_value": unit}, created=False)
