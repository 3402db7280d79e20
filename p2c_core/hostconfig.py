"""Values from host.json that the code must agree with (the host reads the same file)."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

HOST_JSON = Path(__file__).resolve().parent.parent / "host.json"
# The Functions host's own default when host.json does not set it.
DEFAULT_MAX_DEQUEUE_COUNT = 5


@lru_cache(maxsize=1)
def queue_settings(path: Path = HOST_JSON) -> dict[str, Any]:
    try:
        host = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    return dict(host.get("extensions", {}).get("queues", {}))


def max_dequeue_count() -> int:
    return int(queue_settings().get("maxDequeueCount", DEFAULT_MAX_DEQUEUE_COUNT))


def timespan_seconds(value: str) -> float:
    """'00:00:30' (host.json TimeSpan, optionally d.hh:mm:ss) -> seconds."""
    days = 0
    if "." in value.split(":")[0]:
        day_part, value = value.split(".", 1)
        days = int(day_part)
    h, m, s = value.split(":")
    return days * 86400 + int(h) * 3600 + int(m) * 60 + float(s)
