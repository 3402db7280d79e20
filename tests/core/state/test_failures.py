"""Failure entries on Azurite: first seen kept, purged past retention, records kept whole."""

import json
from datetime import UTC, datetime, timedelta

import pytest

from p2c_core.state import Failure, row_key
from p2c_core.state.failures import MAX_PARTS, PART_UNITS, FailureStore, read_record, split_record
from p2c_core.state.tables import FAILURES, table


def failure(key: str = "A/1", record: str | None = None, **fields) -> Failure:
    values = {"attempt": 1, "error_class": "MappingError", "message": "m1"} | fields
    return Failure(flow="accounts", source_key=key, record=record, **values)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_failures_keep_first_seen_and_clear(storage):
    failures = FailureStore(storage)
    failures.record(failure())
    [first] = failures.query("accounts")
    failures.record(failure(attempt=2, message="m2", status=400, request_id="r"))
    [again] = failures.query("accounts")
    assert again.first_seen == first.first_seen and again.last_seen >= first.last_seen
    assert (again.attempt, again.message, again.status, again.request_id) == (2, "m2", 400, "r")
    failures.clear("accounts", "A/1")
    assert failures.query("accounts") == []


def test_failures_of_one_flow_or_of_all(storage):
    failures = FailureStore(storage)
    failures.record(failure("A-1"))
    failures.record(Failure(flow="orders", source_key="SO-1", attempt=1, error_class="ODataError", message="x"))
    assert [f.source_key for f in failures.query("orders")] == ["SO-1"]
    assert sorted(f.source_key for f in failures.query()) == ["A-1", "SO-1"]


def test_failures_past_retention_are_purged_and_recent_ones_kept(storage):
    failures = FailureStore(storage)
    for key in ("old-1", "old-2", "recent"):
        failures.record(failure(key))
    client = table(storage, FAILURES)
    for key in ("old-1", "old-2"):
        entity = client.get_entity("accounts", row_key(key))
        entity["last_seen"] = (datetime.now(UTC) - timedelta(days=91)).isoformat()
        client.upsert_entity(entity)
    assert failures.purge("accounts", datetime.now(UTC) - timedelta(days=90)) == 2
    assert [f.source_key for f in failures.query("accounts")] == ["recent"]


def test_a_long_message_is_cut(storage):
    failures = FailureStore(storage)
    failures.record(failure(message="x" * 10_000))
    [got] = failures.query("accounts")
    assert len(got.message) == 4000


def test_a_40000_character_record_is_kept_whole(storage):
    failures = FailureStore(storage)
    record = json.dumps({"key": "A/1", "version": 7, "data": {"description": "é" * 40_000}}, ensure_ascii=False)
    failures.record(failure(record=record))
    [got] = failures.query("accounts")
    assert got.record == record
    stored = table(storage, FAILURES).get_entity("accounts", row_key("A/1"))
    assert "record" not in stored and stored["record_parts"] == 2  # split, not one over-long property


def test_a_record_that_fits_one_property_is_stored_as_before(storage):
    failures = FailureStore(storage)
    record = json.dumps({"key": "A/1", "version": 7, "data": {"name": "x" * 20_000}})
    failures.record(failure(record=record))
    stored = table(storage, FAILURES).get_entity("accounts", row_key("A/1"))
    assert stored["record"] == record and "record_parts" not in stored


def test_a_shorter_record_leaves_no_part_of_a_longer_one_behind(storage):
    failures = FailureStore(storage)
    failures.record(failure(record="y" * 100_000))
    failures.record(failure(record='{"short": true}'))
    [got] = failures.query("accounts")
    assert got.record == '{"short": true}'
    stored = table(storage, FAILURES).get_entity("accounts", row_key("A/1"))
    assert not [name for name in stored if name.startswith("record_")]


def test_a_record_beyond_what_an_entity_holds_is_dropped_and_the_message_says_so(storage):
    failures = FailureStore(storage)
    failures.record(failure(record="z" * (PART_UNITS * MAX_PARTS + 1), message="boom"))
    [got] = failures.query("accounts")
    assert got.record is None and got.message.startswith("boom (the record,") and "too large" in got.message


def test_the_largest_record_kept_is_within_the_entity_limit(storage):
    failures = FailureStore(storage)
    record = "r" * (PART_UNITS * MAX_PARTS)  # 16 full parts
    failures.record(failure(record=record, message="w" * 4000))  # the table refuses an entity over 1 MiB
    [got] = failures.query("accounts")
    assert got.record == record


def test_a_record_the_table_refuses_leaves_the_entry_without_it(storage):
    # Azurite counts an entity by its request JSON, where the client escapes "€" to six
    # bytes: 16 parts of it are refused there (Azure counts two bytes a character).
    failures = FailureStore(storage)
    failures.record(failure(record="\u20ac" * (PART_UNITS * MAX_PARTS), message="boom"))
    [got] = failures.query("accounts")
    assert got.record is None and got.message.startswith("boom (the record, 480000 characters, is too large")


def test_an_entry_with_a_single_record_property_still_reads(storage):
    """Entries written before records were split hold the record in one `record` property."""
    client = table(storage, FAILURES)
    client.create_entity({"PartitionKey": "accounts", "RowKey": "A-9", "source_key": "A-9", "attempt": 2,
                          "error_class": "ODataError", "message": "m", "record": '{"key": "A-9"}'})  # fmt: skip
    [got] = FailureStore(storage).query("accounts")
    assert got.record == '{"key": "A-9"}' and got.attempt == 2


@pytest.mark.parametrize("text", ["", "abc", "a" * 30_000, "a" * 30_001, "😀" * 20_000, "a😀" * 25_000])
def test_split_record_cuts_within_the_units_and_never_in_a_surrogate_pair(text):
    parts = split_record(text)
    assert "".join(parts) == text
    assert all(utf16_units(p) <= PART_UNITS for p in parts)
    assert len(parts) == max(1, -(-utf16_units(text) // PART_UNITS))  # as few as the units need


def test_read_record_of_an_entity_without_one_is_none():
    assert read_record({"message": "m"}) is None
    assert read_record({"record_parts": 2, "record_0": "ab", "record_1": "cd"}) == "abcd"
