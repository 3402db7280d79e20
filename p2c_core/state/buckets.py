"""Key map partitions: a flow's entries spread over `BUCKETS` partitions by a hash of the key.

Table Storage serves one partition from one server, with a target of about 2,000 entities
a second (https://learn.microsoft.com/azure/storage/tables/scalability-targets); every
record costs two entity operations in its partition (the lease and the commit), so one
partition per flow capped a flow near 1,000 records/s however many instances ran. With
`BUCKETS` partitions the cap is that many times higher: four give about 4,000 records/s a
flow (2,700 when the entry is read first), beyond what one service identity's budget lets
a flow write. More would cost more: the poll packs a message with the records of one
bucket where a page has enough of them, but a message of scattered changes (a re-sync)
needs a lease and a commit transaction per partition it touches.

The bucket comes from the source key as an opaque string (a company-qualified key such as
`demf|C-001` simply hashes to its own bucket). It is part of the stored form: changing
`BUCKETS` or the hash moves every entry, so it needs a migration like the one from the
single-partition form (state/legacy.py).
"""

from __future__ import annotations

import hashlib

BUCKETS = 4
_SEP = "~"  # as the side partitions `<flow>~id` and `<flow>~seen`; bucket names are digits


def bucket(key: str) -> int:
    """The bucket of a source key: stable across processes and Python versions (not `hash`)."""
    return int.from_bytes(hashlib.blake2b(key.encode("utf-8"), digest_size=4).digest(), "big") % BUCKETS


def partition(flow: str, key: str) -> str:
    """The key map partition of one record: `<flow>~<bucket, two digits>`."""
    return f"{flow}{_SEP}{bucket(key):02d}"


def partition_range(flow: str) -> tuple[str, str]:
    """The first and last bucket partition of a flow: a range query over them reads every entry
    (`<flow>~id` and `<flow>~seen` sort after the digits, other flows' partitions outside)."""
    return f"{flow}{_SEP}00", f"{flow}{_SEP}{BUCKETS - 1:02d}"
