"""The key map on Azurite: leases that serialise workers, commits, and many records at once."""

from datetime import timedelta

import pytest

from p2c_core.errors import RecordBusy
from p2c_core.state import Claim, Commit, KeyMapEntry
from p2c_core.state.keymap import KeyMapStore

LEASE = timedelta(seconds=30)


def version_of(keymap: KeyMapStore, key: str, flow: str = "accounts") -> int:
    entry = keymap.get(flow, key)
    assert entry is not None
    return entry.version


@pytest.mark.parametrize("key", ["O'Brien", "A/B#1?", "100% \\ back", "東京商事", "tab\tkey"])
def test_any_source_key_is_claimed_committed_and_read_back(storage, key):
    keymap = KeyMapStore(storage)
    claimed = keymap.claim(None, "accounts", key, 5, LEASE)
    keymap.commit(claimed, version=5, hash="h", target_key=key, master="dataverse")
    entry = keymap.get("accounts", key)
    assert entry is not None and entry.source_key == key and entry.version == 5 and entry.target_key == key
    assert [e.source_key for e in keymap.entries("accounts")] == [key]


def test_lease_serialises_two_workers_on_one_record(storage):
    keymap = KeyMapStore(storage)
    claimed = keymap.claim(None, "accounts", "A-1", 1, LEASE)
    with pytest.raises(RecordBusy):
        keymap.claim(None, "accounts", "A-1", 2, LEASE)  # create race lost
    with pytest.raises(RecordBusy, match="being applied"):
        keymap.claim(keymap.get("accounts", "A-1"), "accounts", "A-1", 2, LEASE)
    keymap.commit(claimed, version=1, hash="h1", target_key="A-1", master="dataverse")
    again = keymap.claim(keymap.get("accounts", "A-1"), "accounts", "A-1", 2, LEASE)
    keymap.commit(again, version=2, hash="h2", target_key="A-1", master="dataverse")
    assert version_of(keymap, "A-1") == 2


def test_expired_lease_can_be_taken_over_and_late_commit_fails(storage):
    keymap = KeyMapStore(storage)
    slow = keymap.claim(None, "accounts", "A-2", 1, timedelta(seconds=-1))  # already expired
    fast = keymap.claim(keymap.get("accounts", "A-2"), "accounts", "A-2", 2, LEASE)
    keymap.commit(fast, version=2, hash="h2", target_key="A-2", master="dataverse")
    with pytest.raises(RecordBusy, match="expired before commit"):
        keymap.commit(slow, version=1, hash="h1", target_key="A-2", master="dataverse")
    assert version_of(keymap, "A-2") == 2


def test_release_drops_the_lease_and_keeps_the_applied_version(storage):
    keymap = KeyMapStore(storage)
    keymap.commit(keymap.claim(None, "accounts", "A-3", 1, LEASE), version=1, hash="h1", target_key="T", master="x")
    mine = keymap.claim(keymap.get("accounts", "A-3"), "accounts", "A-3", 2, LEASE)
    keymap.release(mine)
    after = keymap.get("accounts", "A-3")
    assert after is not None and (after.version, after.hash, after.lease_until) == (1, "h1", None)
    # a release after someone else took over is a no-op, not an error
    stale = keymap.claim(after, "accounts", "A-3", 3, timedelta(seconds=-1))
    keymap.claim(keymap.get("accounts", "A-3"), "accounts", "A-3", 4, LEASE)
    keymap.release(stale)
    taken = keymap.get("accounts", "A-3")
    assert taken is not None and taken.lease_version == 4


def test_versions_beyond_32_bits_round_trip(storage):
    keymap = KeyMapStore(storage)
    version = 1_795_573_669_204  # an F&O poll time in milliseconds
    claimed = keymap.claim(None, "products", "D0001", version, LEASE)
    keymap.commit(claimed, version=version, hash="h", target_key="D0001", master="fno")
    assert version_of(keymap, "D0001", flow="products") == version


def test_a_failure_mark_creates_or_merges_into_the_entry_and_a_commit_drops_it(storage):
    keymap = KeyMapStore(storage)
    keymap.mark_failed("accounts", "new/1")
    marked = keymap.get("accounts", "new/1")
    assert marked is not None and marked.failed is True and marked.version == -1
    keymap.commit(keymap.claim(None, "accounts", "A-4", 1, LEASE), version=1, hash="h", target_key="T", master="x")
    keymap.mark_failed("accounts", "A-4")
    entry = keymap.get("accounts", "A-4")
    assert entry is not None and entry.failed is True and (entry.version, entry.hash) == (1, "h")
    keymap.commit(keymap.claim(entry, "accounts", "A-4", 2, LEASE), version=2, hash="h2", target_key="T", master="x")
    after = keymap.get("accounts", "A-4")
    assert after is not None and after.failed is False and after.version == 2


def test_many_records_are_read_claimed_and_committed_together_and_only_the_loser_of_a_race_waits(storage):
    keymap = KeyMapStore(storage)
    keys = [f"K-{n:02d}" for n in range(30)] + ["O'Brien", "A/B#1?", "東京商事"]
    for key in keys[:20]:  # twenty applied before, thirteen new
        keymap.commit(keymap.claim(None, "accounts", key, 1, LEASE), version=1, hash="h1", target_key=key, master="x")
    entries = keymap.get_many("accounts", keys)
    assert sorted(entries) == sorted(keys[:20]) and all(e.version == 1 for e in entries.values())
    entries["K-03"] = keymap.claim(entries["K-03"], "accounts", "K-03", 2, LEASE)  # another worker holds K-03 ...
    theirs = keymap.claim(keymap.get("accounts", "K-04"), "accounts", "K-04", 2, LEASE)
    keymap.commit(theirs, version=2, hash="h2", target_key="K-04", master="x")  # ... and moved K-04 since we read
    claims = keymap.claim_many("accounts", [Claim(entries.get(k), k, 3) for k in keys], LEASE)
    lost = {k for k, c in zip(keys, claims, strict=True) if isinstance(c, RecordBusy)}
    assert lost == {"K-03", "K-04"}  # the transaction failed on K-04; each was then claimed alone
    won = [Commit(c, 3, "h3", k, "dataverse") for k, c in zip(keys, claims, strict=True) if isinstance(c, KeyMapEntry)]
    assert keymap.commit_many(won) == [None] * len(won)
    after = keymap.get_many("accounts", keys)
    assert {k for k, e in after.items() if e.version == 3} == set(keys) - lost
    assert after["K-04"].version == 2 and after["東京商事"].hash == "h3" and after["O'Brien"].lease_until is None


def test_a_commit_whose_lease_was_taken_over_is_refused_for_that_record_alone(storage):
    keymap = KeyMapStore(storage)
    for key in ("K-10", "K-11"):
        keymap.commit(keymap.claim(None, "accounts", key, 3, LEASE), version=3, hash="h3", target_key=key, master="x")
    got = keymap.get_many("accounts", ["K-10", "K-11"])
    first = keymap.claim_many("accounts", [Claim(got["K-10"], "K-10", 4), Claim(got["K-11"], "K-11", 4)],
                              timedelta(0))  # fmt: skip
    assert all(isinstance(c, KeyMapEntry) for c in first)
    keymap.claim(keymap.get("accounts", "K-10"), "accounts", "K-10", 5, LEASE)  # lease expired: taken over
    commits = [Commit(c, 4, "h4", k, "x") for c, k in zip(first, ["K-10", "K-11"], strict=True)
               if isinstance(c, KeyMapEntry)]  # fmt: skip
    results = keymap.commit_many(commits)
    assert isinstance(results[0], RecordBusy) and results[1] is None
    assert version_of(keymap, "K-11") == 4 and version_of(keymap, "K-10") == 3


def test_the_same_record_twice_in_one_claim_is_claimed_once(storage):
    keymap = KeyMapStore(storage)
    claims = keymap.claim_many("accounts", [Claim(None, "D-1", 1), Claim(None, "D-1", 2)], LEASE)
    assert isinstance(claims[0], KeyMapEntry) and isinstance(claims[1], RecordBusy)
    entry = keymap.get("accounts", "D-1")
    assert entry is not None and entry.lease_version == 1


def test_claims_beyond_one_transaction_all_go_through(storage):
    keymap = KeyMapStore(storage)
    keys = [f"M-{n:03d}" for n in range(230)]
    claims = keymap.claim_many("accounts", [Claim(None, k, 1) for k in keys], LEASE)
    assert all(isinstance(c, KeyMapEntry) and c.etag for c in claims)
    commits = [Commit(c, 1, "h", k, "x") for c, k in zip(claims, keys, strict=True) if isinstance(c, KeyMapEntry)]
    assert keymap.commit_many(commits) == [None] * 230
    assert len(keymap.entries("accounts")) == 230


def counted(azurite, storage) -> tuple[KeyMapStore, list[str]]:
    """A key map store whose table requests are noted (method each), on the same account."""
    from azure.data.tables import TableServiceClient

    from p2c_core.state.storage import Storage

    seen: list[str] = []
    tables = TableServiceClient.from_connection_string(
        azurite.connection_string, raw_request_hook=lambda r: seen.append(r.http_request.method)
    )
    return KeyMapStore(Storage(queues=storage.queues, tables=tables)), seen


def test_many_entries_are_read_in_few_queries_exactly_as_one_by_one(azurite, storage):
    keymap, seen = counted(azurite, storage)
    keys = [f"R-{n:02d}" for n in range(60)] + ["O'Brien", "''", "demf|C 001", "100% \\ back", "東京商事", "a/b#?"]
    for n, key in enumerate(keys[:50]):  # fifty applied, some leased now, two marked failed
        keymap.commit(keymap.claim(None, "accounts", key, n, LEASE), version=n, hash=f"h{n}", target_key=key,
                      master="dataverse")  # fmt: skip
    for key in keys[:5]:
        keymap.claim(keymap.get("accounts", key), "accounts", key, 99, LEASE)
    keymap.mark_failed("accounts", keys[7])
    keymap.mark_failed("accounts", keys[-1])  # an entry made by the mark alone
    one_by_one = {k: e for k in keys if (e := keymap.get("accounts", k)) is not None}
    assert len(one_by_one) == 51
    seen.clear()
    wanted = [*keys, "never", *keys[:3]]
    assert keymap.get_many("accounts", wanted) == one_by_one  # the same entries, ETags and all
    # 67 distinct keys over the 4 bucket partitions: at most 14 a query, a few queries each
    assert set(seen) == {"GET"} and len(seen) <= 4 * 2 + 1
    seen.clear()
    assert keymap.get_many("accounts", ["never"]) == {} and seen == ["GET"]  # one key: a point read


def write_old_form(storage, flow: str, key: str, version: int, target: str) -> None:
    """An entry as written before buckets: partition = the flow (state/legacy.py)."""
    from p2c_core.state.tables import KEYMAP, int64, row_key, table

    entity = {"PartitionKey": flow, "RowKey": row_key(key), "target_key": target, "version": int64(version),
              "hash": f"h{version}", "master": "dataverse"}  # fmt: skip
    table(storage, KEYMAP).create_entity(entity)


def test_entries_of_the_old_form_are_read_where_their_bucket_misses_and_move_when_claimed(storage):
    keymap = KeyMapStore(storage)
    old = [f"OLD-{n:02d}" for n in range(20)] + ["O'Old"]
    for key in old:
        write_old_form(storage, "accounts", key, 3, f"T-{key}")
    keymap.commit(keymap.claim(None, "accounts", "MOVED", 1, LEASE), version=7, hash="h7", target_key="new",
                  master="dataverse")  # fmt: skip
    write_old_form(storage, "accounts", "MOVED", 2, "stale")  # both forms: the bucket's is the newer
    keys = [*old, "MOVED", "NONE"]
    got = keymap.get_many("accounts", keys)
    assert got == {k: e for k in keys if (e := keymap.get("accounts", k)) is not None}
    assert sorted(got) == sorted([*old, "MOVED"]) and all(got[k].legacy and got[k].version == 3 for k in old)
    assert not got["MOVED"].legacy and got["MOVED"].target_key == "new"
    claims = keymap.claim_many("accounts", [Claim(got.get(k), k, 4) for k in keys], LEASE)
    commits = [Commit(c, 4, "h4", k, "dataverse") for c, k in zip(claims, keys, strict=True)
               if isinstance(c, KeyMapEntry)]  # fmt: skip
    assert len(commits) == len(keys) and keymap.commit_many(commits) == [None] * len(keys)
    after = keymap.get_many("accounts", keys)
    assert sorted(after) == sorted(keys) and not any(e.legacy for e in after.values())
    assert after["O'Old"].target_key == "O'Old" and after["MOVED"].version == 4
    assert sorted(e.source_key for e in keymap.entries("accounts")) == sorted(keys)  # no duplicate
