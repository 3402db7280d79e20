"""Live sync in tests: push on, the HTTP functions served on 127.0.0.1, the webhook registered."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from p2c_cli.host import Registered
from p2c_cli.http_host import HttpHost
from p2c_core import nudge, nudged

from .conftest import E2E

# A test key, not a secret of anything: 40 characters, as P2C_EVENTS_KEY needs at least 32.
KEY = "test-events-key-0123456789abcdefghijklmn"


@dataclass
class Live:
    e2e: E2E
    http: HttpHost

    @property
    def dataverse_url(self) -> str:
        return f"{self.http.url}/api/events/dataverse"

    @property
    def fno_url(self) -> str:
        return f"{self.http.url}/api/events/fno?code={KEY}"

    def nudges(self) -> Registered:
        return next(f for f in self.e2e.host.queue_functions() if f.queue == nudge.QUEUE)

    def queued(self) -> int:
        return self.e2e.host.depth(nudge.QUEUE)

    def drain_nudges(self) -> int:
        return self.e2e.host.drain([self.nudges()], timeout=60)

    def register(self) -> None:
        from p2c_core.ops import events

        events.register(self.e2e.runtime, self.dataverse_url, dry_run=False)


def settled(done: Callable[[], bool], within: float = 30.0) -> bool:
    """Wait for something the sandbox does in the background (a push); a deadline, not a speed goal."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if done():
            return True
        time.sleep(0.05)
    return done()


@contextmanager
def live_sync(e2e: E2E, monkeypatch: pytest.MonkeyPatch, coalesce: str = "0") -> Iterator[Live]:
    import function_app

    for name, value in (("P2C_EVENTS_ENABLED", "true"), ("P2C_EVENTS_KEY", KEY),
                        ("P2C_EVENTS_COALESCE_SECONDS", coalesce)):  # fmt: skip
        monkeypatch.setenv(name, value)
    e2e.restart_runtime()
    nudged.forget_reads()
    with HttpHost(function_app.app, ["dataverse_events", "fno_events"]) as http:
        yield Live(e2e, http)
