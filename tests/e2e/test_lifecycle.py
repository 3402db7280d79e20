"""A record's whole life (issue 17): waiting records, deletes and deactivation, re-keys, auto-pause."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.data.tables import UpdateMode

from p2c_core import ops

from .conftest import E2E

ROOT = Path(__file__).resolve().parents[2]


def _competitor_quote(e2e: E2E) -> str:
    """A quote for an account that is no customer: its F&O customer never appears."""
    usd = next(c for c in e2e.sandbox.dataverse.rows("transactioncurrencies") if c["isocurrencycode"] == "USD")
    account = str(uuid.uuid4())
    with e2e.dataverse() as dv:
        dv.patch(f"accounts({account})", json={
            "accountnumber": "ACC-09002-NEVERX", "name": "Competitor Inc", "customertypecode": 1, "statecode": 0,
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({usd['transactioncurrencyid']})",
        }).raise_for_status()  # fmt: skip
        dv.post("quotes", json={
            "quotenumber": "QUO-09002-WAIT", "name": "Waiting quote", "statecode": 1,
            "msdynce_hasexternallymaintainedproductsonly": True,
            "customerid_account@odata.bind": f"/accounts({account})",
            "transactioncurrencyid@odata.bind": f"/transactioncurrencies({usd['transactioncurrencyid']})",
        }).raise_for_status()  # fmt: skip
    return "QUO-09002-WAIT"


def _p2c(*args: str) -> subprocess.CompletedProcess[str]:
    # The timeout only stops a hung test; the command returns as soon as all that is left waits.
    return subprocess.run([sys.executable, "-m", "p2c_cli", *args], capture_output=True, text=True,
                          env=dict(os.environ), cwd=ROOT, timeout=300)  # fmt: skip


def test_sync_returns_naming_records_that_wait_for_a_customer_that_never_comes(e2e: E2E):
    quote = _competitor_quote(e2e)
    out = _p2c("sync", "quotes", "--json")  # default settings: a dependency waits 4 hours
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout.strip().splitlines()[-1])
    waiting = {w["key"]: w for w in summary["waiting"]}
    assert waiting[quote]["flow"] == "quotes"
    assert "customer 'ACC-09002-NEVERX' is not in F&O yet" in waiting[quote]["waiting_for"]
    assert summary["queued"] >= len(waiting) > 0  # still queued: nothing is lost
    assert summary["flows"]["quotes"]["read"] > 0 and summary["flows"]["quotes"]["failed"] == 0
    # A second run, which did not see them park, prints its summary too and leaves them queued.
    again = _p2c("sync", "quotes", "--settle", "1")
    assert again.returncode == 0, again.stderr
    assert "Sync summary" in again.stdout
    assert "wait in their queues" in again.stdout or "still queued" in again.stdout
    assert e2e.runtime.state.get_entry("quotes", quote) is None


def test_a_flow_whose_records_all_fail_pauses_itself_and_resume_continues_with_nothing_lost(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
):
    from p2c_core import apply

    from .test_accounts import assert_synced, fno_customers

    natives = set(fno_customers(e2e))
    monkeypatch.setattr(apply, "PAUSED_DELAY_S", 1)
    monkeypatch.setenv("P2C_DEFAULTS__CUSTOMER_GROUP", "NO-SUCH-GROUP-AT-ALL")  # F&O refuses it: too long
    monkeypatch.setenv("P2C_CHUNK_SIZE", "3")  # many messages: most are still queued when it pauses
    e2e.restart_runtime()
    with caplog.at_level(logging.WARNING, logger="p2c.engine"):
        summary = e2e.sync("accounts")
    status = ops.status(e2e.runtime)["flows"]["accounts"]
    assert status["paused"] is True
    assert "paused itself" in status["paused_reason"] and "records failed" in status["paused_reason"]
    alerts = [r for r in caplog.records if getattr(r, "p2c.event", None) == "auto_pause"]
    # Once, or once per worker that saw the threshold passed at the same moment.
    assert alerts and {a.__dict__["p2c.flow"] for a in alerts} == {"accounts"}
    failed = summary.flows["accounts"].failed
    assert failed >= 20 and summary.flows["accounts"].written == 0
    assert status["queue_depth"] > 0  # the rest waits in the queue
    assert {w.waiting_for for w in summary.waiting} == {"flow accounts to be resumed"}
    # Fixed, resumed: the queued changes go on, and the failed ones replay.
    monkeypatch.delenv("P2C_DEFAULTS__CUSTOMER_GROUP")
    e2e.restart_runtime()
    ops.set_paused(e2e.runtime, "accounts", False)
    assert ops.status(e2e.runtime)["flows"]["accounts"]["paused_reason"] is None
    e2e.host.drain(timeout=120, idle_sleep=0.05)
    refused = {f.source_key for f in e2e.runtime.state.failures("accounts") if f.error_class == "PermanentError"}
    assert ops.replay(e2e.runtime, "accounts", refused) == {"accounts": len(refused)}
    e2e.host.drain(timeout=120, idle_sleep=0.05)
    assert ops.status(e2e.runtime)["flows"]["accounts"]["paused"] is False
    assert_synced(e2e, natives)  # every customer account there; only the two unmappable ones failed


def _synced_account(e2e: E2E) -> dict[str, Any]:
    e2e.sync("accounts")
    return next(
        r for r in e2e.sandbox.dataverse.rows("accounts")
        if r.get("customertypecode") == 3 and r.get("statecode") == 0 and r.get("accountnumber")
        and e2e.runtime.state.get_entry("accounts", r["accountnumber"]) is not None
        and e2e.runtime.state.get_entry("accounts", r["accountnumber"]).version >= 0  # type: ignore[union-attr]
    )  # fmt: skip


def _customer(e2e: E2E, number: str) -> dict[str, Any] | None:
    return next((r for r in e2e.sandbox.fno.rows("CustomersV3") if r["CustomerAccount"] == number), None)


def _removed(e2e: E2E) -> int:
    return ops.status(e2e.runtime)["flows"]["accounts"]["removed_24h"]


def _on_delete(e2e: E2E, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("P2C_FLOWS__ACCOUNTS__ON_DELETE", value)
    e2e.restart_runtime()


@pytest.mark.parametrize("how", ["delete", "deactivate"])
def test_by_default_a_removed_account_is_counted_and_its_customer_left_as_it_was(e2e: E2E, how: str):
    account = _synced_account(e2e)
    before, removed = _customer(e2e, account["accountnumber"]), _removed(e2e)  # the demo has inactive ones
    with e2e.dataverse() as dv:
        if how == "delete":
            dv.delete(f"accounts({account['accountid']})").raise_for_status()
        else:
            dv.patch(f"accounts({account['accountid']})", json={"statecode": 1, "statuscode": 2}).raise_for_status()
    summary = e2e.sync("accounts")
    assert summary.flows["accounts"].written == 0
    assert _customer(e2e, account["accountnumber"]) == before
    assert ops.status(e2e.runtime)["flows"]["accounts"]["on_delete"] == "ignore"
    assert _removed(e2e) == removed + 1  # never silent


@pytest.mark.parametrize("how", ["delete", "deactivate"])
def test_hold_puts_the_customer_of_a_removed_account_on_hold(e2e: E2E, monkeypatch: pytest.MonkeyPatch, how: str):
    _on_delete(e2e, monkeypatch, "hold")
    account = _synced_account(e2e)
    removed = _removed(e2e)
    other = next(c for c in e2e.sandbox.fno.rows("CustomersV3") if c["CustomerAccount"].startswith("ACC-")
                 and c["CustomerAccount"] != account["accountnumber"])  # fmt: skip
    assert _customer(e2e, account["accountnumber"])["OnHoldStatus"] in (None, "No")  # type: ignore[index]
    with e2e.dataverse() as dv:
        if how == "delete":
            dv.delete(f"accounts({account['accountid']})").raise_for_status()
        else:
            dv.patch(f"accounts({account['accountid']})", json={"statecode": 1, "statuscode": 2}).raise_for_status()
    summary = e2e.sync("accounts")
    assert summary.flows["accounts"].written == 1 and summary.flows["accounts"].failed == 0
    assert _customer(e2e, account["accountnumber"])["OnHoldStatus"] == "All"  # type: ignore[index]
    assert _customer(e2e, other["CustomerAccount"])["OnHoldStatus"] == other["OnHoldStatus"]  # type: ignore[index]
    assert _removed(e2e) == removed + 1
    assert e2e.sync("accounts").flows["accounts"].written == 0  # once


def test_hold_is_refused_for_a_flow_that_cannot_hold(monkeypatch: pytest.MonkeyPatch):
    from p2c_core.errors import SettingsError
    from p2c_core.settings import load_settings

    monkeypatch.setenv("P2C_FLOWS__QUOTES__ON_DELETE", "hold")
    with pytest.raises(SettingsError, match="P2C_FLOWS__QUOTES__ON_DELETE=hold is not offered by flow quotes"):
        load_settings(dataverse_url="http://127.0.0.1:1", fno_url="http://127.0.0.1:2", fno_company="usmf",
                      auth_mode="none")  # fmt: skip


def test_a_renumbered_account_fails_naming_both_keys_and_writes_nothing(e2e: E2E):
    account = _synced_account(e2e)
    old, new = account["accountnumber"], "ACC-09999-RENUMB"
    customers = len(e2e.sandbox.fno.rows("CustomersV3"))
    with e2e.dataverse() as dv:
        dv.patch(f"accounts({account['accountid']})", json={"accountnumber": new}).raise_for_status()
    summary = e2e.sync("accounts")
    assert summary.flows["accounts"].failed == 1 and summary.flows["accounts"].written == 0
    assert len(e2e.sandbox.fno.rows("CustomersV3")) == customers and _customer(e2e, new) is None
    failure = next(f for f in e2e.runtime.state.failures("accounts") if f.source_key == new)
    assert failure.error_class == "KeyChanged"
    assert f"was written as {old!r} and now has key {new!r}" in failure.message
    # A replay is the operator's word that it is a new customer.
    assert ops.replay(e2e.runtime, "accounts", {new}) == {"accounts": 1}
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    assert _customer(e2e, new) is not None


def test_a_key_map_entry_written_before_row_ids_were_kept_still_reads_and_gains_its_id(e2e: E2E):
    from p2c_core.state import KEYMAP, ids, row_key
    from p2c_core.state.buckets import partition

    account = _synced_account(e2e)
    number, guid = account["accountnumber"], str(account["accountid"]).lower()
    table = e2e.storage.table(KEYMAP)
    entity = dict(table.get_entity(partition("accounts", number), row_key(number)))
    old = {k: v for k, v in entity.items() if k != "source_id"}  # as the version before wrote it
    table.delete_entity("accounts~id", row_key(guid))
    table.upsert_entity(old, mode=UpdateMode.REPLACE)
    entry = e2e.runtime.state.get_entry("accounts", number)
    assert entry is not None and entry.source_id is None and entry.version == entity["version"].value
    with e2e.dataverse() as dv:
        dv.patch(f"accounts({account['accountid']})", json={"name": "Renamed Ltd"}).raise_for_status()
    assert e2e.sync("accounts").flows["accounts"].written == 1
    assert e2e.runtime.state.get_entry("accounts", number).source_id == guid  # type: ignore[union-attr]
    assert ids.key_of(e2e.storage, "accounts", guid) == number


def test_deactivate_retires_the_sales_product_of_a_product_f_and_o_no_longer_has(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
):
    from .test_flows import fno_client

    monkeypatch.setenv("P2C_FLOWS__PRODUCTS__ON_DELETE", "deactivate")
    e2e.restart_runtime()
    e2e.sync("products")
    gone, kept = "D0001", "D0003"
    with fno_client(e2e) as fno:
        fno.delete(f"CDSReleasedDistinctProducts(dataAreaId='usmf',ProductNumber='{gone}')").raise_for_status()
    summary = e2e.sync("products")
    assert summary.flows["products"].written == 1
    products = {p["productnumber"]: p for p in e2e.sandbox.dataverse.rows("products")}
    assert products[gone]["statecode"] == 1
    assert products[kept]["statecode"] == 0
    assert ops.status(e2e.runtime)["flows"]["products"]["removed_24h"] == 1
    assert e2e.sync("products").flows["products"].written == 0  # reported once
