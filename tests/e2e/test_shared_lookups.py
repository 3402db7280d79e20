"""Look-ups shared by instances, and products that exist already updated in one more batch."""

from __future__ import annotations

import threading

from p2c_core.flows import get_flow
from p2c_core.rules import Reference, ReferenceRule
from p2c_core.runtime import Runtime
from p2c_core.state.storage import connect
from tests.e2e.conftest import E2E


def _requests(e2e: E2E) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for r in e2e.sandbox.dataverse_service.accounting.snapshot()["requests"]:
        counts[(r["method"], r["entity_set"])] = counts.get((r["method"], r["entity_set"]), 0) + r["count"]
    return counts


def test_two_runtimes_resolving_a_products_references_at_once_ask_sales_once_for_each(e2e: E2E):
    storage = connect({"AzureWebJobsStorage": e2e.env["AzureWebJobsStorage"]})
    other = Runtime(settings=e2e.runtime.settings, storage=storage)  # a second instance: its own clients
    products = get_flow("products")
    rules = {**products.fields, **products.on_create}
    values = {"defaultuomid": "Primary Unit", "transactioncurrencyid": "USD", "pricelevelid": "USD",
              "defaultuomscheduleid": "Default Unit"}  # fmt: skip
    payload = {}
    for name, value in values.items():
        rule = rules[name]
        assert isinstance(rule, ReferenceRule)
        payload[name] = Reference(rule, value)
    e2e.sandbox.dataverse_service.accounting.reset()
    start = threading.Barrier(16)
    resolved: list[dict] = []

    def handler(runtime: Runtime) -> None:  # eight message handlers in each of two instances
        start.wait(timeout=30)
        resolved.append(runtime.references.resolve(products, payload))

    threads = [threading.Thread(target=handler, args=(rt,)) for rt in (e2e.runtime, other) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        other.close()
    assert len(resolved) == 16 and all(r == resolved[0] for r in resolved)
    unit = next(r for r in e2e.sandbox.dataverse.rows("uoms") if r["name"] == "Primary Unit")["uomid"]
    assert resolved[0]["defaultuomid@odata.bind"] == f"/uoms({unit})"
    asked = _requests(e2e)
    assert asked == {("GET", "uoms"): 1, ("GET", "transactioncurrencies"): 1, ("GET", "uomschedules"): 1,
                     ("GET", "pricelevels"): 1}  # fmt: skip


def test_products_already_in_sales_are_updated_in_one_more_batch_without_create_only_fields(e2e: E2E):
    existing = [r for r in e2e.sandbox.dataverse.rows("products")]
    assert len(existing) >= 10
    renamed = existing[0]
    with e2e.dataverse() as sales:  # changed in Sales by hand: p2c will put F&O's name back, and only that
        changed = {"name": "Renamed in Sales", "msdynce_ismaintainedexternally": False}
        sales.patch(f"products({renamed['productid']})", json=changed).raise_for_status()
    e2e.sandbox.dataverse_service.accounting.reset()
    summary = e2e.sync("products").flows["products"]
    asked = _requests(e2e)
    # The seed's two products that cannot be mapped (a unit and a currency Sales lacks) fail alone.
    assert {f.error_class for f in e2e.runtime.state.failures("products")} == {"MappingError"}
    assert summary.written == summary.read - summary.failed > len(existing)
    # One batch of creates (the existing ones answer 412), one batch of updates; nothing alone.
    assert asked[("POST", "$batch")] == 2 and ("GET", "products") not in asked and ("PATCH", "products") not in asked
    after = {r["productid"]: r for r in e2e.sandbox.dataverse.rows("products")}
    again = after[renamed["productid"]]
    fno_names = {r["ProductNumber"]: r["ProductName"] for r in e2e.sandbox.fno.rows("CDSReleasedDistinctProducts")}
    assert again["name"] == fno_names[renamed["productnumber"]]
    assert again["msdynce_ismaintainedexternally"] is False  # create-only: not forced on an existing product
    assert all(not after[r["productid"]].get("_defaultuomscheduleid_value") for r in existing)
    new = [r for r in after.values() if r["productid"] not in {e["productid"] for e in existing}]
    assert new and all(r["_defaultuomscheduleid_value"] and r["msdynce_ismaintainedexternally"] for r in new)
