"""Single flight: concurrent misses of one key wait for the first caller's look-up.

A worker process applies up to 16 messages at once; at start they all miss the same
reference (a currency, a unit) together. Without this each would ask Sales for it.
The waiters take the first caller's answer (a None too: it was asked just now) or its
error; nothing is remembered here (references.py caches what was found).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any


class _Flight:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: Any = None
        self.error: BaseException | None = None
        self.waiting = 0


class SingleFlight:
    """`run(key, find)`: `find()` once for every concurrent `run` of the same key."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight] = {}
        self._lock = threading.Lock()

    def run(self, key: Hashable, find: Callable[[], Any]) -> Any:
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            else:
                flight.waiting += 1
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value
        try:
            flight.value = find()
            return flight.value
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()

    def waiting(self, key: Hashable) -> int:
        """How many callers wait for the look-up of `key` under way (0: none under way)."""
        with self._lock:
            flight = self._flights.get(key)
            return flight.waiting if flight is not None else 0
