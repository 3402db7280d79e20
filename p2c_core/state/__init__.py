"""Sync state in Azure Table Storage, and the storage clients it runs on."""

from p2c_core.state.store import (
    CURSORS,
    FAILURES,
    KEYMAP,
    RUNS,
    TABLES,
    Cursor,
    Failure,
    KeyMapEntry,
    Run,
    StateStore,
    now,
    row_key,
    source_key,
)

__all__ = [
    "CURSORS",
    "FAILURES",
    "KEYMAP",
    "RUNS",
    "TABLES",
    "Cursor",
    "Failure",
    "KeyMapEntry",
    "Run",
    "StateStore",
    "now",
    "row_key",
    "source_key",
]
