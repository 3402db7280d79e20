"""Peak memory that stays flat however many pages a sync reads: big buffers go back to the system.

glibc's malloc serves a block of at least its mmap threshold with a mapping of its own,
unmapped when freed. By default the threshold follows the largest such block freed so
far, up to 32 MB: the first page a poll reads (a few MB of JSON) lifts it to that, and
from then on every page buffer, `$batch` body and answer comes from the heap or from
one of the per-thread arenas (the host applies messages on many threads), which keep
what they once held. Peak RSS then grew with the pages read: 5k accounts 102 MB, 20k
127 MB, though the Python objects alive stayed at about 40 MB throughout (tracemalloc).

Setting the threshold fixes it at glibc's own starting value (and stops it moving), so
those buffers are mapped and unmapped as they come and go. Elsewhere (macOS, Windows,
musl) nothing is done; an operator's `MALLOC_MMAP_THRESHOLD_` is left as it is.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

# mallopt's parameter number for the mmap threshold (malloc.h).
M_MMAP_THRESHOLD = -3
# glibc's default before it starts moving: blocks this big or bigger get their own mapping.
MMAP_THRESHOLD_BYTES = 128 * 1024
# glibc reads this variable at start-up; when set, the operator chose and we keep out.
OPERATOR_SETTING = "MALLOC_MMAP_THRESHOLD_"

_lock = threading.Lock()
_done: bool | None = None


def return_big_buffers() -> bool:
    """Fix glibc's mmap threshold, once per process; whether it is fixed (by us or the operator)."""
    global _done
    with _lock:
        if _done is None:
            _done = _fix_threshold()
        return _done


def _fix_threshold() -> bool:
    if OPERATOR_SETTING in os.environ:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):  # a libc without mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) == 1
