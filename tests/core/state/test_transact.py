"""Table transactions written as text (state/transact.py) on Azurite: what the SDK's do."""

from __future__ import annotations

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import HttpResponseError
from azure.data.tables import EdmType, EntityProperty, UpdateMode

from p2c_core.state import row_key
from p2c_core.state.tables import KEYMAP, table
from p2c_core.state.transact import submit

KEYS = ["O'Brien", "A/B#1?", "100% \\ back", "東京商事", "tab\tkey", "plain"]


def test_creates_return_etags_and_store_each_property_with_its_type(storage):
    client = table(storage, KEYMAP)
    ops = [("create", {"PartitionKey": "p~00", "RowKey": row_key(k), "version": EntityProperty(2**40, EdmType.INT64),
                       "flag": True, "n": 7, "s": k, "none": None}) for k in KEYS]  # fmt: skip
    metas = submit(client, ops)
    assert len(metas) == len(KEYS) and all(m["etag"] for m in metas)
    for k, meta in zip(KEYS, metas, strict=True):
        e = client.get_entity("p~00", row_key(k))
        assert (e["s"], e["flag"], e["n"], e["version"].value) == (k, True, 7, 2**40)
        assert "none" not in e and e.metadata["etag"] == meta["etag"]


def test_a_conflict_undoes_the_whole_transaction(storage):
    client = table(storage, KEYMAP)
    submit(client, [("create", {"PartitionKey": "p~01", "RowKey": "b"})])
    with pytest.raises(HttpResponseError):
        submit(client, [("create", {"PartitionKey": "p~01", "RowKey": r}) for r in ("a", "b")])
    assert [e["RowKey"] for e in client.query_entities("PartitionKey eq 'p~01'")] == ["b"]


def test_updates_and_deletes_only_over_the_etag_read(storage):
    client = table(storage, KEYMAP)
    (meta,) = submit(client, [("create", {"PartitionKey": "p~02", "RowKey": row_key("O'Brien"), "s": "one"})])
    stale = meta["etag"]
    replace = {"mode": UpdateMode.REPLACE, "etag": stale, "match_condition": MatchConditions.IfNotModified}
    (after,) = submit(client, [("update", {"PartitionKey": "p~02", "RowKey": row_key("O'Brien"), "s": "two"}, replace)])
    assert after["etag"] != stale and client.get_entity("p~02", row_key("O'Brien"))["s"] == "two"
    with pytest.raises(HttpResponseError):  # the ETag moved on
        submit(client, [("update", {"PartitionKey": "p~02", "RowKey": row_key("O'Brien"), "s": "x"}, replace)])
    submit(client, [("upsert", {"PartitionKey": "p~02", "RowKey": "m", "a": 1}),
                    ("upsert", {"PartitionKey": "p~02", "RowKey": row_key("O'Brien"), "b": 2})])  # fmt: skip
    merged = client.get_entity("p~02", row_key("O'Brien"))
    assert (merged["s"], merged["b"]) == ("two", 2)
    gone = {"etag": merged.metadata["etag"], "match_condition": MatchConditions.IfNotModified}
    deleted = submit(client, [("delete", {"PartitionKey": "p~02", "RowKey": row_key("O'Brien")}, gone)])
    assert deleted == [{"etag": None}]
    assert [e["RowKey"] for e in client.query_entities("PartitionKey eq 'p~02'")] == ["m"]
