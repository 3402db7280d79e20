"""References asked at once and by several instances: one look-up in Sales per reference."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from p2c_core.errors import NotFoundError
from p2c_core.flows import get_flow
from p2c_core.references import References
from p2c_core.shared_refs import MISSING, RefTable, SharedRefs, row_key
from p2c_core.targets import DataverseWriter, WriteItem
from tests.core.sandboxed import Services, services


@pytest.fixture
def sx() -> Iterator[Services]:
    with services() as s:
        yield s


def references(sx: Services, shared: SharedRefs | None = None) -> References:
    return References(
        dataverse=sx.dataverse, fno=sx.fno, entry=lambda f, k: None, flow=get_flow, price_lists=lambda: None,
        shared=shared,
    )  # fmt: skip


def _at_once(callers: int, ask) -> list:
    start = threading.Barrier(callers)
    out: list = [None] * callers

    def caller(i: int) -> None:
        start.wait(timeout=30)
        out[i] = ask()

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return out


def test_sixteen_handlers_missing_one_reference_at_once_ask_sales_once(sx: Services):
    refs = references(sx)
    unit = sx.row("uoms", name="Primary Unit")["uomid"]
    sx.reset_counts()
    assert _at_once(16, lambda: refs.row_id("uoms", "name", "Primary Unit")) == [unit] * 16
    first = sx.row("pricelevels", name="CRM Service USA (sample)")["pricelevelid"]  # by name
    assert _at_once(16, lambda: refs.price_list("USD")) == [first] * 16
    # One unit; the currency, then the price lists in it.
    assert sx.requests() == [("GET", "pricelevels"), ("GET", "transactioncurrencies"), ("GET", "uoms")]


def test_a_reference_one_instance_found_is_not_asked_again_by_another(sx: Services, table: RefTable):
    one, two = (references(sx, SharedRefs(lambda: table, sx.sandbox.dataverse_url)) for _ in range(2))
    sx.reset_counts()
    assert one.row_id("uoms", "name", "Primary Unit") == two.row_id("uoms", "name", "Primary Unit")
    assert one.price_list("USD") == two.price_list("USD")
    assert sx.requests() == [("GET", "pricelevels"), ("GET", "transactioncurrencies"), ("GET", "uoms")]


def test_rows_a_flow_writes_are_not_shared_between_instances(sx: Services, table: RefTable):
    # An account or a product is a record of a flow, not reference data: each instance asks.
    one, two = (references(sx, SharedRefs(lambda: table, sx.sandbox.dataverse_url)) for _ in range(2))
    number = sx.sandbox.dataverse.rows("accounts")[0]["accountnumber"]
    sx.reset_counts()
    assert one.row_id("accounts", "accountnumber", number) == two.row_id("accounts", "accountnumber", number)
    assert sx.requests() == [("GET", "accounts"), ("GET", "accounts")]
    assert not one.is_reference_data("products") and one.is_reference_data("uomschedules")


def test_a_write_binding_a_row_deleted_in_sales_drops_the_remembered_id(sx: Services, table: RefTable):
    shared = SharedRefs(lambda: table, sx.sandbox.dataverse_url)
    refs, other = references(sx, shared), references(sx, shared)
    schedule = sx.row("uomschedules", name="Default Unit")["uomscheduleid"]
    crate = {"name": "Crate", "quantity": 1.0, "uomscheduleid@odata.bind": f"/uomschedules({schedule})"}
    sx.dataverse.odata.request("POST", "uoms", json_body=crate)
    guid = refs.row_id("uoms", "name", "Crate")
    assert guid is not None and other.row_id("uoms", "name", "Crate") == guid
    sx.dataverse.delete("uoms", guid)
    writer = DataverseWriter(sx.dataverse, get_flow("products"), gone=refs.forget_id)

    def item(number: str) -> WriteItem:
        payload = {"productnumber": number, "name": number, "defaultuomid@odata.bind": f"/uoms({guid})"}
        return WriteItem(key=number, payload=payload, create_only={}, known=False)

    (answer,) = writer.write_many([item("P2C-GONE-1")])
    assert isinstance(answer, NotFoundError) and guid in str(answer).lower()
    sx.reset_counts()
    # Forgotten here and in the shared table: the next look-up asks Sales (gone: the record waits).
    assert refs.row_id("uoms", "name", "Crate") is None
    assert sx.requests() == [("GET", "uoms")]
    assert table.get_entity(shared.partition, row_key(("dataverse", "uoms", "name", "Crate")))["state"] == MISSING
    # Another instance still has it in memory (up to the TTL) until a write of its own fails on it.
    assert other.row_id("uoms", "name", "Crate") == guid
    with pytest.raises(NotFoundError):
        DataverseWriter(sx.dataverse, get_flow("products"), gone=other.forget_id).write(item("P2C-GONE-2"))
    assert other.row_id("uoms", "name", "Crate") is None
