"""Bearer tokens from Microsoft Entra ID, cached and refreshed; never logged.

Scope is `<service url>/.default`. Credentials: a client secret when configured, else
DefaultAzureCredential (managed identity in Azure, Azure CLI locally). `P2C_AUTH_MODE=none`
sends no token and is accepted only for loopback URLs (the sandbox).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import TYPE_CHECKING

import httpx

from p2c_core.clients.origin import Origin
from p2c_core.settings import Settings

# Refresh this long before expiry so a token never expires mid-request.
_REFRESH_MARGIN_S = 300


if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential


class BearerAuth(httpx.Auth):
    """httpx auth that adds a cached bearer token and refreshes it once on a 401.

    The token goes only to the origin it was issued for: the scope's (`<service url>/.default`).
    """

    def __init__(self, credential: TokenCredential, scope: str) -> None:
        self._credential = credential
        self._scope = scope
        self._origin = Origin.of(scope)
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expires_on = 0.0

    def __repr__(self) -> str:  # never show the token
        return f"BearerAuth(scope={self._scope!r})"

    def _get(self, force: bool = False) -> str:
        with self._lock:
            if force or self._token is None or time.time() > self._expires_on - _REFRESH_MARGIN_S:
                access = self._credential.get_token(self._scope)
                self._token, self._expires_on = access.token, float(access.expires_on)
            return self._token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        # ODataClient refuses a foreign URL before sending; this holds for any other caller.
        self._origin.check(request.url, service=self._origin.host, what="authenticated request")
        request.headers["Authorization"] = f"Bearer {self._get()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {self._get(force=True)}"
            yield request


class SandboxUser(httpx.Auth):
    """A pool member's name as the sandbox takes it (an opaque token naming the caller, so
    each member has a budget of its own): only with P2C_AUTH_MODE=none, which is loopback only."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"SandboxUser({self.name!r})"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.name}"
        yield request


def scope_for(service_url: str) -> str:
    return service_url.rstrip("/") + "/.default"


def make_credential(settings: Settings) -> TokenCredential:
    if settings.client_secret is not None and settings.tenant_id and settings.client_id:
        from azure.identity import ClientSecretCredential

        return ClientSecretCredential(settings.tenant_id, settings.client_id, settings.client_secret.get_secret_value())
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential(managed_identity_client_id=settings.managed_identity_client_id)


def make_auth(settings: Settings, service_url: str, credential: TokenCredential | None = None) -> httpx.Auth | None:
    """The auth for one service, or None in the sandbox's no-token mode."""
    if settings.auth_mode == "none":
        return None
    return BearerAuth(credential or make_credential(settings), scope_for(service_url))
