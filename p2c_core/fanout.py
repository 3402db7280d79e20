"""Independent storage requests side by side: one round trip's wait instead of several.

Azure Storage answers in milliseconds, not microseconds, so requests sent one after another
add their round trips to the path of a message or a poll (docs/benchmarks.md, storage
latency). What needs no answer of the other goes through here: every call runs, all are
waited for, and the first error is raised after the others ended (nothing is left running
when the caller moves on, e.g. a cursor moves only after every message of its page is sent).

The pool is shared by the process; a call that itself fans out runs its calls in its own
thread, one after another, so no call ever waits for a queued one (no deadlock).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

# Requests in flight at once for one caller: below the 10 connections azure-core's
# requests transport keeps per host (requests.adapters.DEFAULT_POOLSIZE), so no request
# opens a connection (a TLS handshake, on Azure) only to drop it afterwards.
WIDTH = 8
# Threads for every caller together (the host runs several messages at once).
_POOL_SIZE = 32

_pool: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_inside = threading.local()  # set in the pool's threads while they run a call


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_POOL_SIZE, thread_name_prefix="p2c-storage")
        return _pool


def _nested() -> bool:
    return getattr(_inside, "active", False)


def _run(call: Callable[[], Any]) -> Any:
    _inside.active = True
    try:
        return call()
    finally:
        _inside.active = False


def _submit(call: Callable[[], Any]) -> Future[Any]:
    # In a copy of the caller's context: its spans and logs stay the caller's run's.
    return _executor().submit(contextvars.copy_context().run, _run, call)


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run `calls` at once; their results in order, once all have ended."""
    if len(calls) <= 1 or _nested():
        return [call() for call in calls]
    return [f.result() for f in _settle([_submit(call) for call in calls])]


def each(calls: Iterable[Callable[[], Any]], width: int = WIDTH) -> int:
    """Run every call of `calls`, at most `width` at a time, taken from the iterable only as
    room frees (what a call holds, e.g. a sealed message, is built as it is sent); returns
    how many ran. Stops taking new calls at the first error and raises it once the calls
    already started have ended."""
    if _nested():
        ran = 0
        for call in calls:
            call()
            ran += 1
        return ran
    running: set[Future[Any]] = set()
    started = 0
    try:
        for call in calls:
            if len(running) >= width:
                ended, running = wait(running, return_when=FIRST_COMPLETED)
                for f in ended:
                    f.result()
            running.add(_submit(call))
            started += 1
    finally:
        _settle(list(running))  # raises the first error once all ended (or the loop's)
    return started


def _settle(futures: list[Future[Any]]) -> list[Future[Any]]:
    """Wait for all of `futures`; raise the first error among them."""
    wait(futures)
    for f in futures:
        if (exc := f.exception()) is not None:
            raise exc
    return futures
