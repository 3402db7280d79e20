"""A record's whole life (issue 17): waiting records, deletes and deactivation, re-keys, auto-pause."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

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
            "msdyn_hasexternallymaintainedproductsonly": True,
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
