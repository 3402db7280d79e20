"""Ownership as Dataverse keeps it: ownerid binds a user or a team, the server derives the
owning* columns and the business unit, default teams come with their business units."""

from __future__ import annotations

import uuid

import httpx

from p2c_sandbox import Sandbox
from p2c_sandbox.organization import ROOT_BUSINESS_UNIT
from p2c_sandbox.ownership import default_team_id
from p2c_sandbox.schema import ADMIN_USER
from p2c_sandbox.seed_sales_companies import CONTOSO_DE, CONTOSO_US, DE_TEAM, DE_USER, US_TEAM, US_USER

REPRESENT = {"Prefer": "return=representation"}
OWNER = ["_ownerid_value", "owneridtype", "_owninguser_value", "_owningteam_value", "_owningbusinessunit_value"]


def owner_of(row: dict) -> list:
    return [row[c] for c in OWNER]


def test_each_business_unit_has_its_default_team(dv: httpx.Client):
    units = dv.get("businessunits", params={"$select": "name,_parentbusinessunitid_value"}).json()["value"]
    assert {u["name"]: u["_parentbusinessunitid_value"] for u in units} == {
        "Contoso": None, "Contoso US": ROOT_BUSINESS_UNIT, "Contoso DE": ROOT_BUSINESS_UNIT,
    }  # fmt: skip
    teams = dv.get("teams", params={"$filter": "isdefault eq true", "$select": "name,_businessunitid_value,teamtype"})
    by_unit = {t["_businessunitid_value"]: (t["teamid"], t["name"], t["teamtype"]) for t in teams.json()["value"]}
    assert by_unit[CONTOSO_US] == (US_TEAM, "Contoso US", 0) and by_unit[CONTOSO_DE] == (DE_TEAM, "Contoso DE", 0)
    assert len(by_unit) == len(units)  # one default team per unit, the root's too


def test_a_new_business_unit_gets_a_default_team_renamed_with_it(dv: httpx.Client):
    body = {"name": "Contoso UK", "parentbusinessunitid@odata.bind": f"/businessunits({ROOT_BUSINESS_UNIT})"}
    unit_id = dv.post("businessunits", json=body, headers=REPRESENT).json()["businessunitid"]
    team = dv.get(f"teams({default_team_id(unit_id)})").json()
    assert (team["name"], team["isdefault"], team["_businessunitid_value"]) == ("Contoso UK", True, unit_id)
    dv.patch(f"businessunits({unit_id})", json={"name": "Contoso United Kingdom"}).raise_for_status()
    assert dv.get(f"teams({default_team_id(unit_id)})").json()["name"] == "Contoso United Kingdom"


def test_the_calling_user_owns_what_it_creates(dv: httpx.Client):
    created = dv.post("accounts", json={"name": "Owned by the caller"}, headers=REPRESENT).json()
    assert owner_of(created) == [ADMIN_USER, "systemuser", ADMIN_USER, None, ROOT_BUSINESS_UNIT]
    assert created["_createdby_value"] == ADMIN_USER
    # Impersonation (MSCRMCallerID): the named user creates, so owns, the row.
    headers = {**REPRESENT, "MSCRMCallerID": DE_USER}
    german = dv.post("contacts", json={"lastname": "Vogel"}, headers=headers).json()
    assert owner_of(german) == [DE_USER, "systemuser", DE_USER, None, CONTOSO_DE]
    unknown = dv.post("accounts", json={"name": "x"}, headers={"MSCRMCallerID": str(uuid.uuid4())})
    assert unknown.status_code == 404


def test_ownerid_binds_a_team_or_a_user_and_the_server_derives_the_rest(dv: httpx.Client):
    body = {"name": "Team owned", "ownerid@odata.bind": f"/teams({DE_TEAM})"}
    row = dv.post("accounts", json=body, headers=REPRESENT).json()
    assert owner_of(row) == [DE_TEAM, "team", None, DE_TEAM, CONTOSO_DE]
    # Assign to a user of the other business unit: the owning business unit follows.
    dv.patch(f"accounts({row['accountid']})", json={"ownerid@odata.bind": f"/systemusers({US_USER})"})
    again = dv.get(f"accounts({row['accountid']})").json()
    assert owner_of(again) == [US_USER, "systemuser", US_USER, None, CONTOSO_US]
    refused = dv.post("quotes", json={"name": "q", "ownerid@odata.bind": f"/accounts({row['accountid']})"})
    assert refused.status_code == 400 and "systemusers or teams" in refused.json()["error"]["message"]


def test_owning_columns_are_not_writable(dv: httpx.Client):
    for nav, target in (("owningbusinessunit", f"/businessunits({CONTOSO_DE})"), ("owningteam", f"/teams({DE_TEAM})"),
                        ("owninguser", f"/systemusers({DE_USER})")):  # fmt: skip
        refused = dv.post("accounts", json={"name": "x", f"{nav}@odata.bind": target})
        assert refused.status_code == 400 and f"'{nav}' cannot be set" in refused.json()["error"]["message"], nav
    assert not [r for r in dv.get("accounts", params={"$filter": "name eq 'x'"}).json()["value"]]


def test_lines_take_their_documents_owner(dv: httpx.Client):
    body = {"name": "German order", "ownerid@odata.bind": f"/teams({DE_TEAM})"}
    order = dv.post("salesorders", json=body, headers=REPRESENT).json()
    line = {"salesorderid@odata.bind": f"/salesorders({order['salesorderid']})", "quantity": 1}
    created = dv.post("salesorderdetails", json=line, headers=REPRESENT).json()
    assert owner_of(created) == [DE_TEAM, "team", None, DE_TEAM, CONTOSO_DE]
    refused = dv.post("salesorderdetails", json={**line, "ownerid@odata.bind": f"/systemusers({US_USER})"})
    assert refused.status_code == 400


def test_a_user_moved_to_another_business_unit_takes_its_records_along(sb: Sandbox, dv: httpx.Client):
    user = dv.post("systemusers", json={
        "firstname": "Mia", "lastname": "Klein", "businessunitid@odata.bind": f"/businessunits({CONTOSO_US})",
    }, headers=REPRESENT).json()["systemuserid"]  # fmt: skip
    owned = {"name": "Moves along", "ownerid@odata.bind": f"/systemusers({user})"}
    account = dv.post("accounts", json=owned, headers=REPRESENT).json()
    assert account["_owningbusinessunit_value"] == CONTOSO_US
    dv.patch(f"systemusers({user})", json={"businessunitid@odata.bind": f"/businessunits({CONTOSO_DE})"})
    moved = dv.get(f"accounts({account['accountid']})").json()
    assert (moved["_ownerid_value"], moved["_owningbusinessunit_value"]) == (user, CONTOSO_DE)
    assert moved["versionnumber"] > account["versionnumber"]  # change tracking sees the move


def test_lookup_annotations_when_asked(dv: httpx.Client):
    body = {"name": "Annotated", "ownerid@odata.bind": f"/teams({US_TEAM})"}
    account_id = dv.post("accounts", json=body, headers=REPRESENT).json()["accountid"]
    plain = dv.get(f"accounts({account_id})", params={"$select": "_ownerid_value"}).json()
    assert not [k for k in plain if "@Microsoft" in k or "@OData.Community" in k]
    prefer = {"Prefer": 'odata.include-annotations="*"'}
    got = dv.get(f"accounts({account_id})", params={"$select": "_ownerid_value,_owningbusinessunit_value"},
                 headers=prefer)  # fmt: skip
    assert got.headers["preference-applied"] == 'odata.include-annotations="*"'
    row = got.json()
    assert row["_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "team"
    assert row["_ownerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] == "ownerid"
    assert row["_ownerid_value@OData.Community.Display.V1.FormattedValue"] == "Contoso US"
    assert row["_owningbusinessunit_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "businessunit"
    one_kind = {"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'}
    only = dv.get(f"accounts({account_id})", params={"$select": "_ownerid_value"}, headers=one_kind)
    assert [k for k in only.json() if "@" in k and not k.startswith("@odata")] == [
        "_ownerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"
    ]


def test_metadata_describes_the_tables_and_owner_columns(dv: httpx.Client):
    team = dv.get("EntityDefinitions(LogicalName='team')", params={"$expand": "Attributes"}).json()
    assert (team["EntitySetName"], team["OwnershipType"], team["ObjectTypeCode"]) == ("teams", "BusinessOwned", 9)
    columns = {a["LogicalName"]: a for a in team["Attributes"]}
    assert (columns["isdefault"]["IsValidForCreate"], columns["teamtype"]["IsValidForUpdate"]) == (False, False)
    assert [o["Value"] for o in columns["teamtype"]["OptionSet"]["Options"]] == [0, 1, 2, 3]
    account = dv.get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='owningbusinessunit')").json()
    assert (account["Targets"], account["IsValidForCreate"], account["IsValidForUpdate"]) == (
        ["businessunit"],
        False,
        False,
    )
    owner = dv.get("EntityDefinitions(LogicalName='account')/Attributes(LogicalName='ownerid')").json()
    assert (owner["AttributeType"], owner["Targets"]) == ("Owner", ["systemuser", "team"])
    unit = dv.get("EntityDefinitions(LogicalName='businessunit')").json()
    assert (unit["EntitySetName"], unit["PrimaryNameAttribute"], unit["OwnershipType"]) == (
        "businessunits",
        "name",
        "BusinessOwned",
    )
    csdl = dv.get("$metadata").text
    for entity_set in ("businessunits", "teams", "systemusers"):
        assert f'<EntitySet Name="{entity_set}"' in csdl
    assert '<NavigationProperty Name="owningteam" Type="Microsoft.Dynamics.CRM.team">' in csdl


def test_a_user_s_full_name_is_the_server_s(dv: httpx.Client):
    user = dv.post("systemusers", json={"firstname": "Lea", "lastname": "Braun"}, headers=REPRESENT).json()
    assert (user["fullname"], user["_businessunitid_value"]) == ("Lea Braun", ROOT_BUSINESS_UNIT)  # the caller's unit
    refused = dv.patch(f"systemusers({user['systemuserid']})", json={"fullname": "Someone Else"})
    assert refused.status_code == 400  # read-only in the systemuser reference
