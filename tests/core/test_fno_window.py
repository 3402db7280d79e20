"""Windowed F&O scans (p2c_core/fno_window.py): a window of rows per tick, an unchanged
window told by its digest, a change sent once its window comes round."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from p2c_core.flows import get_flow
from p2c_core.sources import FnoChanges, SourcePage
from p2c_core.state import StateStore
from p2c_core.state.storage import Storage
from tests.core.sandboxed import Services, services

PRODUCTS = get_flow("products")
WINDOW = 5


@pytest.fixture
def sx() -> Iterator[Services]:
    with services() as s:
        yield s


def tick(sx: Services, state: StateStore, link: str | None) -> tuple[SourcePage, str | None]:
    """One poll of a windowed reader, its page marked enqueued as the engine does."""
    reader = FnoChanges(sx.fno, PRODUCTS, state, window=WINDOW)
    (page,) = list(reader.pages(link))
    reader.enqueued(page)
    assert page.done
    return page, page.resume


def product_numbers(sx: Services) -> list[str]:
    rows = sx.sandbox.fno.rows("CDSReleasedDistinctProducts")
    return sorted(r["ProductNumber"] for r in rows if r["dataAreaId"] == "usmf")


def full_pass(sx: Services, state: StateStore, link: str | None = None) -> tuple[list[str], int, str | None]:
    """Ticks until a pass ends: the keys sent, the ticks taken, the link after."""
    sent: list[str] = []
    ticks = 0
    while True:
        page, link = tick(sx, state, link)
        sent += [r["ProductNumber"] for r in page.rows]
        ticks += 1
        if link is None:
            return sent, ticks, link


def test_a_pass_sends_every_row_once_a_window_a_tick_then_idle_ticks_send_nothing(sx: Services, storage: Storage):
    state = StateStore(storage)
    numbers = product_numbers(sx)
    assert len(numbers) > 2 * WINDOW
    sent, ticks, link = full_pass(sx, state)
    assert sorted(sent) == numbers  # each once
    assert ticks in (len(numbers) // WINDOW + 1, -(-len(numbers) // WINDOW))
    sx.reset_counts()
    again, ticks_again, _ = full_pass(sx, state, link)
    assert again == [] and ticks_again == ticks
    assert len(sx.requests("fno")) == ticks  # one request a tick


def test_a_change_is_sent_when_its_window_comes_round(sx: Services, storage: Storage):
    state = StateStore(storage)
    numbers = product_numbers(sx)
    full_pass(sx, state)
    changed = numbers[WINDOW + 1]  # in the second window
    sx.fno.update("CDSReleasedDistinctProducts", sx.fno.key(ProductNumber=changed), {"SalesPrice": 4321.5})
    first, link = tick(sx, state, None)
    assert first.rows == []  # the first window did not change
    second, _ = tick(sx, state, link)
    assert [(r["ProductNumber"], r["SalesPrice"]) for r in second.rows] == [(changed, 4321.5)]


def test_an_idle_tick_reads_one_window_digest_not_the_rows_seen(sx: Services, storage: Storage):
    state = StateStore(storage)
    full_pass(sx, state)
    calls: list[str] = []
    state.seen_range = lambda flow, keys: calls.append(flow) or {}  # type: ignore[method-assign,assignment]
    state.seen = lambda flow: calls.append(flow) or {}  # type: ignore[method-assign,assignment]
    assert full_pass(sx, state)[0] == []
    assert calls == []


def test_forgetting_what_was_sent_sends_every_window_again(sx: Services, storage: Storage):
    state = StateStore(storage)
    full_pass(sx, state)
    state.clear_seen(PRODUCTS.name)  # as `reset-cursor` does
    assert sorted(full_pass(sx, state)[0]) == product_numbers(sx)


def test_digests_of_a_window_are_kept_only_once_it_is_enqueued(sx: Services, storage: Storage):
    state = StateStore(storage)
    reader = FnoChanges(sx.fno, PRODUCTS, state, window=WINDOW)
    (page,) = list(reader.pages(None))  # read, never enqueued
    assert page.rows and page.window is not None
    again, _ = tick(sx, state, None)
    assert [r["ProductNumber"] for r in again.rows] == [r["ProductNumber"] for r in page.rows]


def test_window_zero_reads_the_whole_entity_as_before(sx: Services, storage: Storage):
    state = StateStore(storage)
    reader = FnoChanges(sx.fno, PRODUCTS, state, window=0)
    pages = list(reader.pages(None))
    assert all(p.window is None for p in pages)
    assert sorted(r["ProductNumber"] for p in pages for r in p.rows) == product_numbers(sx)
