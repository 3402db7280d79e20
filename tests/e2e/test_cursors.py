"""Cursor safety: a crash between enqueue and cursor write, and late F&O documents."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from p2c_core import ops
from p2c_core.state import StateStore

from .conftest import E2E
from .test_flows import ALL, fno_client


@pytest.mark.parametrize("flow", ["accounts", "products"])  # a Dataverse delta read and an F&O scan
def test_a_crash_between_enqueue_and_cursor_write_re_enqueues_and_never_skips(e2e: E2E, flow, monkeypatch):
    real = StateStore.put_cursor
    crashes = []

    def crash_once(self, cursor):
        if not crashes:
            crashes.append(cursor.flow)
            raise RuntimeError("worker died after enqueueing, before the cursor write")
        return real(self, cursor)

    monkeypatch.setattr(StateStore, "put_cursor", crash_once)
    poll = next(f for f in e2e.host.timers() if f.name == f"{flow}_poll")
    assert e2e.host.fire(poll) is False  # the run failed; its messages are on the queue
    queued = e2e.host.depth(f"p2c-{flow}")
    assert queued >= 1 and e2e.runtime.state.get_cursor(flow).updated_at is None
    e2e.sync(flow)  # the next tick reads the same changes again and enqueues them again
    drift = ops.reconcile(e2e.runtime, flow)
    assert (drift.missing, drift.differing) == ([], {})
    assert drift.target_records >= drift.source_records - len(drift.unmappable)
    # Delivered twice, written once: a third sync finds nothing to do.
    assert e2e.sync(flow).flows[flow].written == 0


def test_late_posted_invoices_within_the_overlap_are_caught_and_older_ones_by_a_reset(e2e: E2E):
    e2e.sync(*ALL)
    cursor = e2e.runtime.state.get_cursor("invoices")
    assert cursor.link and cursor.link.startswith("since:")
    latest = datetime.fromisoformat(cursor.link.removeprefix("since:").replace("Z", "+00:00"))
    order = next(o for o in e2e.sandbox.dataverse.rows("salesorders") if o["msdynce_ismaintainedexternally"])
    header = next(
        h for h in e2e.sandbox.fno.rows("CDSSalesOrderHeaders") if h["SalesOrderNumber"] == order["ordernumber"]
    )

    def post(number: str, day: datetime) -> None:
        with fno_client(e2e) as fno:
            fno.post("ExternallyMaintainedCustomerSalesInvoiceHeaders", json={
                "dataAreaId": "usmf", "InvoiceNumber": number, "InvoiceDate": day.strftime("%Y-%m-%dT00:00:00Z"),
                "LedgerVoucher": f"V-{number}", "SalesOrderNumber": order["ordernumber"],
                "InvoiceCustomerAccountNumber": header["InvoiceCustomerAccountNumber"], "CurrencyCode": "USD",
                "TotalInvoiceAmount": 10.0,
            }).raise_for_status()  # fmt: skip

    # Posted now, dated two days before the newest invoice seen (a clock or posting lag).
    post("CIV-LATE-1", latest - timedelta(days=2))
    assert e2e.sync("invoices").flows["invoices"].written == 1
    # Ten days back is outside the 3-day overlap: not read until a reset reaches that far.
    post("CIV-LATE-2", latest - timedelta(days=10))
    assert e2e.sync("invoices").flows["invoices"].written == 0
    ops.reset_cursor(e2e.runtime, "invoices", to=latest - timedelta(days=8))
    again = e2e.sync("invoices").flows["invoices"]
    assert again.written == 1  # only the late one: the others are unchanged and stay unwritten
    numbers = {i["invoicenumber"] for i in e2e.sandbox.dataverse.rows("invoices")}
    assert {"CIV-LATE-1", "CIV-LATE-2"} <= numbers
