"""Bearer tokens: cached until near expiry, refreshed once on 401, never shown."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import httpx
from azure.core.credentials import TokenCredential
from pydantic import SecretStr

from p2c_core.clients.auth import BearerAuth, make_auth, scope_for
from p2c_core.settings import Settings


@dataclass
class Token:
    token: str
    expires_on: int


class _FakeCredential:
    def __init__(self, lifetime: int = 3600) -> None:
        self.calls: list[str] = []
        self.lifetime = lifetime

    def get_token(self, *scopes: str, **kw: object) -> Token:
        self.calls.append(scopes[0])
        return Token(f"tok-{len(self.calls)}", int(time.time()) + self.lifetime)


def FakeCredential(lifetime: int = 3600) -> Any:
    return cast(TokenCredential, _FakeCredential(lifetime))


def test_token_is_cached_and_scoped_to_the_service():
    cred = FakeCredential()
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={})

    auth = BearerAuth(cred, scope_for("https://contoso.crm.dynamics.com/"))
    with httpx.Client(transport=httpx.MockTransport(handler), auth=auth) as c:
        c.get("https://contoso.crm.dynamics.com/api/data/v9.2/accounts")
        c.get("https://contoso.crm.dynamics.com/api/data/v9.2/accounts")
    assert seen == ["Bearer tok-1", "Bearer tok-1"]
    assert cred.calls == ["https://contoso.crm.dynamics.com/.default"]
    assert "tok-1" not in repr(auth)


def test_token_near_expiry_is_refreshed_and_401_retried_once():
    cred = FakeCredential(lifetime=60)  # inside the refresh margin: every use refreshes
    statuses = iter([401, 200])

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(next(statuses), json={})

    with httpx.Client(transport=httpx.MockTransport(handler), auth=BearerAuth(cred, "https://x/.default")) as c:
        assert c.get("https://x/").status_code == 200
    assert len(cred.calls) == 2


def test_no_token_mode_sends_no_authorization():
    s = Settings(dataverse_url="http://127.0.0.1:1", fno_url="http://localhost:2", fno_company="usmf", auth_mode="none")
    assert make_auth(s, s.dataverse_url) is None
    s2 = Settings(dataverse_url="https://o.crm.dynamics.com", fno_url="https://e.operations.dynamics.com",
                  fno_company="usmf", auth_mode="azure", message_signing_key=SecretStr("k" * 32))  # fmt: skip
    auth = make_auth(s2, s2.fno_url, credential=FakeCredential())
    assert isinstance(auth, BearerAuth)
