"""Single flight: concurrent callers of one key share one look-up, its answer or its error."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from p2c_core.flights import SingleFlight


def _together(flights: SingleFlight, key: str, callers: int, find: Callable[[], Any]) -> list[Any]:
    """`callers` threads run `key` while the first look-up is held until all the others wait on it."""
    release = threading.Event()
    calls: list[int] = []
    out: list[Any] = [None] * callers

    def held() -> Any:
        calls.append(1)
        release.wait(timeout=30)
        return find()

    def caller(i: int) -> None:
        try:
            out[i] = flights.run(key, held)
        except Exception as exc:
            out[i] = exc

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    threads[0].start()
    while not calls:  # the first is under way
        threading.Event().wait(0.001)
    for t in threads[1:]:
        t.start()
    while flights.waiting(key) < callers - 1:
        threading.Event().wait(0.001)
    release.set()
    for t in threads:
        t.join(timeout=30)
    assert len(calls) == 1
    return out


def test_concurrent_callers_of_one_key_share_the_first_look_up():
    flights = SingleFlight()
    assert _together(flights, "uoms|name|ea", 16, lambda: "guid-1") == ["guid-1"] * 16
    assert flights.waiting("uoms|name|ea") == 0
    asked: list[str] = []
    assert flights.run("uoms|name|ea", lambda: asked.append("again") or "guid-2") == "guid-2"
    assert asked == ["again"]  # nothing is remembered once the flight is over (a cache is the caller's)


def test_a_none_is_shared_with_those_waiting_and_an_error_raised_to_each():
    flights = SingleFlight()
    assert _together(flights, "k", 4, lambda: None) == [None] * 4
    failure = OSError("Sales did not answer")

    def fail() -> Any:
        raise failure

    assert _together(flights, "k", 4, fail) == [failure] * 4
    with pytest.raises(OSError):
        flights.run("k", fail)  # the next caller asks again


def test_other_keys_do_not_wait():
    flights = SingleFlight()
    inner: list[Any] = []
    assert flights.run("a", lambda: inner.append(flights.run("b", lambda: "B")) or "A") == "A"
    assert inner == ["B"]
