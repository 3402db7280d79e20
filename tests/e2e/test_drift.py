"""`plan` and `reconcile` call equal what the writer calls equal: no drift the writer would not fix."""

from __future__ import annotations

from p2c_core import ops
from tests.e2e.conftest import E2E


def test_no_drift_for_a_float_a_hair_off_or_a_lookup_id_in_another_case(e2e: E2E):
    e2e.sync("accounts", "products")
    fno, dataverse = e2e.sandbox.fno_store, e2e.sandbox.dataverse_store
    pk, customer = next((pk, r) for pk, r in fno.scan("CustomersV3") if r.get("CreditLimit"))
    customer["CreditLimit"] = float(customer["CreditLimit"]) + 1e-10  # as a float round trip may leave it
    fno.put("CustomersV3", pk, customer)
    pk, product = next((pk, r) for pk, r in dataverse.scan("products") if r.get("_transactioncurrencyid_value"))
    product["_transactioncurrencyid_value"] = product["_transactioncurrencyid_value"].upper()
    dataverse.put("products", pk, product, product.get("versionnumber", 0))
    for flow, key in (("accounts", customer["CustomerAccount"]), ("products", product["productnumber"])):
        drift = ops.reconcile(e2e.runtime, flow)
        assert drift.differing == {}, flow
        assert drift.missing == [], flow
        ops.reset_cursor(e2e.runtime, flow)  # the next poll reads everything again: plan it
        planned = {change.key: change for change in ops.plan(e2e.runtime, flow)}
        assert planned[key].action == "unchanged", (flow, planned[key])
    # And the difference the writer would fix is still reported.
    customer["CreditLimit"] = float(customer["CreditLimit"]) + 1
    fno.put(
        "CustomersV3",
        next(p for p, r in fno.scan("CustomersV3") if r["CustomerAccount"] == customer["CustomerAccount"]),
        customer,
    )
    assert set(ops.reconcile(e2e.runtime, "accounts").differing) == {customer["CustomerAccount"]}
