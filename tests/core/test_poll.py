"""How the poll packs a page's records into messages (p2c_core/poll.py, by_bucket)."""

from collections import Counter

from p2c_core.envelope import Record, chunk
from p2c_core.poll import by_bucket
from p2c_core.state.buckets import BUCKETS, bucket


def keys_per_bucket(per_bucket: int) -> list[str]:
    """`per_bucket` keys of each key map bucket, interleaved as a page reads them."""
    found: dict[int, list[str]] = {b: [] for b in range(BUCKETS)}
    n = 0
    while any(len(v) < per_bucket for v in found.values()):
        key = f"P-{n:05d}"
        if len(found[bucket(key)]) < per_bucket:
            found[bucket(key)].append(key)
        n += 1
    return [found[b][i] for i in range(per_bucket) for b in range(BUCKETS)]


def messages(records: list[Record], size: int) -> list[list[Record]]:
    return [e.records for part in by_bucket(records, size) for e in chunk("products", part, size)]


def test_a_page_makes_one_part_filled_message_not_one_per_partition():
    records = [Record(key=k, version=1) for k in keys_per_bucket(26)]  # 26 a bucket, messages of 20
    sent = messages(records, 20)
    sizes = sorted(len(m) for m in sent)
    assert sizes == [4, 20, 20, 20, 20, 20]  # 104 records
    assert Counter(r.key for m in sent for r in m) == Counter(r.key for r in records)  # each once
    # A bucket's whole messages touch only its key map partition: one transaction each.
    single = [m for m in sent if len({bucket(r.key) for r in m}) == 1]
    assert len(single) >= BUCKETS


def test_partitions_with_less_than_a_message_go_together():
    records = [Record(key=k, version=1) for k in keys_per_bucket(3)]
    assert [len(m) for m in messages(records, 20)] == [3 * BUCKETS]


def test_a_keys_versions_keep_their_order():
    keys = keys_per_bucket(25)
    # Every key twice, the later version after: some land in a whole message, some in the rest.
    records = [Record(key=k, version=v) for v in (1, 2) for k in keys]
    flat = [r for m in messages(records, 20) for r in m]
    seen: dict[str, list[int]] = {}
    for r in flat:
        seen.setdefault(r.key, []).append(r.version)
    assert all(v == [1, 2] for v in seen.values())
    assert len(seen) == len(keys)
