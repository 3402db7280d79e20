"""One canonical hash of JSON-like data: key order and dict layout do not change it.

Stored in the key map (content hashes, 32 hex digits) and beside F&O scans (row digests,
24): a change here re-sends every record once, so the form is fixed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any


def canonical_hash(value: Any, length: int = 32) -> str:
    """The first `length` hex digits of SHA-256 over sorted, compact-as-stored JSON."""
    text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:length]
