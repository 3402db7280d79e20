"""Who is asking, and may they act: App Service authentication (Microsoft Entra) in Azure.

In Azure the console trusts only what App Service authentication ("Easy Auth") puts in
front of the app: it signs the user in with Microsoft Entra and injects the
`X-MS-CLIENT-PRINCIPAL*` headers; "External requests aren't allowed to set these headers,
so they're present only if set by App Service" (learn.microsoft.com, "Work with user
identities in Azure App Service authentication"). So a request is refused when:
- the platform's authentication is off (`WEBSITE_AUTH_ENABLED` is not `True`: the
  variable App Service sets for it, as Microsoft.Identity.Web reads it): any principal
  header would then come from the caller;
- the principal header is missing, not base64 JSON of `{auth_typ, claims[{typ, val}],
  name_typ, role_typ}`, not from Microsoft Entra (`aad`), or disagrees with
  `X-MS-CLIENT-PRINCIPAL-ID` / `-IDP`, or names another tenant than `P2C_TENANT_ID`.
Roles: the app roles `P2C.Operator` (read and act) and `P2C.Viewer` (read only), or
membership of the groups in `P2C_CONSOLE__OPERATOR_GROUPS` / `P2C_CONSOLE__VIEWER_GROUPS`.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

OPERATOR_ROLE = "P2C.Operator"
VIEWER_ROLE = "P2C.Viewer"
ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
OID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
TENANT_CLAIMS = ("http://schemas.microsoft.com/identity/claims/tenantid", "tid")
NAME_CLAIMS = ("name", "preferred_username", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name")
GROUP_CLAIM = "groups"

Role = Literal["operator", "viewer"]


class Refused(Exception):
    """The request may not go on: `status` 401 (who are you?) or 403 (not allowed)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    name: str
    role: Role
    id: str = ""
    groups: frozenset[str] = field(default_factory=frozenset)

    @property
    def can_act(self) -> bool:
        return self.role == "operator"


def local_principal() -> Principal:
    """`p2c console` on 127.0.0.1: whoever runs it operates the environment it points at."""
    return Principal(name=f"{getpass.getuser()} (local)", role="operator", id="local")


@dataclass(frozen=True)
class Policy:
    """Which groups (object ids) grant which role, and the tenant users must belong to."""

    operator_groups: frozenset[str] = frozenset()
    viewer_groups: frozenset[str] = frozenset()
    tenant_id: str | None = None


def platform_auth_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true"


def principal_from_headers(
    headers: Mapping[str, str], policy: Policy, environ: Mapping[str, str] = os.environ
) -> Principal:
    """The signed-in user App Service authentication vouches for; Refused otherwise.

    `headers` have lower-case names.
    """
    if not platform_auth_enabled(environ):
        raise Refused(401, "the console needs App Service authentication (Microsoft Entra) on this app")
    raw = headers.get("x-ms-client-principal")
    if not raw:
        raise Refused(401, "not signed in")
    claims, name_typ, role_typ = _decode(raw)
    if headers.get("x-ms-client-principal-idp", "aad") != "aad":
        raise Refused(401, "principal header from another identity provider than Microsoft Entra")
    oid = _first(claims, OID_CLAIMS)
    if not oid or headers.get("x-ms-client-principal-id") != oid:
        raise Refused(401, "principal headers disagree")
    tenant = _first(claims, TENANT_CLAIMS)
    if policy.tenant_id and (tenant or "").lower() != policy.tenant_id.lower():
        raise Refused(403, "user of another tenant")
    roles = {v for t, v in claims if t in (*ROLE_CLAIMS, role_typ)}
    groups = frozenset(v for t, v in claims if t == GROUP_CLAIM)
    name = headers.get("x-ms-client-principal-name") or _first(claims, (name_typ, *NAME_CLAIMS)) or oid
    if OPERATOR_ROLE in roles or groups & policy.operator_groups:
        return Principal(name=name, role="operator", id=oid, groups=groups)
    if VIEWER_ROLE in roles or groups & policy.viewer_groups:
        return Principal(name=name, role="viewer", id=oid, groups=groups)
    raise Refused(403, f"signed in, but without the {VIEWER_ROLE} or {OPERATOR_ROLE} role")


def _decode(raw: str) -> tuple[list[tuple[str, str]], str, str]:
    try:
        body = json.loads(base64.b64decode(raw, validate=True))
        if body.get("auth_typ") != "aad":
            raise ValueError("not Microsoft Entra")
        claims = [(str(c["typ"]), str(c["val"])) for c in body["claims"]]
        return claims, str(body.get("name_typ") or ""), str(body.get("role_typ") or "roles")
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise Refused(401, f"malformed principal header ({type(exc).__name__})") from None


def _first(claims: list[tuple[str, str]], types: tuple[str, ...]) -> str | None:
    return next((v for t, v in claims if t in types and t), None)
