"""glibc's mmap threshold stays where p2c sets it, so big buffers go back to the system when
freed (in subprocesses: the setting is process-wide)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

# Frees a 16 MB block (which by default lifts glibc's threshold to 16 MB), then allocates
# 1 MB and prints how many blocks glibc mapped for it: 1 with the threshold held, else 0.
CODE = """
import ctypes, sys
from p2c_core import memory
if sys.argv[1] == "fix":
    assert memory.return_big_buffers()
libc = ctypes.CDLL(None)
class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]
libc.mallinfo2.restype = Info
big = bytearray(16 << 20)
del big
before = libc.mallinfo2().hblks
block = bytearray(1 << 20)
print(libc.mallinfo2().hblks - before)
"""


def mapped_after_a_big_free(mode: str, **env: str) -> int:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", CODE, mode], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip
    return int(out.stdout.strip().splitlines()[-1])


def glibc() -> bool:
    import ctypes

    try:
        ctypes.CDLL(None).mallinfo2  # noqa: B018 (glibc 2.33 and later)
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith("linux")


pytestmark = pytest.mark.skipif(not glibc(), reason="glibc's malloc only")


def test_a_big_free_no_longer_moves_the_threshold():
    assert mapped_after_a_big_free("plain") == 0  # what it guards against: glibc's default
    assert mapped_after_a_big_free("fix") == 1


def test_an_operators_setting_is_left_alone():
    # glibc read it at start-up; p2c says the threshold is fixed and does not touch it.
    assert mapped_after_a_big_free("fix", MALLOC_MMAP_THRESHOLD_=str(128 * 1024)) == 1
    assert mapped_after_a_big_free("fix", MALLOC_MMAP_THRESHOLD_=str(32 << 20)) == 0
