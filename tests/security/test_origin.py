"""Issue 21, acceptance 1: the token goes only to the services. A nextLink, a delta link and
a planted cursor naming another port get no request there (a capture server on loopback
counts zero) and end in an error naming the origin; an https service's link to http is
refused; `http://` with `azure` auth is refused at start; a 3xx is an error, not followed."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, cast

import httpx
import pytest
from azure.core.credentials import TokenCredential

from p2c_core import engine
from p2c_core.clients.auth import BearerAuth, scope_for
from p2c_core.clients.dataverse import PROFILE as DATAVERSE
from p2c_core.clients.odata import ODataClient
from p2c_core.clients.origin import ForeignOriginError
from p2c_core.errors import PermanentError, SettingsError
from p2c_core.flows import get_flow
from p2c_core.runtime import Runtime
from p2c_core.settings import load_settings
from p2c_core.state import Cursor
from p2c_core.state.storage import Storage

from .servers import LoopbackServer

ROOT = "/api/data/v9.2/"
KEY = "k" * 32


@dataclass
class Token:
    token: str
    expires_on: int


class CountingCredential:
    def __init__(self) -> None:
        self.calls = 0

    def get_token(self, *scopes: str, **kw: object) -> Token:
        self.calls += 1
        return Token("CANARY-TOKEN-origin", int(time.time()) + 3600)


def runtime(storage: Storage, dataverse_url: str, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    for name in ("P2C_DATAVERSE_URL", "P2C_FNO_URL", "P2C_AUTH_MODE", "P2C_MESSAGE_SIGNING_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = load_settings(dataverse_url=dataverse_url, fno_url="http://127.0.0.1:9", fno_company="usmf",
                             auth_mode="none", message_signing_key=KEY)  # fmt: skip
    return Runtime(settings=settings, storage=storage)


def hostile(link_name: str, capture: LoopbackServer) -> LoopbackServer:
    """A "service" whose first page points its link at the capture server."""
    foreign = f"{capture.url}{ROOT}accounts?$skiptoken=1"
    return LoopbackServer(lambda method, path: (200, {}, {"value": [], link_name: foreign}))


@pytest.mark.parametrize("link_name", ["@odata.nextLink", "@odata.deltaLink"])
def test_a_link_to_another_port_gets_no_request_and_the_poll_run_names_the_origin(storage, monkeypatch, link_name):
    with LoopbackServer() as capture, hostile(link_name, capture) as service:
        rt = runtime(storage, service.url, monkeypatch)
        with pytest.raises(ForeignOriginError, match=f"127.0.0.1:{capture.port}"):
            engine.poll(rt, get_flow("accounts"))
        assert capture.requests == [] and len(service.requests) == 1
        run = rt.state.runs("accounts", limit=1)[0]
        assert run.status == "error" and f"http://127.0.0.1:{capture.port}" in str(run.error)
        assert rt.state.get_cursor("accounts").link is None  # the foreign link was not stored
        rt.close()


def test_a_planted_cursor_sends_nothing_to_its_host_from_a_fresh_process(storage, monkeypatch):
    with LoopbackServer() as capture, LoopbackServer() as service:
        rt = runtime(storage, service.url, monkeypatch)
        rt.state.put_cursor(Cursor(flow="accounts", link=f"{capture.url}{ROOT}accounts?$deltatoken=1"))
        fresh = runtime(storage, service.url, monkeypatch)  # a new worker: state is all it knows
        with pytest.raises(ForeignOriginError, match="stored cursor of flow accounts"):
            engine.poll(fresh, get_flow("accounts"))
        assert capture.requests == [] and service.requests == []
        assert f"127.0.0.1:{capture.port}" in str(fresh.state.runs("accounts", limit=1)[0].error)
        rt.close()
        fresh.close()


def test_a_cursor_of_the_service_itself_is_followed_relative_to_its_root(storage, monkeypatch):
    with LoopbackServer() as service:
        rt = runtime(storage, service.url, monkeypatch)
        rt.state.put_cursor(Cursor(flow="accounts", link=f"{service.url}{ROOT}accounts?$deltatoken=7"))
        engine.poll(rt, get_flow("accounts"))
        assert [path for _, path, _ in service.requests] == [f"{ROOT}accounts?$deltatoken=7"]
        rt.close()


def test_an_https_service_link_to_http_is_refused_before_it_is_sent():
    with LoopbackServer() as capture:
        client = ODataClient(DATAVERSE, f"https://127.0.0.1:{capture.port}")
        downgrade = f"http://127.0.0.1:{capture.port}{ROOT}accounts?$skiptoken=2"
        with pytest.raises(ForeignOriginError, match=f"http://127.0.0.1:{capture.port}"):
            client.relative(downgrade)
        with pytest.raises(ForeignOriginError):
            client.get_json(downgrade)
        assert capture.requests == []
        client.close()


def test_the_token_is_attached_only_to_its_own_origin():
    credential = CountingCredential()
    with LoopbackServer() as capture, LoopbackServer() as service:
        auth = BearerAuth(cast(TokenCredential, credential), scope_for(service.url))
        with httpx.Client(auth=auth) as http:
            assert http.get(f"{service.url}{ROOT}accounts").status_code == 200
            with pytest.raises(ForeignOriginError, match=f"127.0.0.1:{capture.port}"):
                http.get(f"{capture.url}{ROOT}accounts")
        assert capture.requests == []
        assert service.requests[0][2].get("Authorization") == "Bearer CANARY-TOKEN-origin"


@pytest.mark.parametrize("method", ["GET", "PATCH", "POST"])
def test_a_redirect_is_an_error_and_is_not_followed(method):
    with LoopbackServer() as capture:
        moved = {"Location": f"{capture.url}{ROOT}accounts"}
        with LoopbackServer(lambda m, p: (302, moved, {})) as service:
            client = ODataClient(DATAVERSE, service.url)
            with pytest.raises(PermanentError, match="HTTP 302 redirect is not followed") as info:
                client.request(method, "accounts(accountnumber='A-1')", json_body={"name": "x"})
            assert info.value.status == 302 and not info.value.transient
            client.close()
        assert capture.requests == []


@pytest.mark.parametrize(
    ("url", "auth_mode"),
    [
        ("http://127.0.0.1:5001", "azure"),  # a token in clear text, even on loopback
        ("http://contoso.crm.dynamics.com", "azure"),
        ("http://contoso.crm.dynamics.com", "none"),
    ],
)
def test_http_service_urls_are_refused_at_start(url, auth_mode, monkeypatch):
    monkeypatch.delenv("P2C_FNO_URL", raising=False)
    kw: dict[str, Any] = {"message_signing_key": KEY}
    with pytest.raises(SettingsError, match="P2C_DATAVERSE_URL"):
        load_settings(dataverse_url=url, fno_url="https://e.operations.dynamics.com", fno_company="usmf",
                      auth_mode=auth_mode, **kw)  # fmt: skip


def test_azure_auth_needs_https_and_a_signing_key(monkeypatch):
    monkeypatch.delenv("P2C_MESSAGE_SIGNING_KEY", raising=False)
    urls = {"dataverse_url": "https://o.crm.dynamics.com", "fno_url": "https://e.operations.dynamics.com"}
    with pytest.raises(SettingsError, match="P2C_MESSAGE_SIGNING_KEY"):
        load_settings(**urls, fno_company="usmf", auth_mode="azure")
    assert load_settings(**urls, fno_company="usmf", auth_mode="azure", message_signing_key=KEY).auth_mode == "azure"
