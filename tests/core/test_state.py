"""The state store on Azurite: cursors with ETags, key map leases, failures, runs."""

from datetime import UTC, datetime, timedelta

import pytest

from p2c_core.errors import CursorConflict, RecordBusy
from p2c_core.state import Failure, Run, StateStore, row_key, source_key


def version_of(state: StateStore, key: str) -> int:
    entry = state.get_entry("accounts", key)
    assert entry is not None
    return entry.version


def test_cursor_etag_guards_against_a_racing_poller(storage):
    state = StateStore(storage)
    first = state.get_cursor("accounts")
    assert first.etag is None and first.link is None
    first.link = "http://x/accounts?$deltatoken=1"
    state.put_cursor(first)
    mine, theirs = state.get_cursor("accounts"), state.get_cursor("accounts")
    theirs.link = "http://x/accounts?$deltatoken=2"
    state.put_cursor(theirs)
    mine.link = "http://x/accounts?$deltatoken=3"
    with pytest.raises(CursorConflict, match="moved by another poller"):
        state.put_cursor(mine)
    assert str(state.get_cursor("accounts").link).endswith("deltatoken=2")
    # two pollers creating the first cursor: one wins
    a, b = state.get_cursor("orders"), state.get_cursor("orders")
    state.put_cursor(a)
    with pytest.raises(CursorConflict):
        state.put_cursor(b)


@pytest.mark.parametrize("key", ["O'Brien", "A/B#1?", "100% \\ back", "東京商事", "tab\tkey"])
def test_row_keys_round_trip_any_source_key(storage, key):
    assert source_key(row_key(key)) == key
    state = StateStore(storage)
    claimed = state.claim(None, "accounts", key, 5, timedelta(seconds=30))
    state.commit(claimed, version=5, hash="h", target_key=key, master="dataverse")
    entry = state.get_entry("accounts", key)
    assert entry is not None and entry.source_key == key and entry.version == 5 and entry.target_key == key


def test_lease_serialises_two_workers_on_one_record(storage):
    state = StateStore(storage)
    claimed = state.claim(None, "accounts", "A-1", 1, timedelta(seconds=30))
    with pytest.raises(RecordBusy):
        state.claim(None, "accounts", "A-1", 2, timedelta(seconds=30))  # create race lost
    with pytest.raises(RecordBusy, match="being applied"):
        state.claim(state.get_entry("accounts", "A-1"), "accounts", "A-1", 2, timedelta(seconds=30))
    state.commit(claimed, version=1, hash="h1", target_key="A-1", master="dataverse")
    again = state.claim(state.get_entry("accounts", "A-1"), "accounts", "A-1", 2, timedelta(seconds=30))
    state.commit(again, version=2, hash="h2", target_key="A-1", master="dataverse")
    assert version_of(state, "A-1") == 2


def test_expired_lease_can_be_taken_over_and_late_commit_fails(storage):
    state = StateStore(storage)
    slow = state.claim(None, "accounts", "A-2", 1, timedelta(seconds=-1))  # already expired
    fast = state.claim(state.get_entry("accounts", "A-2"), "accounts", "A-2", 2, timedelta(seconds=30))
    state.commit(fast, version=2, hash="h2", target_key="A-2", master="dataverse")
    with pytest.raises(RecordBusy, match="expired before commit"):
        state.commit(slow, version=1, hash="h1", target_key="A-2", master="dataverse")
    assert version_of(state, "A-2") == 2


def test_failures_keep_first_seen_and_clear(storage):
    state = StateStore(storage)
    state.record_failure(
        Failure(flow="accounts", source_key="A/1", attempt=1, error_class="MappingError", message="m1")
    )
    first = state.failures("accounts")[0]
    state.record_failure(Failure(flow="accounts", source_key="A/1", attempt=2, error_class="MappingError", message="m2",
                                 status=400, request_id="r"))  # fmt: skip
    [again] = state.failures("accounts")
    assert again.first_seen == first.first_seen and again.last_seen >= first.last_seen
    assert (again.attempt, again.message, again.status, again.request_id) == (2, "m2", 400, "r")
    state.clear_failure("accounts", "A/1")
    assert state.failures("accounts") == []


def test_runs_newest_first_and_since(storage):
    state = StateStore(storage)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for i in range(3):
        started = (t0 + timedelta(minutes=i * 20)).isoformat()
        state.record_run(Run(flow="accounts", kind="poll", run_id=f"r{i}", started=started, counts={"read": i}))
    runs = state.runs("accounts")
    assert [r.run_id for r in runs] == ["r2", "r1", "r0"]
    assert [r.run_id for r in state.runs("accounts", since=t0 + timedelta(minutes=30))] == ["r2"]


def test_failures_past_retention_are_purged_and_recent_ones_kept(storage):
    state = StateStore(storage)
    for key in ("old-1", "old-2", "recent"):
        state.record_failure(
            Failure(flow="accounts", source_key=key, attempt=1, error_class="MappingError", message="x")
        )
    table = storage.table("p2cfailures")
    for key in ("old-1", "old-2"):
        entity = table.get_entity("accounts", row_key(key))
        entity["last_seen"] = (datetime.now(UTC) - timedelta(days=91)).isoformat()
        table.upsert_entity(entity)
    assert state.purge_failures("accounts", datetime.now(UTC) - timedelta(days=90)) == 2
    assert [f.source_key for f in state.failures("accounts")] == ["recent"]


def test_f_and_o_digests_live_beside_the_key_map_and_clear(storage):
    state = StateStore(storage)
    state.mark_seen("products", {f"P{i:04d}": f"d{i}" for i in range(150)})  # over one transaction
    seen = state.seen("products")
    assert len(seen) == 150 and seen["P0149"] == "d149"
    assert state.entries("products") == []  # never mixed with the key map entries
    state.clear_seen("products")
    assert state.seen("products") == {}


def test_versions_beyond_32_bits_round_trip(storage):
    state = StateStore(storage)
    version = 1_795_573_669_204  # an F&O poll time in milliseconds
    claimed = state.claim(None, "products", "D0001", version, timedelta(seconds=30))
    state.commit(claimed, version=version, hash="h", target_key="D0001", master="fno")
    assert version_of_flow(state, "products", "D0001") == version


def version_of_flow(state: StateStore, flow: str, key: str) -> int:
    entry = state.get_entry(flow, key)
    assert entry is not None
    return entry.version


def test_many_records_are_read_claimed_and_committed_together_and_only_the_loser_of_a_race_waits(storage):
    state, lease = StateStore(storage), timedelta(seconds=30)
    keys = [f"K-{n:02d}" for n in range(30)] + ["O'Brien", "A/B#1?", "東京商事"]
    for key in keys[:20]:  # twenty applied before, thirteen new
        state.commit(state.claim(None, "accounts", key, 1, lease), version=1, hash="h1", target_key=key, master="x")
    entries = state.get_entries("accounts", keys)  # more keys than one filter holds
    assert sorted(entries) == sorted(keys[:20]) and all(e.version == 1 for e in entries.values())
    busy = state.claim(entries["K-03"], "accounts", "K-03", 2, lease)  # another worker holds K-03 ...
    entries["K-03"] = busy
    theirs = state.claim(state.get_entry("accounts", "K-04"), "accounts", "K-04", 2, lease)
    state.commit(theirs, version=2, hash="h2", target_key="K-04", master="x")  # ... and moved K-04 since we read
    claims = state.claim_many("accounts", [(entries.get(k), k, 3) for k in keys], lease)
    lost = {k for k, c in zip(keys, claims, strict=True) if isinstance(c, RecordBusy)}
    assert lost == {"K-03", "K-04"}  # the transaction failed on K-04; each was then claimed alone
    won = [(c, 3, "h3", k, "dataverse") for k, c in zip(keys, claims, strict=True) if not isinstance(c, RecordBusy)]
    assert state.commit_many(won) == [None] * len(won)  # type: ignore[arg-type]
    after = state.get_entries("accounts", keys)
    assert {k for k, e in after.items() if e.version == 3} == set(keys) - lost
    assert after["K-04"].version == 2 and after["東京商事"].hash == "h3" and after["O'Brien"].lease_until is None
    # A commit whose lease was taken over in the meantime is refused for that record alone.
    first = state.claim_many("accounts", [(after["K-10"], "K-10", 4), (after["K-11"], "K-11", 4)], timedelta(0))
    state.claim(state.get_entry("accounts", "K-10"), "accounts", "K-10", 5, lease)  # lease expired: taken over
    results = state.commit_many([(first[0], 4, "h4", "K-10", "x"), (first[1], 4, "h4", "K-11", "x")])  # type: ignore[list-item]
    assert isinstance(results[0], RecordBusy) and results[1] is None
    assert version_of(state, "K-11") == 4 and version_of(state, "K-10") == 3
