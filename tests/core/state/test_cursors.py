"""Cursors on Azurite: ETag-guarded writes, and the operator's pause beside them."""

import pytest

from p2c_core.errors import CursorConflict
from p2c_core.state import Cursor
from p2c_core.state.cursors import CursorStore


def test_cursor_etag_guards_against_a_racing_poller(storage):
    cursors = CursorStore(storage)
    first = cursors.get("accounts")
    assert first.etag is None and first.link is None
    first.link = "http://x/accounts?$deltatoken=1"
    cursors.put(first)
    mine, theirs = cursors.get("accounts"), cursors.get("accounts")
    theirs.link = "http://x/accounts?$deltatoken=2"
    cursors.put(theirs)
    mine.link = "http://x/accounts?$deltatoken=3"
    with pytest.raises(CursorConflict, match="moved by another poller"):
        cursors.put(mine)
    assert str(cursors.get("accounts").link).endswith("deltatoken=2")


def test_two_pollers_creating_the_first_cursor_one_wins(storage):
    cursors = CursorStore(storage)
    a, b = cursors.get("orders"), cursors.get("orders")
    cursors.put(a)
    with pytest.raises(CursorConflict):
        cursors.put(b)


def test_a_cursor_round_trips_and_put_stamps_it(storage):
    cursors = CursorStore(storage)
    put = cursors.put(Cursor(flow="quotes", link="l", watermark="w", scan_started="s"))
    assert put.etag is not None and put.updated_at
    got = cursors.get("quotes")
    assert (got.link, got.watermark, got.scan_started, got.updated_at, got.etag) == (
        "l", "w", "s", put.updated_at, put.etag)  # fmt: skip


def test_pause_is_kept_apart_from_cursor_writes(storage):
    cursors = CursorStore(storage)
    assert cursors.is_paused("accounts") is False
    cursor = cursors.get("accounts")
    cursors.set_paused("accounts", True)
    cursor.link = "http://x/accounts?$deltatoken=9"
    cursors.put(cursor)  # the pause row is not the cursor row: no conflict, no clobber
    assert cursors.is_paused("accounts") is True and cursors.is_paused("products") is False
    cursors.set_paused("accounts", False)
    assert cursors.is_paused("accounts") is False
    assert cursors.get("accounts").link == "http://x/accounts?$deltatoken=9"


def test_a_company_s_cursor_is_a_row_of_its_own_beside_the_flow_s(storage):
    cursors = CursorStore(storage)
    cursors.put(Cursor(flow="invoices", link="since:2026-11-01T00:00:00Z"))
    cursors.put(Cursor(flow="invoices", link="since:2026-11-20T00:00:00Z", company="demf"))
    cursors.set_paused("invoices", True)
    assert cursors.get("invoices").link == "since:2026-11-01T00:00:00Z"
    assert cursors.get("invoices", "demf").link == "since:2026-11-20T00:00:00Z"
    assert cursors.get("invoices", "demf").company == "demf" and cursors.get("invoices").company is None
    assert cursors.get("invoices", "gbsi").etag is None  # a company not read yet
    assert cursors.is_paused("invoices")  # the pause is the flow's, for every company
    rows = {e["RowKey"] for e in storage.table("p2ccursors").list_entities() if e["PartitionKey"] == "invoices"}
    assert rows == {"cursor", "cursor|demf", "paused"}
