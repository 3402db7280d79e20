"""Sync state in Azure Table Storage, and the storage clients it runs on.

One module per store (cursors, keymap, seen, failures, runs), the table plumbing they
share (tables), and `StateStore`, the facade over them (store).
"""

from p2c_core.state.cursors import Cursor, CursorStore
from p2c_core.state.failures import Failure, FailureStore
from p2c_core.state.keymap import Claim, Commit, KeyMapEntry, KeyMapStore
from p2c_core.state.runs import Run, RunStore
from p2c_core.state.seen import SeenStore
from p2c_core.state.store import StateStore
from p2c_core.state.tables import CURSORS, FAILURES, KEYMAP, RUNS, TABLES, now, row_key, source_key

__all__ = [
    "CURSORS",
    "FAILURES",
    "KEYMAP",
    "RUNS",
    "TABLES",
    "Claim",
    "Commit",
    "Cursor",
    "CursorStore",
    "Failure",
    "FailureStore",
    "KeyMapEntry",
    "KeyMapStore",
    "Run",
    "RunStore",
    "SeenStore",
    "StateStore",
    "now",
    "row_key",
    "source_key",
]
