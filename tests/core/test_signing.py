"""Envelope signatures: what p2c seals verifies; any change, another key or none does not."""

from __future__ import annotations

import json

from pydantic import SecretStr

from p2c_core.envelope import Envelope, Record, decode
from p2c_core.signing import key_bytes, problem, seal

KEY = b"k" * 32


def envelope() -> Envelope:
    return Envelope(flow="accounts", records=[Record(key="A-1", version=5, data={"name": "Ünïcode & Co", "n": 1.5})])


def test_a_sealed_message_verifies_and_decodes_whole():
    body = seal(envelope(), KEY)
    assert problem(body, KEY) is None
    assert decode(body).records == envelope().records and json.loads(body)["v"] == 2


def test_key_order_does_not_matter_but_every_field_does():
    data = json.loads(seal(envelope(), KEY))
    reordered = json.dumps(dict(reversed(list(data.items())))).encode()
    assert problem(reordered, KEY) is None
    for change in ({"flow": "orders"}, {"sent": 1.0}, {"v": 1}):
        assert "does not match" in str(problem(json.dumps({**data, **change}).encode(), KEY))
    flagged = json.loads(json.dumps(data))
    flagged["records"][0]["force"] = True
    assert "does not match" in str(problem(json.dumps(flagged).encode(), KEY))


def test_another_key_no_signature_or_junk_is_refused():
    body = seal(envelope(), KEY)
    assert "does not match" in str(problem(body, b"x" * 32))
    assert "not signed" in str(problem(envelope().to_json(), KEY))
    assert "does not match" in str(problem(json.dumps({**json.loads(body), "sig": "é"}).encode(), KEY))
    assert problem(b"[" * 5000 + b"]" * 5000, KEY) == "message is not JSON"
    assert problem(b"[]", KEY) == "message is not a JSON object"


def test_the_key_comes_from_settings_or_is_random_per_process():
    assert key_bytes(SecretStr("s" * 32)) == b"s" * 32
    assert key_bytes(None) == key_bytes(None) and len(key_bytes(None)) == 32
