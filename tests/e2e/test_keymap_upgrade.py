"""An installation upgraded from key map entries in one partition per flow (before issue 20).

The entries are rewritten in that old form, with the entity shape the previous main wrote
(`OLD_ENTRY`, copied here, not imported), then the new code runs on them: no duplicate, no
record written again, no failure lost, and the entries end in their bucket partitions.
"""

from __future__ import annotations

from typing import Any

import pytest

from p2c_core.ops import reset_cursor
from p2c_core.state import KEYMAP
from p2c_core.state import legacy as legacy_module
from p2c_core.state.buckets import partition_range
from p2c_core.state.tables import table

from .conftest import E2E
from .test_accounts import expected_customers, fno_customers

# The properties of a key map entry as p2c_core/state/keymap.py wrote them on main before
# buckets (d2455da), with their Edm types where not a plain string: PartitionKey = the flow.
OLD_ENTRY = {
    "target_key": "Edm.String",
    "version": "Edm.Int64",
    "hash": "Edm.String",
    "master": "Edm.String",
    "lease_version": "Edm.Int64",
    "lease_until": "Edm.String",
    "source_id": "Edm.String",
    "failed": "Edm.Boolean",
}


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def to_old_form(e2e: E2E, flow: str) -> int:
    """Move every entry of `flow` from its bucket partition to partition = flow, as the old
    main wrote it; returns how many."""
    from azure.data.tables import EdmType, EntityProperty

    client = table(e2e.storage, KEYMAP)
    first, last = partition_range(flow)
    rows = list(client.query_entities("PartitionKey ge @a and PartitionKey le @b", parameters={"a": first, "b": last}))
    for e in rows:
        old: dict[str, Any] = {"PartitionKey": flow, "RowKey": e["RowKey"]}
        for name, edm in OLD_ENTRY.items():
            value = _plain(e.get(name))
            if value is not None:
                old[name] = EntityProperty(value, EdmType.INT64) if edm == "Edm.Int64" else value
        client.create_entity(old)
        client.delete_entity(e["PartitionKey"], e["RowKey"])
    return len(rows)


def old_partition(e2e: E2E, flow: str) -> list[str]:
    client = table(e2e.storage, KEYMAP)
    return [e["RowKey"] for e in client.query_entities("PartitionKey eq @p", parameters={"p": flow})]


def add_failing_account(e2e: E2E, number: str) -> None:
    with e2e.dataverse() as dv:
        dv.post("accounts", json={"accountnumber": number, "name": "Far Away", "customertypecode": 3,
                                  "address1_country": "Narnia"}).raise_for_status()  # fmt: skip


def test_entries_in_the_old_partition_are_found_moved_on_write_and_nothing_is_written_twice(e2e: E2E, monkeypatch):
    add_failing_account(e2e, "NARNIA-7")
    natives = set(fno_customers(e2e))
    first = e2e.sync("accounts")
    written = first.flows["accounts"].written
    assert written > 20
    moved = to_old_form(e2e, "accounts")
    assert moved >= written + 1  # every written customer, and the failed one's mark
    monkeypatch.setattr(legacy_module, "MIGRATE_PER_TICK", 0)  # the apply path alone: no sweep
    e2e.restart_runtime()
    reset_cursor(e2e.runtime, "accounts")  # every account read again
    key = next(k for k in expected_customers(e2e)[0] if k != "NARNIA-7")
    with e2e.dataverse() as dv:
        dv.patch(f"accounts(accountnumber='{key}')", json={"telephone1": "555-0142"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
    again = e2e.sync("accounts")
    assert again.flows["accounts"].written == 1  # the changed one; the rest found unchanged
    got = fno_customers(e2e)
    assert len(got) == len(natives) + written  # no customer created twice
    assert got[key]["PrimaryContactPhone"] == "555-0142"
    failure = {f.source_key: f for f in e2e.runtime.state.failures("accounts")}
    assert "NARNIA-7" in failure  # still recorded
    entry = e2e.runtime.state.get_entry("accounts", key)
    assert entry is not None and not entry.legacy and entry.target_key == key
    assert key not in old_partition(e2e, "accounts")  # moved by its write


def test_a_failed_record_in_the_old_form_is_cleared_by_its_fix(e2e: E2E, monkeypatch):
    add_failing_account(e2e, "NARNIA-8")
    e2e.sync("accounts")
    assert "NARNIA-8" in {f.source_key for f in e2e.runtime.state.failures("accounts")}
    to_old_form(e2e, "accounts")
    monkeypatch.setattr(legacy_module, "MIGRATE_PER_TICK", 0)
    monkeypatch.setenv("P2C_VALUE_MAPS__COUNTRY", '{"Narnia": "NA"}')
    e2e.restart_runtime()
    old = e2e.runtime.state.get_entry("accounts", "NARNIA-8")
    assert old is not None and old.legacy and old.failed
    with e2e.dataverse() as dv:  # the fix reaches p2c as a change of the record
        dv.patch("accounts(accountnumber='NARNIA-8')", json={"telephone1": "555-0188"},
                 headers={"If-Match": "*"}).raise_for_status()  # fmt: skip
    summary = e2e.sync("accounts")
    assert summary.flows["accounts"].written == 1
    assert "NARNIA-8" not in {f.source_key for f in e2e.runtime.state.failures("accounts")}
    assert fno_customers(e2e)["NARNIA-8"]["DeliveryAddressCountryRegionISOCode"] == "NA"


@pytest.mark.parametrize("per_tick", [5, 1000])
def test_polls_move_the_old_partition_to_the_buckets_then_stop_looking(e2e: E2E, monkeypatch, per_tick):
    e2e.sync("accounts")
    before = {e.source_key: (e.version, e.hash, e.target_key) for e in e2e.runtime.state.entries("accounts")}
    to_old_form(e2e, "accounts")
    monkeypatch.setattr(legacy_module, "MIGRATE_PER_TICK", per_tick)
    e2e.restart_runtime()
    for _ in range(len(before) // per_tick + 2):
        e2e.sync("accounts")
    assert old_partition(e2e, "accounts") == []
    after = {e.source_key: (e.version, e.hash, e.target_key) for e in e2e.runtime.state.entries("accounts")}
    assert after == before
    assert not e2e.runtime.state.keymap.legacy.possible("accounts")
