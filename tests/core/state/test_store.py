"""The facade on state written before the split by store (frozen in v1_entities.json).

The entities were written by p2c_core/state/store.py at 1fe0a14 and read back from
Azurite, property by property with its Edm type. The stores read them as they are, and
write the same tables, keys, property names and types for the same calls.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from p2c_core.state import KEYMAP, TABLES, Failure, Run, StateStore, source_key
from p2c_core.state.buckets import partition
from p2c_core.state.storage import Storage
from p2c_core.state.tables import table

FROZEN = json.loads((Path(__file__).parent / "v1_entities.json").read_text(encoding="utf-8"))
# Written from the clock: compared by presence, not value.
STAMPS = {"updated_at", "lease_until", "first_seen", "last_seen"}


def typed(prop: dict[str, Any]) -> Any:
    from azure.data.tables import EdmType, EntityProperty

    return EntityProperty(prop["value"], EdmType(prop["type"]))


def restore(storage: Storage) -> None:
    """The frozen entities, written to the tables exactly as they were read."""
    for name in TABLES:
        client = table(storage, name)
        for row in FROZEN[name]:
            client.create_entity({k: typed(v) for k, v in row.items()})


def dump(storage: Storage) -> dict[str, list[dict[str, Any]]]:
    """Every entity of the state tables, as the frozen file holds them, stamps blanked."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in TABLES:
        rows = []
        for e in table(storage, name).list_entities():
            row = {}
            for k, v in e.items():
                edm = getattr(v, "edm_type", None)
                kind = (edm.value if edm is not None else
                        {bool: "Edm.Boolean", int: "Edm.Int32", str: "Edm.String"}[type(v)])  # fmt: skip
                row[k] = {"type": kind, "value": "<stamp>" if k in STAMPS else getattr(v, "value", v)}
            rows.append(dict(sorted(row.items())))
        out[name] = sorted(rows, key=lambda r: (r["PartitionKey"]["value"], r["RowKey"]["value"]))
    return out


def write_as_frozen(state: StateStore) -> None:
    """The calls that wrote v1_entities.json (same flows, keys and values)."""
    cursor = state.get_cursor("accounts")
    cursor.link = "https://org.example/api/data/v9.2/accounts?$deltatoken=919042%2108%2f22%2f2026"
    cursor.watermark, cursor.scan_started = "2026-11-30T08:00:00+00:00", "2026-11-30T07:59:00+00:00"
    state.put_cursor(cursor)
    state.put_cursor(state.get_cursor("products"))
    state.set_paused("accounts", True)
    state.set_paused("products", False)
    lease, version = timedelta(seconds=30), 1_795_573_669_204
    state.commit(state.claim(None, "accounts", "A/1#?", version, lease), version=version, hash="sha-a1",
                 target_key="US-001", master="dataverse")  # fmt: skip
    state.claim(None, "accounts", "東京商事", 7, lease)
    state.commit(state.claim(None, "accounts", "O'Brien", 3, lease), version=3, hash="sha-ob", target_key=None,
                 master=None)  # fmt: skip
    record = json.dumps({"key": "A/1#?", "version": version, "data": {"name": "Contoso"}})
    state.record_failure(Failure(flow="accounts", source_key="A/1#?", attempt=3, error_class="ODataError",
                                 message="bad request", status=400, request_id="req-1", record=record))  # fmt: skip
    state.record_failure(Failure(flow="accounts", source_key="never applied", attempt=1,
                                 error_class="MappingError", message="no value"))  # fmt: skip
    state.mark_seen("products", {"D0001": "dig-1", "A/B": "dig-2"})
    state.record_run(Run(flow="accounts", kind="poll", run_id="run-1", started="2026-11-30T08:00:00+00:00",
                         ended="2026-11-30T08:00:05+00:00", counts={"read": 3, "enqueued": 2}))  # fmt: skip
    state.record_run(Run(flow="accounts", kind="apply", run_id="run-2", started="2026-11-30T08:01:00+00:00",
                         ended="2026-11-30T08:01:01+00:00", status="error", error="boom"))  # fmt: skip


def frozen_blanked() -> dict[str, list[dict[str, Any]]]:
    return {
        name: [{k: {**v, "value": "<stamp>"} if k in STAMPS else v for k, v in row.items()} for row in FROZEN[name]]
        for name in TABLES
    }


def bucketed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Key map entries as written since buckets (issue 20): in `<flow>~<bucket>`, else the same."""
    out = []
    for row in rows:
        flow, key = row["PartitionKey"]["value"], source_key(row["RowKey"]["value"])
        if "~" not in flow:  # an entry, not a side partition (`~seen`, `~id`)
            row = {**row, "PartitionKey": {"type": "Edm.String", "value": partition(flow, key)}}
        out.append(row)
    return sorted(out, key=lambda r: (r["PartitionKey"]["value"], r["RowKey"]["value"]))


def test_the_stores_write_what_the_store_before_the_split_wrote(storage):
    write_as_frozen(StateStore(storage))
    expected = frozen_blanked()
    expected[KEYMAP] = bucketed(expected[KEYMAP])
    assert dump(storage) == expected


def test_cursors_and_pause_written_before_the_split_read_back(storage):
    restore(storage)
    state = StateStore(storage)
    cursor = state.get_cursor("accounts")
    assert cursor.link is not None and cursor.link.endswith("$deltatoken=919042%2108%2f22%2f2026")
    assert (cursor.watermark, cursor.scan_started) == ("2026-11-30T08:00:00+00:00", "2026-11-30T07:59:00+00:00")
    assert cursor.etag is not None and cursor.updated_at
    assert state.get_cursor("products").link is None and state.get_cursor("products").etag is not None
    assert state.is_paused("accounts") is True and state.is_paused("products") is False
    cursor.link = "https://org.example/api/data/v9.2/accounts?$deltatoken=2"
    state.put_cursor(cursor)  # over the old row's ETag
    assert state.get_cursor("accounts").link == cursor.link


def test_key_map_entries_written_before_the_split_read_back_and_take_a_lease(storage):
    restore(storage)
    state = StateStore(storage)
    applied = state.get_entry("accounts", "A/1#?")
    assert applied is not None
    assert (applied.version, applied.hash, applied.target_key, applied.master) == (
        1_795_573_669_204, "sha-a1", "US-001", "dataverse")  # fmt: skip
    assert applied.failed is True and applied.lease_until is None
    leased = state.get_entry("accounts", "東京商事")
    assert leased is not None and leased.version == -1 and leased.lease_version == 7 and leased.lease_until
    marked = state.get_entry("accounts", "never applied")
    assert marked is not None and marked.version == -1 and marked.failed is True
    assert {e.source_key for e in state.entries("accounts")} == {"A/1#?", "東京商事", "O'Brien", "never applied"}
    entry = state.get_entry("accounts", "O'Brien")
    assert entry is not None and entry.target_key is None
    state.commit(state.claim(entry, "accounts", "O'Brien", 4, timedelta(seconds=30)), version=4, hash="h4",
                 target_key="US-002", master="dataverse")  # fmt: skip
    after = state.get_entry("accounts", "O'Brien")
    assert after is not None and (after.version, after.target_key) == (4, "US-002")


def test_digests_failures_and_runs_written_before_the_split_read_back(storage):
    restore(storage)
    state = StateStore(storage)
    assert state.seen("products") == {"D0001": "dig-1", "A/B": "dig-2"}
    failures = {f.source_key: f for f in state.failures("accounts")}
    assert set(failures) == {"A/1#?", "never applied"}
    kept = failures["A/1#?"]
    assert (kept.attempt, kept.error_class, kept.status, kept.request_id) == (3, "ODataError", 400, "req-1")
    assert kept.record is not None and json.loads(kept.record)["data"] == {"name": "Contoso"}
    assert failures["never applied"].record is None and failures["never applied"].status is None
    runs = state.runs("accounts")
    assert [(r.run_id, r.status, r.counts) for r in runs] == [
        ("run-2", "error", {}), ("run-1", "ok", {"read": 3, "enqueued": 2})]  # fmt: skip
    assert runs[0].error == "boom"


@pytest.mark.parametrize("name", TABLES)
def test_the_frozen_file_holds_every_table(name):
    assert FROZEN[name], f"no frozen entity of {name}: the upgrade tests would read nothing"


def test_an_f_and_o_flow_read_per_company_keeps_the_default_company_on_the_rows_one_company_wrote(storage):
    # P2C_COMPANIES added to a deployment: the default company (P2C_FNO_COMPANY) reads its
    # scan's cursor and sent digests where one company wrote them; another company starts its own.
    from p2c_core.companies import Companies, CompanyEntry
    from p2c_core.company_reads import state_scope

    restore(storage)
    state = StateStore(storage)
    companies = Companies(
        default="usmf",
        entries={"usmf": CompanyEntry(business_unit="Contoso US"), "demf": CompanyEntry(business_unit="Contoso DE")},
    )
    usmf, demf = state_scope(companies, "usmf"), state_scope(companies, "demf")
    frozen = state.get_cursor("products", usmf)
    assert frozen.etag is not None and frozen.company is None
    assert state.seen("products", usmf) == {"D0001": "dig-1", "A/B": "dig-2"}
    own = state.get_cursor("products", demf)
    assert own.etag is None and own.company == "demf" and state.seen("products", demf) == {}
    own.link = "since:2026-11-30T00:00:00Z"
    state.put_cursor(own)
    state.mark_seen("products", {"D0001": "dig-de"}, demf)
    assert state.get_cursor("products", demf).link == "since:2026-11-30T00:00:00Z"
    assert state.get_cursor("products").link is None and state.get_cursor("products").etag == frozen.etag
    assert state.seen("products") == {"D0001": "dig-1", "A/B": "dig-2"}
    assert state.seen("products", demf) == {"D0001": "dig-de"}
    state.clear_seen("products", demf)
    assert state.seen("products", demf) == {} and len(state.seen("products")) == 2
