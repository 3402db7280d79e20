"""A poll lets go of each page before it reads the next, the page's HTTP answer included."""

from __future__ import annotations

import gc

import httpx
import pytest

from p2c_core.sources import DataverseChanges, SourcePage

from .conftest import E2E


def page_answers() -> int:
    """httpx answers to account reads still held, alive or garbage not collected yet."""
    return sum(
        1 for o in gc.get_objects() if isinstance(o, httpx.Response) and o.request.url.path.endswith("/accounts")
    )


def test_a_poll_holds_one_page_answer_at_a_time(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    # Pages of three, so the demo accounts span several. httpx's answers sit in a reference
    # cycle (encode/httpx#3733); with automatic collection off, only what the poll collects
    # itself is gone, as when a long scan outruns the collector's thresholds.
    monkeypatch.setenv("P2C_PAGE_SIZE", "3")
    e2e.restart_runtime()
    held: list[int] = []
    enqueued = DataverseChanges.enqueued

    def counting(self: DataverseChanges, page: SourcePage) -> None:
        held.append(page_answers())
        enqueued(self, page)

    monkeypatch.setattr(DataverseChanges, "enqueued", counting)
    poll = next(f for f in e2e.host.timers() if f.name == "accounts_poll")
    gc.collect()
    gc.disable()
    try:
        assert e2e.host.fire(poll)
    finally:
        gc.enable()
    assert len(held) > 3
    assert max(held) == 1  # this page's: the ones before it are gone
