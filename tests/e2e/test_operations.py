"""Operating against the sandbox: check, plan (issue 7 acceptance 2 and 3)."""

from __future__ import annotations

import dataclasses

from p2c_core import ops
from p2c_core.flow import Field
from p2c_core.flows import get_flow

from .conftest import E2E

accounts = get_flow("accounts")


def maintained_keys(e2e: E2E) -> list[str]:
    """F&O customers p2c maintains, sorted."""
    rows = e2e.sandbox.fno.rows("CustomersV3")
    return sorted(r["CustomerAccount"] for r in rows if r["IsExternallyMaintained"] == "Yes")


def test_check_passes_on_the_real_mappings_and_names_a_misspelled_field(e2e: E2E):
    assert ops.check(e2e.runtime) == []
    typo = dataclasses.replace(
        accounts,
        fields={**accounts.fields, "OrganisationName": Field("name"), "PrimaryContactPhone": Field("telephone")},
    )
    problems = {(p.service, p.name): p for p in ops.check(e2e.runtime, [typo])}
    assert problems[("fno", "OrganisationName")].suggestion == "OrganizationName"
    assert problems[("dataverse", "telephone")].suggestion == "telephone1"
    assert len(problems) == 2
    wrong_set = dataclasses.replace(accounts, target=dataclasses.replace(accounts.target, entity_set="CustomerV3"))
    [problem] = ops.check(e2e.runtime, [wrong_set])
    assert problem.problem == "entity set not in $metadata" and problem.suggestion == "CustomersV3"


def test_plan_shows_exactly_what_the_next_sync_writes(e2e: E2E):
    planned = ops.plan(e2e.runtime, "accounts")
    creates = {c.key for c in planned if c.action == "create"}
    fails = {c.key for c in planned if c.action == "fail"}
    assert len(creates) > 20 and len(fails) == 2
    assert e2e.sandbox.fno.rows("CustomersV3") and all(
        r["CustomerAccount"] not in creates for r in e2e.sandbox.fno.rows("CustomersV3")
    ), "plan wrote nothing"
    summary = e2e.sync("accounts")
    assert summary.flows["accounts"].written == len(creates)
    # an edit in Sales, and one behind p2c's back in F&O: plan shows both as one update each
    key = sorted(creates)[0]
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{key}')", json={"name": "Planned Name"}, headers={"If-Match": "*"})
    planned = ops.plan(e2e.runtime, "accounts")
    [change] = [c for c in planned if c.action != "unchanged"]
    assert change.key == key and change.action == "update"
    assert change.fields == {"OrganizationName": (change.fields["OrganizationName"][0], "Planned Name")}
    summary = e2e.sync("accounts")
    assert summary.flows["accounts"].written == 1
    assert ops.plan(e2e.runtime, "accounts") == []


def test_reconcile_finds_changes_behind_p2cs_back_and_repairs_them(e2e: E2E):
    import httpx

    e2e.sync("accounts")
    clean = ops.reconcile(e2e.runtime, "accounts")
    assert (clean.missing, clean.extra, clean.differing) == ([], [], {})
    assert clean.source_records > 20 and len(clean.unmappable) == 1  # the over-long name
    keys = sorted(k for k in (r.get("accountnumber") for r in e2e.sandbox.dataverse.rows("accounts")) if k)
    gone, edited_fno, edited_sales = keys[0], keys[1], keys[2]
    with httpx.Client(base_url=e2e.sandbox.fno_url + "/data/") as fno:
        fno.delete(f"CustomersV3(dataAreaId='usmf',CustomerAccount='{gone}')").raise_for_status()
        fno.patch(f"CustomersV3(dataAreaId='usmf',CustomerAccount='{edited_fno}')",
                  json={"CreditLimit": 123456}).raise_for_status()  # fmt: skip
        fno.post("CustomersV3", json={"CustomerAccount": "ORPHAN-1", "OrganizationName": "Orphan",
                                      "IsExternallyMaintained": "Yes", "PartyType": "Organization"},
                 ).raise_for_status()  # fmt: skip
    e2e.runtime.state.put_cursor(e2e.runtime.state.get_cursor("accounts"))  # cursor stays: p2c sees nothing
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{edited_sales}')", json={"name": "Edited Quietly"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
    drift = ops.reconcile(e2e.runtime, "accounts", repair=True)
    assert drift.missing == [gone] and drift.extra == ["ORPHAN-1"]
    assert set(drift.differing) == {edited_fno, edited_sales}
    assert drift.differing[edited_fno]["CreditLimit"][0] == 123456
    assert drift.differing[edited_sales]["OrganizationName"] == (drift.differing[edited_sales]["OrganizationName"][0],
                                                                 "Edited Quietly")  # fmt: skip
    assert drift.repaired == 3
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    after = ops.reconcile(e2e.runtime, "accounts")
    assert (after.missing, after.differing) == ([], {}) and after.extra == ["ORPHAN-1"]


def test_pause_keeps_changes_queued_and_resume_applies_them(e2e: E2E, monkeypatch):
    import json

    from p2c_core import apply

    monkeypatch.setattr(apply, "PAUSED_DELAY_S", 1)
    e2e.sync("accounts")
    ops.set_paused(e2e.runtime, "accounts", True)
    assert ops.status(e2e.runtime)["flows"]["accounts"]["paused"] is True
    key = sorted(
        r["CustomerAccount"] for r in e2e.sandbox.fno.rows("CustomersV3") if r["CustomerAccount"][:4] == "ACC-"
    )[0]
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{key}')", json={"name": "While Paused"}, headers={"If-Match": "*"})
    paused = e2e.sync("accounts")
    assert paused.flows["accounts"].read == 0  # the timer read nothing
    # a message already queued stays queued while paused
    record = {"key": key, "version": 10**9, "data": {"accountnumber": key, "name": "Queued While Paused"}}
    e2e.storage.queue(accounts.queue).send_message(
        json.dumps({"v": 1, "flow": "accounts", "records": [record]}).encode()
    )
    e2e.host.pump(next(f for f in e2e.host.queue_functions() if f.queue == accounts.queue))
    assert e2e.host.depth(accounts.queue) == 1
    name = {r["CustomerAccount"]: r for r in e2e.sandbox.fno.rows("CustomersV3")}[key]["OrganizationName"]
    assert name not in ("While Paused", "Queued While Paused")
    ops.set_paused(e2e.runtime, "accounts", False)
    resumed = e2e.sync("accounts")
    assert resumed.flows["accounts"].read == 1
    # the queued (newer) version wins over the Sales edit read after resuming
    assert {r["CustomerAccount"]: r for r in e2e.sandbox.fno.rows("CustomersV3")}[key]["OrganizationName"] == (
        "Queued While Paused"
    )


def test_status_failures_and_replay_bring_failures_to_zero(e2e: E2E, monkeypatch):
    with e2e.dataverse() as dv:
        dv.post("accounts", json={"accountnumber": "NARNIA-9", "name": "Far Away", "customertypecode": 3,
                                  "address1_country": "Narnia"}).raise_for_status()  # fmt: skip
    e2e.sync("accounts")
    report = ops.status(e2e.runtime)["flows"]["accounts"]
    assert report["failures"] == 3 and report["healthy"] is False  # no number, over-long name, Narnia
    causes = {f["source_key"]: f for f in ops.failures(e2e.runtime, "accounts")}
    assert "has no accountnumber" in next(f["message"] for k, f in causes.items() if k.startswith("accounts("))
    assert "value map 'country' has no entry for 'Narnia'" in causes["NARNIA-9"]["message"]
    long_key = next(k for k, f in causes.items() if "over the target's maximum" in f["message"])
    # fix each cause: a value map (setting), the source record, and the missing number
    monkeypatch.setenv("P2C_VALUE_MAPS__COUNTRY", '{"Narnia": "NA"}')
    e2e.restart_runtime()
    keyless = next(r for r in e2e.sandbox.dataverse.rows("accounts") if r.get("accountnumber") is None)
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{long_key}')", json={"name": "Short Name Ltd"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
        dv.patch(f"accounts({keyless['accountid']})", json={"accountnumber": "ACC-09999-FIXED"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
    assert e2e.host.depth(accounts.poison_queue) == 2
    assert ops.replay(e2e.runtime, "accounts") == {"accounts": 2}
    assert e2e.host.depth(accounts.poison_queue) == 0  # copies of the replayed records, dropped
    e2e.sync("accounts")
    assert ops.failures(e2e.runtime) == []
    assert ops.status(e2e.runtime)["healthy"] is True
    fno = {r["CustomerAccount"]: r for r in e2e.sandbox.fno.rows("CustomersV3")}
    assert fno[long_key]["OrganizationName"] == "Short Name Ltd" and "ACC-09999-FIXED" in fno
    assert fno["NARNIA-9"]["DeliveryAddressCountryRegionISOCode"] == "NA"


def test_reset_cursor_to_a_time_rereads_only_what_changed_since(e2e: E2E):
    import time
    from datetime import UTC, datetime

    e2e.sync("accounts")
    time.sleep(1.1)  # modifiedon has whole seconds
    since = datetime.now(UTC)
    key = sorted(
        r["CustomerAccount"] for r in e2e.sandbox.fno.rows("CustomersV3") if r["IsExternallyMaintained"] == "Yes"
    )[0]
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{key}')", json={"name": "Changed Since"}, headers={"If-Match": "*"})
    ops.reset_cursor(e2e.runtime, "accounts", since)
    assert e2e.runtime.state.get_cursor("accounts").watermark is not None
    summary = e2e.sync("accounts").flows["accounts"]
    assert summary.written == 1 and summary.read == len(e2e.sandbox.dataverse.rows("accounts"))
    cursor = e2e.runtime.state.get_cursor("accounts")
    assert cursor.watermark is None and cursor.link is not None and "deltatoken" in cursor.link
    ops.reset_cursor(e2e.runtime, "accounts")  # full: reads everything, writes nothing unchanged
    full = e2e.sync("accounts").flows["accounts"]
    assert full.written == 0 and full.read == summary.read
