"""What goes to a poison queue for a message that cannot be read as an envelope.

Queue messages hold at most 64 KB, so a larger body cannot go there as it is (sending it
raised, after the failure entry was written). It goes as a small stand-in instead: its
size, its SHA-256, its first bytes, and the failure entry that describes it.
"""

from __future__ import annotations

import hashlib
import json

from p2c_core.envelope import MAX_JSON_BYTES

HEAD_BYTES = 1024


def copy_of(raw: bytes, flow: str, failure_key: str) -> bytes:
    """`raw` itself when it fits a queue message, else a truncated and hashed stand-in."""
    if len(raw) <= MAX_JSON_BYTES:
        return raw
    stand_in = {
        "p2c_poison": "truncated",
        "failure": {"flow": flow, "source_key": failure_key},
        "bytes": len(raw),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "head": raw[:HEAD_BYTES].decode("utf-8", errors="replace"),
    }
    return json.dumps(stand_in).encode()
