"""A pool of Dataverse application users: several identities, each with its own budget.

Dataverse's service protection limits are per user ("Service protection API limits": "Each
authenticated user is limited independently"; application users are no exception), so
requests spread over N application users have N budgets. `P2C_DATAVERSE_APP_USERS` lists
them; the OData client uses them in turn (odata.py), each paced by its own budget
(pacing.py). Secrets are named, not given: `secret_setting` is the name of another app
setting (a Key Vault reference in Azure), read when the credential is made and never
logged; or a certificate file; or a user-assigned managed identity. Every member needs the
same security role in Dataverse (infra/README.md).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from p2c_core.settings_models import AppUser

if TYPE_CHECKING:
    import httpx
    from azure.core.credentials import TokenCredential

    from p2c_core.clients.identities import Identities
    from p2c_core.clients.peers import LeaseTable
    from p2c_core.settings import Settings

# In the sandbox (P2C_AUTH_MODE=none, loopback only) a member is named by an opaque token
# the sandbox takes as the caller's name: no secret, and a budget of its own.
SANDBOX_TOKEN_PREFIX = "p2c-sandbox-user."


def credential(user: AppUser, tenant_id: str) -> TokenCredential:
    if user.managed_identity:
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=user.client_id)
    if user.certificate_path:
        from azure.identity import CertificateCredential

        return CertificateCredential(tenant_id, user.client_id, certificate_path=user.certificate_path)
    from azure.identity import ClientSecretCredential

    assert user.secret_setting is not None  # one of the three (AppUser)
    return ClientSecretCredential(tenant_id, user.client_id, os.environ[user.secret_setting])


def member_auths(settings: Settings, service_url: str) -> list[tuple[str, httpx.Auth | None]]:
    """(identity name, auth) of each member: the name is the client id, never a secret."""
    from p2c_core.clients import auth

    out: list[tuple[str, httpx.Auth | None]] = []
    for user in settings.dataverse_app_users:
        if settings.auth_mode == "none":
            out.append((user.client_id, auth.SandboxUser(SANDBOX_TOKEN_PREFIX + user.client_id)))
        else:
            made = credential(user, settings.tenant_id or "")
            out.append((user.client_id, auth.BearerAuth(made, auth.scope_for(service_url))))
    return out


def dataverse_identities(
    settings: Settings, service_url: str, default_auth: httpx.Auth | None, lease_table: Callable[[], LeaseTable]
) -> Identities:
    """Who Dataverse requests go as: the pool's members, or the one configured identity;
    each paced to its share of its own budget among the instances counted in the lease table."""
    from p2c_core.clients.concurrency import AdaptiveLimit
    from p2c_core.clients.dataverse import PROFILE
    from p2c_core.clients.identities import Identities, Identity
    from p2c_core.clients.pacing import Pacer
    from p2c_core.clients.peers import TablePeers

    members = member_auths(settings, service_url) or [
        (settings.client_id or settings.managed_identity_client_id or "default", default_auth)
    ]
    out: list[Identity] = []
    for name, member_auth in members:
        peers = TablePeers(lease_table, service_url, name)
        peers.count()  # says so at once: instances starting together count each other before they pace
        pacer = Pacer(
            window_s=settings.dataverse_limit_window_seconds,
            peers=peers.count,
            shared_cost=peers.cost,
            publish=peers.publish,
        )
        out.append(Identity(name, member_auth, AdaptiveLimit(PROFILE.max_concurrency, pacer=pacer)))
    return Identities(out)
