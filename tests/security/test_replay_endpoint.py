"""Issue 21, acceptance 3: `POST /api/replay` answers 4xx without a traceback, within limits,
and never echoes its input; a full replay needs `{"all": true}`."""

from __future__ import annotations

import json

import pytest

from p2c_core.envelope import Record
from p2c_core.replay_request import MAX_BODY_BYTES, MAX_KEYS
from p2c_core.runtime import get_runtime
from p2c_core.state import Failure
from tests.test_http_functions import call, http

__all__ = ["http"]

NESTED = b"[" * 100_000 + b"]" * 100_000


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (NESTED, 413, "over"),
        (b'{"flow": ' + b"[" * 20_000 + b"]" * 20_000 + b"}", 400, "not JSON"),
        (json.dumps({"flow": "F" * 20_000_000}).encode(), 413, "over"),
        (json.dumps({"flow": "F" * 5_000}).encode(), 400, "unknown flow"),
        (json.dumps({"keys": [f"K{i}" for i in range(MAX_KEYS + 1)]}).encode(), 400, "1 to"),
        (json.dumps({"keys": ["K" * 10_000]}).encode(), 400, "at most"),
        (json.dumps({"keys": []}).encode(), 400, "1 to"),
        (json.dumps({"flows": "accounts", "x" * 500: 1}).encode(), 400, "2 unknown field(s)"),
        (json.dumps({"all": "yes"}).encode(), 400, "true or false"),
        (json.dumps({"all": True, "flow": "accounts"}).encode(), 400, "leave out"),
        (b"", 400, '{"all": true}'),
        (b"{}", 400, '{"all": true}'),
        (b"\xff\xfe", 400, "not JSON"),
    ],
)
def test_bad_bodies_are_4xx_short_and_never_echoed(http, body, status, says):
    resp = call(http["replay"], "POST", body)
    text = resp.get_body().decode()
    assert resp.status_code == status and says in json.loads(text)["error"]
    assert len(text) < 400 and "FFFFFFFFFF" not in text and "xxxxxxxxxx" not in text
    assert "Traceback" not in text


def test_limits_are_what_the_docs_say():
    assert (MAX_BODY_BYTES, MAX_KEYS) == (64 * 1024, 1000)  # docs/security.md


def test_a_full_replay_is_asked_for_explicitly(http):
    record = Record(key="A-9", version=1, data={})
    get_runtime().state.record_failure(Failure(flow="accounts", source_key="A-9", attempt=1, error_class="E",
                                               message="m", record=record.model_dump_json()))  # fmt: skip
    assert call(http["replay"], "POST", b"").status_code == 400
    assert get_runtime().state.failures("accounts")  # nothing replayed by an empty body
    resp = call(http["replay"], "POST", b'{"all": true}')
    assert resp.status_code == 200 and json.loads(resp.get_body())["replayed"]["accounts"] == 1
