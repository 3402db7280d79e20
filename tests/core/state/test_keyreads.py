"""Many rows of one partition read in few queries, on Azurite: what point reads would find."""

from __future__ import annotations

import contextlib
from typing import Any

import pytest

from p2c_core.state.keyreads import ROWS_PER_QUERY, literal, read_rows, rows_filter
from p2c_core.state.storage import Storage
from p2c_core.state.tables import KEYMAP, table

# Row keys as they can be stored: quotes (one, two, at the ends), `|`, spaces, percent
# escapes, non-ASCII, and one written to break out of its quotes if it were not escaped.
AWKWARD = ["O'Brien", "''", "'", "demf|C 001", "  two  spaces ", "100%25 %7C", "東京商事", "x' or RowKey ne 'x"]


def counting(storage: Storage) -> tuple[Any, list[str]]:
    """A client of the key map table on its own pipeline, noting each request's method."""
    from azure.data.tables import TableClient

    seen: list[str] = []

    def hook(request: Any) -> None:
        seen.append(request.http_request.method)

    table(storage, KEYMAP)  # the table exists
    base = storage.table(KEYMAP)
    client = TableClient(
        endpoint=f"{base.scheme}://{base._primary_hostname}", table_name=KEYMAP,
        credential=base.credential, raw_request_hook=hook,
    )  # fmt: skip
    return client, seen


def write(storage: Storage, partition: str, rows: list[str]) -> None:
    client = table(storage, KEYMAP)
    for n, row in enumerate(rows):
        client.create_entity({"PartitionKey": partition, "RowKey": row, "n": n})


def point_reads(client: Any, partition: str, rows: list[str]) -> dict[str, Any]:
    from azure.core.exceptions import ResourceNotFoundError

    found = {}
    for row in rows:
        with contextlib.suppress(ResourceNotFoundError):
            found[row] = client.get_entity(partition, row)
    return found


def test_a_literal_doubles_each_single_quote():
    assert literal("O'Brien") == "'O''Brien'"
    assert literal("''") == "''''''"
    assert literal("a|b c") == "'a|b c'"


def test_a_filter_holds_at_most_fifteen_comparisons():
    rows = [f"r{n}" for n in range(ROWS_PER_QUERY)]
    text = rows_filter("p", rows)
    assert text.count(" eq ") == 15 and text.startswith("PartitionKey eq 'p' and (")
    with pytest.raises(ValueError):
        rows_filter("p", [*rows, "one more"])
    with pytest.raises(ValueError):
        rows_filter("p", [])


def test_awkward_row_keys_are_found_exactly_and_missing_ones_are_absent(storage):
    write(storage, "t~00", AWKWARD)
    write(storage, "t~01", ["O'Brien", "x"])  # another partition: never read for t~00
    write(storage, "t~00x", ["x"])  # a partition whose name starts like it
    client, _ = counting(storage)
    wanted = [*AWKWARD, "x", "missing", "O'Brie", "東京"]
    found = read_rows(client, "t~00", wanted)
    assert sorted(found) == sorted(AWKWARD)
    expected = point_reads(client, "t~00", wanted)
    assert {r: (dict(e), e.metadata["etag"]) for r, e in found.items()} == {
        r: (dict(e), e.metadata["etag"]) for r, e in expected.items()
    }


def test_fourteen_rows_a_query_and_one_row_a_point_read(storage):
    rows = [f"K-{n:03d}" for n in range(40)]
    write(storage, "t~02", rows[::2])  # half of them exist
    client, seen = counting(storage)
    found = read_rows(client, "t~02", [*rows, *rows[:5]])  # repeats are read once
    assert sorted(found) == rows[::2]
    assert seen == ["GET"] * 3  # 40 rows: 14 + 14 + 12
    seen.clear()
    assert list(read_rows(client, "t~02", ["K-000", "K-000"])) == ["K-000"] and seen == ["GET"]
    seen.clear()
    assert read_rows(client, "t~02", ["K-001"]) == {} and read_rows(client, "t~02", []) == {}
    assert seen == ["GET"]
