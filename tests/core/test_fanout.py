"""fanout: independent calls side by side, all waited for, the first error raised after."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from p2c_core import fanout

# Only a guard: a call that waits for another that never runs fails instead of hanging.
GUARD_S = 20


def test_together_runs_the_calls_side_by_side_and_returns_their_results_in_order():
    both = threading.Barrier(2, timeout=GUARD_S)  # broken unless the two calls run at once

    def call(n: int) -> int:
        both.wait()
        return n

    assert fanout.together(lambda: call(1), lambda: call(2)) == [1, 2]


def test_together_raises_the_first_error_once_every_call_ended():
    ended = threading.Event()
    release = threading.Event()

    def fails() -> None:
        release.set()
        raise ValueError("first")

    def slow() -> str:
        release.wait(GUARD_S)
        ended.set()
        return "done"

    with pytest.raises(ValueError, match="first"):
        fanout.together(fails, slow)
    assert ended.is_set()  # the other call was not left running


def test_each_keeps_at_most_width_calls_running_and_runs_every_one():
    lock = threading.Lock()
    running = peak = 0
    seen: list[int] = []
    full = threading.Barrier(3, timeout=GUARD_S)

    def call(n: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        if n < 3:
            full.wait()  # the first three run together: width 3 is used
        with lock:
            running -= 1
            seen.append(n)

    assert fanout.each(((lambda n=n: call(n)) for n in range(10)), width=3) == 10
    assert peak == 3
    assert sorted(seen) == list(range(10))


def test_each_takes_no_new_call_after_an_error():
    taken: list[int] = []

    def send(n: int) -> None:
        if n == 0:
            raise RuntimeError("send 0")

    def calls() -> Iterator[Callable[[], None]]:
        for n in range(100):
            taken.append(n)
            yield lambda n=n: send(n)

    with pytest.raises(RuntimeError, match="send 0"):
        fanout.each(calls(), width=2)
    assert len(taken) < 100


def test_a_call_that_fans_out_itself_runs_its_calls_in_its_own_thread():
    # Every pool thread busy with a call that fans out: its inner calls must not wait for a
    # free pool thread (there is none), or this would hang.
    def outer(n: int) -> list[int]:
        return fanout.together(lambda: n, lambda: n * 10)

    calls = [(lambda n=n: outer(n)) for n in range(fanout._POOL_SIZE + 4)]
    assert fanout.together(*calls) == [[n, n * 10] for n in range(fanout._POOL_SIZE + 4)]
