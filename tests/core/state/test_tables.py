"""Table plumbing: row keys, Int64 values, creation on first use per Storage instance."""

from __future__ import annotations

import pytest

from p2c_core.state import TABLES, row_key, source_key
from p2c_core.state.storage import connect
from p2c_core.state.tables import CURSORS, RUNS, chunks, delete_rows, int64, read_int, table


@pytest.mark.parametrize("key", ["O'Brien", "A/B#1?", "100% \\ back", "東京商事", "tab\tkey", "a%2Fb", "~seen"])
def test_row_keys_round_trip_any_source_key(key):
    row = row_key(key)
    assert source_key(row) == key
    # the characters a RowKey may not hold (/ \ # ?), control characters and non-ASCII
    assert not set(row) & set("/\\#?\t") and row.isascii()


def test_row_key_leaves_plain_keys_as_they_are():
    assert row_key("ACC-00042") == "ACC-00042" and row_key("O'Brien & Co") == "O'Brien & Co"


def test_int64_says_so_and_read_int_takes_either_form():
    from azure.data.tables import EdmType

    big = int64(1_795_573_669_204)
    assert big.edm_type is EdmType.INT64 and big.value == 1_795_573_669_204
    assert read_int(big) == 1_795_573_669_204 and read_int(7) == 7


def test_chunks_are_transaction_sized():
    assert [len(c) for c in chunks(list(range(230)))] == [100, 100, 30]
    assert list(chunks([])) == []


def test_a_table_is_created_on_first_use_once_per_storage_instance(storage, azurite):
    storage.tables.delete_table(CURSORS)
    assert CURSORS not in storage.created_tables
    table(storage, CURSORS).create_entity({"PartitionKey": "p", "RowKey": "r"})
    assert CURSORS in storage.created_tables
    # Another instance on the same account knows nothing of this one's tables: after the
    # table is gone, it creates it again rather than trusting a cache it does not own.
    storage.tables.delete_table(CURSORS)
    other = connect({"AzureWebJobsStorage": azurite.connection_string})
    assert other.created_tables == set()
    table(other, CURSORS).create_entity({"PartitionKey": "p", "RowKey": "r"})
    assert [e["RowKey"] for e in table(other, CURSORS).list_entities()] == ["r"]


def test_the_first_use_of_any_table_creates_the_state_tables_together(azurite):
    fresh = connect({"AzureWebJobsStorage": azurite.connection_string})
    fresh.tables.delete_table(RUNS)  # gone: the first use of another table creates it too
    table(fresh, "p2cscratchfirstuse").create_entity({"PartitionKey": "p", "RowKey": "r"})
    assert fresh.created_tables == {"p2cscratchfirstuse", *TABLES}
    existing = {t.name for t in fresh.tables.list_tables()}
    assert {"p2cscratchfirstuse", *TABLES} <= existing
    table(fresh, RUNS).create_entity({"PartitionKey": "p", "RowKey": "r"})  # no create needed: it exists
    fresh.tables.delete_table("p2cscratchfirstuse")


def test_delete_rows_deletes_in_transactions_of_100(storage):
    client = table(storage, CURSORS)
    rows = [f"r{n:03d}" for n in range(150)]
    for part in chunks(rows):
        client.submit_transaction([("create", {"PartitionKey": "p", "RowKey": r}) for r in part])  # type: ignore[arg-type]
    client.create_entity({"PartitionKey": "q", "RowKey": "r000"})
    delete_rows(client, "p", rows)
    assert [(e["PartitionKey"], e["RowKey"]) for e in client.list_entities()] == [("q", "r000")]


def test_the_state_tables_are_the_four_of_the_design():
    assert TABLES == ("p2ccursors", "p2ckeymap", "p2cruns", "p2cfailures")
