"""Issue 21, acceptance 4: what the security review found holding, kept as tests: crafted
keys land as exactly themselves, the loopback rule of P2C_AUTH_MODE=none has no bypass,
malformed messages become failure entries, payload keys outside the mapping are ignored."""

from __future__ import annotations

import json

import pytest

from p2c_core import engine
from p2c_core.envelope import Envelope, Record
from p2c_core.errors import SettingsError
from p2c_core.flows import get_flow
from p2c_core.settings import load_settings
from p2c_core.signing import seal
from tests.e2e.conftest import E2E
from tests.e2e.test_accounts import fno_customers

ACCOUNTS = get_flow("accounts")

CRAFTED = [
    "O'Brien",
    "X',dataAreaId='demf",
    "K' or 1 eq 1 or 'a",
    "X)/$count",
    "../CustomersV3",
    "A\r\nB",
    "A\u202eB",
    "A/B#1?",
    "100%25",
    "A&$filter=x",
    "K''",
    "' or ''='",
    "東京商事",
    "X?$top=1",
    "A+B C",
]


def test_fifteen_crafted_keys_each_land_as_exactly_themselves(e2e: E2E):
    assert len(set(CRAFTED)) == 15
    e2e.sync("accounts")
    before = fno_customers(e2e)
    with e2e.dataverse() as dv:
        for key in CRAFTED:
            dv.post("accounts", json={"accountnumber": key, "name": f"Crafted {key}", "customertypecode": 3,
                                      "address1_country": "United States"}).raise_for_status()  # fmt: skip
    summary = e2e.sync("accounts").flows["accounts"]
    after = fno_customers(e2e)
    assert set(after) - set(before) == set(CRAFTED)  # exactly these, no other row
    for key in CRAFTED:
        assert after[key]["OrganizationName"] == f"Crafted {key}" and after[key]["dataAreaId"] == "usmf"
    assert all(after[k] == v for k, v in before.items())  # nothing else touched
    assert summary.written == 15


@pytest.mark.parametrize(
    "url",
    [
        "https://127.0.0.1.nip.io",
        "https://localhost.example.com",
        "https://127.0.0.1@example.com",
        "https://example.com#@127.0.0.1",
        "https://example.com\\@127.0.0.1",
        "https://[::ffff:7f00:1]",
        "https://0x7f000001",
        "https://2130706433",
        "https://127.1",
        "https://localhost:443@example.com",
        "https://loc%61lhost",
    ],
)
def test_no_token_mode_has_no_loopback_bypass(url, monkeypatch):
    monkeypatch.delenv("P2C_FNO_URL", raising=False)
    with pytest.raises(SettingsError, match="P2C_DATAVERSE_URL"):
        load_settings(dataverse_url=url, fno_url="http://127.0.0.1:2", fno_company="usmf", auth_mode="none")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json at all", "not JSON"),
        (b"\xff\xfe", "not UTF-8"),
        (b'{"v": 7, "flow": "accounts", "records": []}', "unknown message version 7"),
        (b'{"v": 2, "flow": "accounts", "records": []}', "wrong shape"),
        (b'{"v": 2, "flow": "accounts", "records": [{"key": "A", "version": -1}]}', "wrong shape"),
        (b"[" * 30_000 + b"]" * 30_000, "nested too deeply"),
        (b'{"v": 2, "flow": "orders", "records": [{"key": "A", "version": 1}]}', "not 'accounts'"),
    ],
)
def test_malformed_messages_become_failure_entries(e2e: E2E, body, says):
    out = engine.apply(e2e.runtime, ACCOUNTS, body)
    assert out.counts.failed == 1
    (failure,) = e2e.runtime.state.failures("accounts")
    assert failure.source_key.startswith("message-") and says in failure.message


def test_payload_keys_outside_the_mapping_are_ignored(e2e: E2E):
    data = {
        "accountnumber": "EXTRA-1",
        "name": "Extra Columns Ltd",
        "customertypecode": 3,
        "dataAreaId": "demf",
        "CustomerAccount": "SOMEONE-ELSE",
        "CustomerGroupId": "99",
        "CreditLimit": 10**9,
        "@odata.bind": "/CustomersV3(dataAreaId='demf',CustomerAccount='X')",
    }
    message = seal(Envelope(flow="accounts", records=[Record(key="EXTRA-1", version=1, data=data)]),
                   e2e.runtime.signing_key)  # fmt: skip
    e2e.storage.queue(ACCOUNTS.queue).send_message(message)
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    rows = [r for r in e2e.sandbox.fno.rows("CustomersV3") if r["CustomerAccount"] in ("EXTRA-1", "SOMEONE-ELSE", "X")]
    assert [(r["CustomerAccount"], r["dataAreaId"]) for r in rows] == [("EXTRA-1", "usmf")]
    assert rows[0]["CustomerGroupId"] != "99" and rows[0].get("CreditLimit") != 10**9
    assert json.dumps(rows[0]).count("SOMEONE-ELSE") == 0
