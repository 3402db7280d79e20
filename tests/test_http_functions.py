"""The registered HTTP functions, called with real HttpRequest objects, on Azurite."""

from __future__ import annotations

import json

import azure.functions as func
import pytest

from p2c_cli.host import indexed
from p2c_cli.local import sandbox_env
from p2c_core.envelope import Record
from p2c_core.runtime import get_runtime, reset_runtime
from p2c_core.settings import setting_names
from p2c_core.state import Failure


@pytest.fixture
def http(azurite, storage, monkeypatch):
    import function_app

    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    env = sandbox_env(azurite.connection_string, "http://127.0.0.1:1", "http://127.0.0.1:2")
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    reset_runtime()
    fns = {fn.get_function_name(): fn.get_user_function() for fn in indexed(function_app.app)}
    yield fns
    reset_runtime()


def call(fn, method: str, body: bytes = b"") -> func.HttpResponse:
    return fn(req=func.HttpRequest(method=method, url=f"/api/{fn.__name__}", body=body))


def test_status_is_200_when_healthy_and_503_with_failures(http):
    ok = call(http["status"], "GET")
    assert ok.status_code == 200 and json.loads(ok.get_body())["healthy"] is True
    record = Record(key="A-1", version=1, data={})
    get_runtime().state.record_failure(Failure(flow="accounts", source_key="A-1", attempt=1,
                                               error_class="MappingError", message="m",
                                               record=record.model_dump_json()))  # fmt: skip
    bad = call(http["status"], "GET")
    report = json.loads(bad.get_body())
    assert bad.status_code == 503 and report["flows"]["accounts"]["failures"] == 1


def test_replay_endpoint(http):
    record = Record(key="A-2", version=1, data={})
    get_runtime().state.record_failure(Failure(flow="accounts", source_key="A-2", attempt=1,
                                               error_class="MappingError", message="m",
                                               record=record.model_dump_json()))  # fmt: skip
    resp = call(http["replay"], "POST", json.dumps({"flow": "accounts", "keys": ["A-2"]}).encode())
    assert resp.status_code == 200 and json.loads(resp.get_body()) == {"replayed": {"accounts": 1}}
    for body, message in ((b"[1]", "JSON object"), (b'{"flow": "nope"}', "unknown flow"),
                          (b'{"keys": "A-2"}', "list of strings"), (b"{bad", "Expecting")):  # fmt: skip
        resp = call(http["replay"], "POST", body)
        assert resp.status_code == 400 and message in json.loads(resp.get_body())["error"]
