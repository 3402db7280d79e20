"""Records parked in a queue for a while: waiting for another flow's record, or for their
flow to be resumed. Watched only where someone asks (the local host's drain), so a
`p2c sync` can stop when all that is left waits, and name what each record waits for.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Parked:
    flow: str
    key: str
    waiting_for: str


class Watch:
    """The messages parked right now, one per (flow, key)."""

    def __init__(self) -> None:
        self._parked: dict[tuple[str, str], Parked] = {}
        self._lock = threading.Lock()

    def park(self, flow: str, key: str, waiting_for: str) -> None:
        with self._lock:
            self._parked[(flow, key)] = Parked(flow, key, waiting_for)

    def taken(self, flow: str, key: str) -> None:
        with self._lock:
            self._parked.pop((flow, key), None)

    def parked(self, flows: set[str] | None = None) -> list[Parked]:
        with self._lock:
            return [p for p in self._parked.values() if flows is None or p.flow in flows]


_current: Watch | None = None


@contextmanager
def watching() -> Iterator[Watch]:
    """Record what is parked while the block runs (not in a deployment: nobody reads it)."""
    global _current
    before, _current = _current, Watch()
    try:
        yield _current
    finally:
        _current = before


def park(flow: str, key: str, waiting_for: str) -> None:
    if _current is not None:
        _current.park(flow, key, waiting_for)


def taken(flow: str, key: str) -> None:
    """A parked message is being worked on again (it parks again if it still waits)."""
    if _current is not None:
        _current.taken(flow, key)


def active() -> bool:
    return _current is not None
