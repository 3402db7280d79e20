"""Who may use the console in Azure: App Service authentication's principal, checked strictly."""

from __future__ import annotations

import base64
import json

import pytest

from p2c_core.console.auth import OPERATOR_ROLE, VIEWER_ROLE, Policy, Refused, principal_from_headers

OID = "0f5e9c1a-1111-4a4a-9b9b-222233334444"
TENANT = "72f988bf-0000-4000-8000-000000000001"
PLATFORM = {"WEBSITE_AUTH_ENABLED": "True"}


def principal(*claims: tuple[str, str], auth_typ: str = "aad") -> str:
    body = {
        "auth_typ": auth_typ,
        "claims": [{"typ": t, "val": v} for t, v in claims],
        "name_typ": "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        "role_typ": "http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
    }
    return base64.b64encode(json.dumps(body).encode()).decode()


def headers(*claims: tuple[str, str], oid: str = OID, **extra: str) -> dict[str, str]:
    base = [("http://schemas.microsoft.com/identity/claims/objectidentifier", OID),
            ("http://schemas.microsoft.com/identity/claims/tenantid", TENANT), ("name", "Ada Operator")]  # fmt: skip
    return {
        "x-ms-client-principal": principal(*base, *claims),
        "x-ms-client-principal-id": oid,
        "x-ms-client-principal-idp": "aad",
        **extra,
    }


def role(name: str) -> tuple[str, str]:
    return ("roles", name)


def test_app_roles_make_operators_and_viewers():
    op = principal_from_headers(headers(role(OPERATOR_ROLE)), Policy(), PLATFORM)
    assert (op.role, op.can_act, op.name, op.id) == ("operator", True, "Ada Operator", OID)
    viewer = principal_from_headers(headers(role(VIEWER_ROLE)), Policy(), PLATFORM)
    assert (viewer.role, viewer.can_act) == ("viewer", False)


def test_groups_grant_roles_when_configured():
    member = headers(("groups", "g-ops"), ("groups", "g-other"))
    assert principal_from_headers(member, Policy(operator_groups=frozenset({"g-ops"})), PLATFORM).role == "operator"
    assert principal_from_headers(member, Policy(viewer_groups=frozenset({"g-other"})), PLATFORM).role == "viewer"
    with pytest.raises(Refused) as refused:
        principal_from_headers(member, Policy(), PLATFORM)
    assert refused.value.status == 403 and VIEWER_ROLE in refused.value.reason


def test_a_missing_principal_is_refused():
    with pytest.raises(Refused) as refused:
        principal_from_headers({}, Policy(), PLATFORM)
    assert refused.value.status == 401 and refused.value.reason == "not signed in"


@pytest.mark.parametrize(
    "forged",
    [
        {"x-ms-client-principal": "not base64 at all!"},
        {"x-ms-client-principal": base64.b64encode(b"[1, 2]").decode()},
        {"x-ms-client-principal": principal(role(OPERATOR_ROLE), auth_typ="github")},
        headers(role(OPERATOR_ROLE), oid="someone-else"),  # the id header disagrees with the claims
        headers(role(OPERATOR_ROLE), **{"x-ms-client-principal-idp": "google"}),
        {k: v for k, v in headers(role(OPERATOR_ROLE)).items() if k != "x-ms-client-principal-id"},
    ],
)
def test_a_forged_principal_is_refused(forged):
    with pytest.raises(Refused) as refused:
        principal_from_headers(forged, Policy(), PLATFORM)
    assert refused.value.status == 401


def test_without_app_service_authentication_every_principal_header_is_the_callers_own():
    with pytest.raises(Refused) as refused:
        principal_from_headers(headers(role(OPERATOR_ROLE)), Policy(), {})
    assert refused.value.status == 401 and "App Service authentication" in refused.value.reason


def test_a_user_of_another_tenant_is_refused_when_the_tenant_is_set():
    assert principal_from_headers(headers(role(OPERATOR_ROLE)), Policy(tenant_id=TENANT.upper()), PLATFORM)
    with pytest.raises(Refused) as refused:
        principal_from_headers(headers(role(OPERATOR_ROLE)), Policy(tenant_id="another"), PLATFORM)
    assert refused.value.status == 403
