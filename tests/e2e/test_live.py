"""Live sync end to end: the sandbox pushes, the event function nudges, the nudge function
applies through the engine (issue 18, acceptance 4 and 5, and the push path)."""

from __future__ import annotations

import time

import httpx
import pytest
from typer.testing import CliRunner

from p2c_cli.main import app as cli
from p2c_core import ops
from p2c_core.ops import events

from .conftest import E2E
from .live import KEY, Live, live_sync, settled


@pytest.fixture
def live(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    with live_sync(e2e, monkeypatch) as found:
        yield found


def customer_key(e2e: E2E) -> str:
    return next(r["accountnumber"] for r in e2e.sandbox.dataverse.rows("accounts")
                if r.get("customertypecode") == 3 and r.get("statecode") == 0 and r.get("accountnumber"))  # fmt: skip


def fno_customer(e2e: E2E, key: str) -> dict:
    return next(r for r in e2e.sandbox.fno.rows("CustomersV3") if r["CustomerAccount"] == key)


def registered(e2e: E2E) -> tuple[list[dict], list[dict]]:
    rows = e2e.sandbox.dataverse_service.push.registrations.rows
    return list(rows["serviceendpoints"].values()), list(rows["sdkmessageprocessingsteps"].values())


def test_register_dry_run_lists_everything_and_changes_nothing_then_twice_is_once(live: Live):
    e2e = live.e2e
    wanted = events.wanted_steps(e2e.runtime)
    tables = {s.table for s in wanted}
    assert {"account", "contact", "quote", "quotedetail", "salesorder", "salesorderdetail"} <= tables
    result = CliRunner().invoke(cli, ["events", "register", "--dry-run", "--url", live.dataverse_url])
    assert result.exit_code == 0, result.output
    assert f"endpoint p2c live sync: would create {live.dataverse_url}" in result.output
    for step in wanted:
        assert f"step {step.name}: would create" in result.output
    assert "activate data events Created, Updated, Deleted of CDSSalesOrderHeaders" in result.output
    assert KEY not in result.output
    assert registered(e2e) == ([], [])

    live.register()
    live.register()
    endpoints, steps = registered(e2e)
    assert len(endpoints) == 1 and endpoints[0]["contract"] == 8 and endpoints[0]["authtype"] == 4
    assert sorted(s["name"] for s in steps) == sorted(s.name for s in wanted)
    assert all(s["mode"] == 1 and s["stage"] == 40 for s in steps)
    update = next(s for s in steps if s["name"] == "p2c: Update of account")
    assert "name" in update["filteringattributes"].split(",") and "tickersymbol" not in update["filteringattributes"]
    assert events.status(e2e.runtime)["missing"] == []
    with httpx.Client(base_url=e2e.sandbox.dataverse_url + "/api/data/v9.2/") as dv:  # authvalue is never read back
        assert "authvalue" not in dv.get("serviceendpoints").json()["value"][0]

    report = events.unregister(e2e.runtime, dry_run=False)
    assert report["endpoint"]["action"] == "remove" and len(report["steps"]) == len(wanted)
    assert registered(e2e) == ([], [])


def lag_points(reader) -> list:
    data = reader.get_metrics_data()
    if data is None:  # nothing recorded yet
        return []
    return [p for rm in data.resource_metrics for sm in rm.scope_metrics for m in sm.metrics if m.name == "p2c.lag"
            for p in m.data.data_points if p.attributes.get("flow") == "accounts"]  # fmt: skip


def test_an_edit_in_sales_is_pushed_nudged_and_written(live: Live, otel):
    e2e = live.e2e
    e2e.sync("accounts")
    live.register()
    before = sum(p.count for p in lag_points(otel[1]))
    key = customer_key(e2e)
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{key}')", json={"name": "Pushed Ltd"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
    assert settled(lambda: live.queued() > 0)
    live.drain_nudges()
    assert fno_customer(e2e, key)["OrganizationName"] == "Pushed Ltd"
    # p2c.lag, from the change in Sales to the write in F&O: in status and as a metric.
    assert ops.status(e2e.runtime)["flows"]["accounts"]["lag_s"] is not None
    assert sum(p.count for p in lag_points(otel[1])) == before + 1
    # The backstop poll finds the same change applied: nothing more is written.
    assert e2e.sync("accounts").flows["accounts"].written == 0


def test_an_edit_of_an_unmapped_column_sends_no_event_and_writes_nothing(live: Live):
    e2e = live.e2e
    e2e.sync("accounts")
    live.register()
    key = customer_key(e2e)
    before = fno_customer(e2e, key)
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{key}')", json={"tickersymbol": "PSHD"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
    sender = e2e.sandbox.dataverse_service.push.sender
    assert sender.snapshot()["events"] == 0 and live.queued() == 0
    assert e2e.sync("accounts").flows["accounts"].written == 0
    assert fno_customer(e2e, key) == before


def test_a_burst_for_one_record_is_one_read_and_one_write(live: Live):
    e2e = live.e2e
    e2e.sync("accounts")
    live.register()
    key = customer_key(e2e)
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{key}')", json={"name": "Burst Ltd"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
    assert settled(lambda: live.queued() == 1)
    # One real push (counted once its answer is back); 499 like it follow.
    assert settled(lambda: e2e.sandbox.dataverse_service.push.sender.stats.sent == 1)
    row_id = next(r["accountid"] for r in e2e.sandbox.dataverse.rows("accounts") if r.get("accountnumber") == key)
    context = {"MessageName": "Update", "PrimaryEntityName": "account", "PrimaryEntityId": row_id}
    with httpx.Client() as client:
        for _ in range(499):
            client.post(live.dataverse_url, params={"code": KEY}, json=context).raise_for_status()
    assert live.queued() == 500
    e2e.sandbox.dataverse_service.accounting.reset()
    e2e.sandbox.fno_service.accounting.reset()
    live.drain_nudges()
    reads = [r for r in e2e.sandbox.dataverse_service.accounting.snapshot()["requests"]
             if r["method"] == "GET" and r["entity_set"] == "accounts"]  # fmt: skip
    assert sum(r["count"] for r in reads) == 1
    writes = [r for r in e2e.sandbox.fno_service.accounting.snapshot()["requests"] if r["method"] != "GET"]
    assert sum(r["count"] for r in writes) == 1
    assert fno_customer(e2e, key)["OrganizationName"] == "Burst Ltd"


def test_a_pushed_delete_follows_the_flows_on_delete(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("P2C_FLOWS__ACCOUNTS__ON_DELETE", "hold")
    with live_sync(e2e, monkeypatch) as live:
        e2e.sync("accounts")
        live.register()
        key = customer_key(e2e)
        row_id = next(r["accountid"] for r in e2e.sandbox.dataverse.rows("accounts") if r.get("accountnumber") == key)
        with e2e.dataverse() as dv:
            dv.delete(f"accounts({row_id})").raise_for_status()
        assert settled(lambda: live.queued() > 0)
        live.drain_nudges()
        assert fno_customer(e2e, key)["OnHoldStatus"] == "All"


def test_an_fno_data_event_is_nudged_and_written_to_sales(live: Live):
    e2e = live.e2e
    e2e.sync("products")
    with httpx.Client(base_url=e2e.sandbox.fno_url) as fno:
        activation = {"entity": "CDSReleasedDistinctProducts", "events": ["Updated"], "endpoint": live.fno_url}
        fno.post("/_sandbox/data-events", json=activation | {"company": "usmf"}).raise_for_status()
        synced = {r["productnumber"] for r in e2e.sandbox.dataverse.rows("products")}
        product = next(r for r in e2e.sandbox.fno.rows("CDSReleasedDistinctProducts")
                       if r["dataAreaId"] == "usmf" and r["ProductNumber"] in synced)  # fmt: skip
        address = f"/data/CDSReleasedDistinctProducts(dataAreaId='usmf',ProductNumber='{product['ProductNumber']}')"
        fno.patch(address, json={"ProductName": "Pushed product"}).raise_for_status()
    assert settled(lambda: live.queued() > 0)
    live.drain_nudges()
    written = next(r for r in e2e.sandbox.dataverse.rows("products") if r["productnumber"] == product["ProductNumber"])
    assert written["name"] == "Pushed product"


def test_a_nudge_whose_read_failed_reads_again_when_delivered_again(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    from p2c_core import nudged
    from p2c_core.errors import P2CError
    from p2c_core.nudge import Nudge, seal
    from p2c_sandbox import FaultConfig

    monkeypatch.setenv("P2C_HTTP_MAX_RETRIES", "0")
    with live_sync(e2e, monkeypatch):
        e2e.sync("accounts")
        key = customer_key(e2e)
        row_id = next(r["accountid"] for r in e2e.sandbox.dataverse.rows("accounts") if r.get("accountnumber") == key)
        with e2e.dataverse() as dv:  # changed, its event lost: only this nudge knows
            dv.patch(f"accounts({row_id})", json={"name": "Read Again Ltd"}).raise_for_status()
        body = seal(Nudge(flow="accounts", table="accounts", id=row_id, received=time.time()), e2e.runtime.signing_key)
        e2e.sandbox.dataverse_service.faults.configure(FaultConfig(error_rate=1.0, statuses={503: 1.0},
                                                                   after_share=0.0))  # fmt: skip
        with pytest.raises(P2CError):  # the service's 503, after no retries
            nudged.handle(e2e.runtime, body)
        e2e.sandbox.dataverse_service.faults.configure(FaultConfig())
        out = nudged.handle(e2e.runtime, body)  # the host's second delivery
        assert out is not None and out.counts.written == 1
        assert fno_customer(e2e, key)["OrganizationName"] == "Read Again Ltd"


def customers(e2e: E2E, count: int) -> list[dict]:
    """`count` active customers in Sales, written to F&O: the seed's, and new ones where it has fewer."""
    rows = [r for r in e2e.sandbox.dataverse.rows("accounts")
            if r.get("customertypecode") == 3 and r.get("statecode") == 0 and r.get("accountnumber")
            and len(r.get("name") or "") <= 100]  # fmt: skip
    with e2e.dataverse() as dv:
        for i in range(len(rows), count):
            account = {"name": f"Burst Customer {i}", "accountnumber": f"BURST-{i:04d}", "customertypecode": 3}
            dv.post("accounts", json=account).raise_for_status()
    if len(rows) < count:
        e2e.sync("accounts")
        rows = [r for r in e2e.sandbox.dataverse.rows("accounts") if r.get("customertypecode") == 3
                and r.get("statecode") == 0 and r.get("accountnumber") and len(r.get("name") or "") <= 100]  # fmt: skip
    return rows[:count]


def reads_of(e2e: E2E, entity_set: str) -> int:
    return sum(r["count"] for r in e2e.sandbox.dataverse_service.accounting.snapshot()["requests"]
               if r["method"] == "GET" and r["entity_set"] == entity_set)  # fmt: skip


def test_a_burst_over_many_records_is_read_in_a_few_requests_and_every_edit_arrives(live: Live):
    e2e = live.e2e
    rows = customers(e2e, 50)
    e2e.sync("accounts")
    live.register()
    with e2e.dataverse() as dv:
        for i, row in enumerate(rows):
            dv.patch(f"accounts({row['accountid']})", json={"name": f"Burst {i} Ltd"}).raise_for_status()
    assert settled(lambda: live.queued() == 50)
    e2e.sandbox.dataverse_service.accounting.reset()
    assert live.drain_nudges() == 0
    # One filtered read per IDS_PER_QUERY rows (50): not one a record.
    assert 1 <= reads_of(e2e, "accounts") <= 3
    for i, row in enumerate(rows):
        assert fno_customer(e2e, row["accountnumber"])["OrganizationName"] == f"Burst {i} Ltd"
    assert e2e.sync("accounts").flows["accounts"].written == 0  # the backstop finds nothing left


def test_a_row_gone_among_a_burst_follows_on_delete_and_the_others_are_written(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("P2C_FLOWS__ACCOUNTS__ON_DELETE", "hold")
    with live_sync(e2e, monkeypatch) as live:
        gone, *edited = customers(e2e, 5)
        e2e.sync("accounts")
        live.register()
        with e2e.dataverse() as dv:
            for row in edited:
                dv.patch(f"accounts({row['accountid']})", json={"name": "Kept Ltd"}).raise_for_status()
            dv.delete(f"accounts({gone['accountid']})").raise_for_status()
        assert settled(lambda: live.queued() == 5)
        e2e.sandbox.dataverse_service.accounting.reset()
        live.drain_nudges()
        assert reads_of(e2e, "accounts") == 1
        assert fno_customer(e2e, gone["accountnumber"])["OnHoldStatus"] == "All"
        assert all(fno_customer(e2e, r["accountnumber"])["OrganizationName"] == "Kept Ltd" for r in edited)


def test_a_nudge_queued_by_the_previous_release_is_applied(live: Live):
    """The stored form: a message as main wrote it before nudges were read together."""
    import hashlib
    import hmac
    import json

    from p2c_core import nudge

    e2e = live.e2e
    e2e.sync("accounts")
    row = customers(e2e, 1)[0]
    with e2e.dataverse() as dv:  # changed, its event lost: only the queued nudge knows
        dv.patch(f"accounts({row['accountid']})", json={"name": "Queued Before Ltd"}).raise_for_status()
    stored = {"flow": "accounts", "id": row["accountid"], "kind": "nudge", "line": False, "op": "Update",
              "received": time.time(), "table": "accounts", "v": 1, "version": 1}  # fmt: skip
    text = json.dumps(stored, sort_keys=True, separators=(",", ":")).encode()
    stored["sig"] = hmac.new(e2e.runtime.signing_key, b"p2c-nudge-v1\n" + text, hashlib.sha256).hexdigest()
    e2e.runtime.storage.queue(nudge.QUEUE).send_message(json.dumps(stored, sort_keys=True).encode())
    assert live.drain_nudges() == 0
    assert fno_customer(e2e, row["accountnumber"])["OrganizationName"] == "Queued Before Ltd"


def test_fno_data_events_for_many_products_are_read_with_one_key_filter(live: Live):
    e2e = live.e2e
    e2e.sync("products")
    synced = {r["productnumber"] for r in e2e.sandbox.dataverse.rows("products")}
    products = [r["ProductNumber"] for r in e2e.sandbox.fno.rows("CDSReleasedDistinctProducts")
                if r["dataAreaId"] == "usmf" and r["ProductNumber"] in synced][:10]  # fmt: skip
    assert len(products) == 10
    with httpx.Client(base_url=e2e.sandbox.fno_url) as fno:
        activation = {"entity": "CDSReleasedDistinctProducts", "events": ["Updated"], "endpoint": live.fno_url}
        fno.post("/_sandbox/data-events", json=activation | {"company": "usmf"}).raise_for_status()
        for number in products:
            address = f"/data/CDSReleasedDistinctProducts(dataAreaId='usmf',ProductNumber='{number}')"
            fno.patch(address, json={"ProductName": f"Pushed {number}"}).raise_for_status()
    assert settled(lambda: live.queued() == 10)
    e2e.sandbox.fno_service.accounting.reset()
    live.drain_nudges()
    reads = [r for r in e2e.sandbox.fno_service.accounting.snapshot()["requests"]
             if r["method"] == "GET" and r["entity_set"] == "CDSReleasedDistinctProducts"]  # fmt: skip
    assert sum(r["count"] for r in reads) == 1
    names = {r["productnumber"]: r["name"] for r in e2e.sandbox.dataverse.rows("products")}
    assert all(names[number] == f"Pushed {number}" for number in products)
