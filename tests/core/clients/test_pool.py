"""A pool of Dataverse application users: used in turn, each with its own slots and budget;
configured by reference, never showing a secret."""

from __future__ import annotations

import httpx
import pytest

from p2c_core.clients.auth import SandboxUser
from p2c_core.clients.concurrency import AdaptiveLimit
from p2c_core.clients.identities import Identities, Identity
from p2c_core.clients.odata import ODataClient, ServiceProfile
from p2c_core.clients.pool import SANDBOX_TOKEN_PREFIX, AppUser, member_auths
from p2c_core.errors import SettingsError
from p2c_core.settings import load_settings

PROFILE = ServiceProfile("test", "/", {}, (), max_concurrency=4)


def pool(names: list[str]) -> Identities:
    return Identities([Identity(n, SandboxUser(n), AdaptiveLimit(4)) for n in names], sleep=lambda _: None)


def test_requests_go_as_each_member_in_turn():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(200, json={"value": []})

    client = ODataClient(PROFILE, "http://127.0.0.1:1", transport=httpx.MockTransport(handler),
                         identities=pool(["a", "b", "c"]))  # fmt: skip
    for _ in range(6):
        client.get_json("accounts")
    assert seen == ["Bearer a", "Bearer b", "Bearer c"] * 2


def test_a_member_told_to_wait_is_passed_over_while_the_others_go_on():
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        who = request.headers["Authorization"]
        seen.append(who)
        if who == "Bearer a" and seen.count(who) == 1:
            return httpx.Response(429, headers={"Retry-After": "120"}, json={"error": {"code": "x", "message": "m"}})
        return httpx.Response(200, json={"value": []})

    members = pool(["a", "b"])
    client = ODataClient(PROFILE, "http://127.0.0.1:1", transport=httpx.MockTransport(handler), identities=members,
                         sleep=lambda _: None)  # fmt: skip
    for _ in range(4):
        client.get_json("accounts")
    # a's 429 holds a for two minutes: the retry and every later request go as b.
    assert seen == ["Bearer a", "Bearer b", "Bearer b", "Bearer b", "Bearer b"]
    assert members.members[0].limit.held() > 100 and members.held() == 0


def test_in_the_sandbox_each_member_is_a_caller_of_its_own(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("P2C_DATAVERSE_APP_USERS", '[{"client_id": "app-1", "managed_identity": true},'
                       ' {"client_id": "app-2", "managed_identity": true}]')  # fmt: skip
    settings = _settings(monkeypatch, auth_mode="none")
    names = [(name, repr(a)) for name, a in member_auths(settings, settings.dataverse_url)]
    assert names == [("app-1", f"SandboxUser('{SANDBOX_TOKEN_PREFIX}app-1')"),
                     ("app-2", f"SandboxUser('{SANDBOX_TOKEN_PREFIX}app-2')")]  # fmt: skip


def test_a_member_names_its_secret_by_setting_and_a_missing_one_is_refused_without_a_value(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("P2C_DATAVERSE_APP_USERS", '[{"client_id": "app-1", "secret_setting": "P2C_POOL_SECRET_1"}]')
    with pytest.raises(SettingsError, match="names secret setting P2C_POOL_SECRET_1, which is not set"):
        _settings(monkeypatch, auth_mode="azure")
    monkeypatch.setenv("P2C_POOL_SECRET_1", "s3cr3t-value-never-shown")
    settings = _settings(monkeypatch, auth_mode="azure")
    assert settings.dataverse_app_users == [AppUser(client_id="app-1", secret_setting="P2C_POOL_SECRET_1")]
    assert "s3cr3t" not in repr(settings.dataverse_app_users)


def test_a_member_has_exactly_one_credential():
    with pytest.raises(ValueError, match="exactly one of"):
        AppUser(client_id="app-1", secret_setting="X", managed_identity=True)
    with pytest.raises(ValueError, match="exactly one of"):
        AppUser(client_id="app-1")


def _settings(monkeypatch: pytest.MonkeyPatch, *, auth_mode: str):
    https = auth_mode == "azure"
    monkeypatch.setenv("P2C_DATAVERSE_URL", "https://org.crm.dynamics.com" if https else "http://127.0.0.1:5101")
    monkeypatch.setenv("P2C_FNO_URL", "https://fo.operations.dynamics.com" if https else "http://127.0.0.1:5102")
    monkeypatch.setenv("P2C_FNO_COMPANY", "usmf")
    monkeypatch.setenv("P2C_AUTH_MODE", auth_mode)
    monkeypatch.setenv("P2C_TENANT_ID", "00000000-0000-0000-0000-000000000001")
    monkeypatch.setenv("P2C_MESSAGE_SIGNING_KEY", "k" * 40)
    monkeypatch.chdir("/")  # no .env
    return load_settings()
