"""The console as the Functions app serves it, on Azurite: who may see, who may act, CSRF, audit."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from p2c_cli.azurite import ACCOUNT_KEY
from p2c_cli.host import indexed
from p2c_cli.local import sandbox_env
from p2c_core.console.auth import OPERATOR_ROLE, VIEWER_ROLE
from p2c_core.envelope import Record
from p2c_core.runtime import get_runtime, reset_runtime
from p2c_core.settings import setting_names
from p2c_core.state import Failure

from .test_auth import headers, role

SECRET = "s3cr3t-client-value-never-shown"
ACTION_HEADERS = {"Content-Type": "application/json", "X-P2C-Console": "1", "Host": "p2c.example.net"}


@pytest.fixture
def console(azurite, storage, monkeypatch):
    import function_app

    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    env = sandbox_env(azurite.connection_string, "http://127.0.0.1:1", "http://127.0.0.1:2")
    env |= {"P2C_TENANT_ID": "72f988bf-0000-4000-8000-000000000001", "P2C_CLIENT_ID": "c", "P2C_CLIENT_SECRET": SECRET}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")
    reset_runtime()
    fn = {f.get_function_name(): f.get_user_function() for f in indexed(function_app.app)}["console"]
    yield fn
    reset_runtime()


def call(fn, method: str, path: str, who: dict[str, str] | None, body: object = None, **extra: str):
    request = func.HttpRequest(
        method=method, url=f"https://p2c.example.net/api/console/{path}", route_params={"path": path},
        headers={**(who or {}), **extra}, body=b"" if body is None else json.dumps(body).encode(),
    )  # fmt: skip
    response = fn(req=request)
    return response.status_code, response.get_body()


def failed(key: str = "A-1") -> None:
    record = Record(key=key, version=1, data={"accountnumber": key})
    get_runtime().state.record_failure(Failure(flow="accounts", source_key=key, attempt=1, error_class="MappingError",
                                               message="too long", record=record.model_dump_json()))  # fmt: skip


OPERATOR = headers(role(OPERATOR_ROLE))
VIEWER = headers(role(VIEWER_ROLE))


@pytest.mark.parametrize("path", ["", "console.js", "api/flows", "api/failures"])
def test_a_request_without_a_principal_or_with_a_forged_one_is_refused(console, path):
    assert call(console, "GET", path, None)[0] == 401
    forged = {**OPERATOR, "x-ms-client-principal-id": "someone-else"}
    assert call(console, "GET", path, forged)[0] == 401


def test_actions_without_or_with_a_forged_principal_are_refused_and_change_nothing(console):
    failed()
    for who in (None, {"x-ms-client-principal": "e30="}):
        status, _ = call(console, "POST", "api/replay", who, {"flow": "accounts"}, **ACTION_HEADERS)
        assert status == 401
    assert len(get_runtime().state.failures("accounts")) == 1


def test_a_viewer_sees_but_cannot_replay_or_pause(console):
    failed()
    status, body = call(console, "GET", "api/failures", VIEWER)
    assert status == 200 and [f["source_key"] for f in json.loads(body)["failures"]] == ["A-1"]
    for action in ("replay", "pause"):
        status, body = call(console, "POST", f"api/{action}", VIEWER, {"flow": "accounts"}, **ACTION_HEADERS)
        assert status == 403 and "may look but not act" in json.loads(body)["error"]
    assert len(get_runtime().state.failures("accounts")) == 1 and not get_runtime().state.is_paused("accounts")


def test_an_operator_replays_and_the_action_is_recorded_with_who_and_when(console):
    failed("A-1")
    failed("A-2")
    one = {"flow": "accounts", "keys": ["A-2"]}
    status, body = call(console, "POST", "api/replay", OPERATOR, one, **ACTION_HEADERS)
    answer = json.loads(body)
    assert status == 200 and answer["replayed"] == 1 and answer["by"] == "Ada Operator"
    assert [f.source_key for f in get_runtime().state.failures("accounts")] == ["A-1"]
    [entry] = json.loads(call(console, "GET", "api/history", VIEWER)[1])["actions"]
    assert (entry["actor"], entry["action"], entry["flow"], entry["detail"]["keys"]) == (
        "Ada Operator", "replay", "accounts", ["A-2"])  # fmt: skip
    assert entry["at"] == answer["at"]
    # the flow's own run history is untouched: `status` still sees its real last run
    assert get_runtime().state.runs("accounts") == []


@pytest.mark.parametrize(
    "extra",
    [
        {"Content-Type": "application/json"},  # no console header: a plain cross-site form or fetch
        {"Content-Type": "text/plain", "X-P2C-Console": "1"},
        {**ACTION_HEADERS, "Origin": "https://evil.example.com"},
        {**ACTION_HEADERS, "Sec-Fetch-Site": "cross-site"},
    ],
)
def test_cross_site_actions_are_refused(console, extra):
    status, _ = call(console, "POST", "api/pause", OPERATOR, {"flow": "accounts"}, **extra)
    assert status == 403 and not get_runtime().state.is_paused("accounts")


def test_pause_and_resume_by_an_operator_from_the_same_origin(console):
    same = {**ACTION_HEADERS, "Origin": "https://p2c.example.net", "Sec-Fetch-Site": "same-origin"}
    assert call(console, "POST", "api/pause", OPERATOR, {"flow": "accounts"}, **same)[0] == 200
    flows = {f["flow"]: f for f in json.loads(call(console, "GET", "api/flows", VIEWER)[1])["flows"]}
    assert flows["accounts"]["paused"] is True and flows["accounts"]["paused_by"] == "operator"
    assert call(console, "POST", "api/resume", OPERATOR, {"flow": "accounts"}, **same)[0] == 200
    assert not get_runtime().state.is_paused("accounts")


def test_no_secret_in_the_page_or_its_answers(console):
    failed()
    bodies = [call(console, "GET", p, VIEWER)[1] for p in ("", "console.js", "api/me", "api/flows", "api/failures",
                                                           "api/failures/accounts/A-1", "api/history")]  # fmt: skip
    for body in bodies:
        assert SECRET.encode() not in body and ACCOUNT_KEY.encode() not in body and b"AccountKey" not in body


def test_the_page_is_served_from_the_package_with_a_strict_policy(console):
    request = func.HttpRequest(method="GET", url="https://p2c.example.net/api/console/", route_params={"path": ""},
                               headers=VIEWER, body=b"")  # fmt: skip
    page = console(req=request)
    assert page.status_code == 200 and b"<title>p2c console</title>" in page.get_body()
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    bare = func.HttpRequest(method="GET", url="https://p2c.example.net/api/console", route_params={}, headers=VIEWER,
                            body=b"")  # fmt: skip
    moved = console(req=bare)
    assert moved.status_code == 308 and moved.headers["Location"] == "https://p2c.example.net/api/console/"


def test_unknown_flows_and_bad_bodies_are_client_errors(console):
    assert call(console, "POST", "api/pause", OPERATOR, {"flow": "nope"}, **ACTION_HEADERS)[0] == 404
    assert call(console, "POST", "api/replay", OPERATOR, {"flow": "accounts", "keys": "A"}, **ACTION_HEADERS)[0] == 400
    assert call(console, "GET", "api/failures/accounts/none", VIEWER)[0] == 404
