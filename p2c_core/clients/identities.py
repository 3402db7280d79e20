"""The identities one OData client sends as: one, or a pool used in turn (pool.py).

Each identity has its own slots and pace (`AdaptiveLimit`, with its `Pacer`): its own
budget at the service. A request goes as the next identity in turn that may start one
now; when none may, it waits for the one that will be ready first.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from p2c_core.clients.concurrency import AdaptiveLimit

# How often a request waiting for any identity looks again (when each waits on an answer).
POLL_S = 0.02


@dataclass
class Identity:
    name: str  # a client id or "default": never a secret
    auth: httpx.Auth | None
    limit: AdaptiveLimit


class Identities:
    def __init__(self, members: list[Identity], sleep: Callable[[float], None] = time.sleep) -> None:
        if not members:
            raise ValueError("at least one identity")
        self.members = members
        self._turn = itertools.count()
        self._lock = threading.Lock()
        self._sleep = sleep

    def held(self) -> float:
        """Seconds until any identity may send again (Retry-After), 0 when one may now."""
        return min(m.limit.held() for m in self.members)

    @contextmanager
    def acquire(self, operations: int = 1) -> Iterator[Identity]:
        """A slot of one identity for one request of `operations`, held while it is in flight."""
        if len(self.members) == 1:
            member = self.members[0]
            with member.limit.slot(operations):
                yield member
            return
        member = self._take(operations)
        try:
            yield member
        finally:
            member.limit.release()

    def _take(self, operations: int) -> Identity:
        while True:
            with self._lock:
                first = next(self._turn) % len(self.members)
            soonest = math.inf
            for i in range(len(self.members)):
                member = self.members[(first + i) % len(self.members)]
                delay = member.limit.try_start(operations)
                if delay <= 0:
                    return member
                soonest = min(soonest, delay)
            self._sleep(POLL_S if soonest == math.inf else min(soonest, 0.25))
