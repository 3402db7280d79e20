"""Sync state in Azure Table Storage: one facade over the stores of one storage account.

Tables: `p2ccursors` (one row per flow, ETag-guarded, and the pause flag), `p2ckeymap`
(per flow and source key: target key, last applied source version, content hash, master,
apply lease; F&O digests in a side partition), `p2cruns` (newest first) and `p2cfailures`
(one row per failed record, replayable). Each store is its own module; this facade keeps
the one set of method names that the engine, ops, CLI and tests call.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from p2c_core.state.cursors import Cursor, CursorStore
from p2c_core.state.failures import Failure, FailureStore
from p2c_core.state.keymap import Claim, Commit, KeyMapEntry, KeyMapStore
from p2c_core.state.runs import Run, RunStore
from p2c_core.state.seen import SeenStore
from p2c_core.state.windows import WindowStore

if TYPE_CHECKING:
    from p2c_core.errors import RecordBusy
    from p2c_core.state.storage import Storage


class StateStore:
    """All sync state of one storage account; tables are created on first use.

    The stores are there too, one attribute each (`cursors`, `keymap`, `seen_digests`,
    `failure_entries`, `run_history`), for a caller that needs only one.
    """

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.cursors = CursorStore(storage)
        self.keymap = KeyMapStore(storage)
        self.seen_digests = SeenStore(storage)
        self.windows = WindowStore(storage)
        self.failure_entries = FailureStore(storage)
        self.run_history = RunStore(storage)

    # --- cursors and the operator's pause -------------------------------------------

    def get_cursor(self, flow: str, company: str | None = None) -> Cursor:
        """A flow's cursor; `company`: an F&O flow's scan of a company other than the default one."""
        return self.cursors.get(flow, company)

    def put_cursor(self, cursor: Cursor) -> Cursor:
        """Write only if nobody else moved the cursor since we read it (else CursorConflict)."""
        return self.cursors.put(cursor)

    def set_paused(self, flow: str, paused: bool, reason: str | None = None) -> None:
        self.cursors.set_paused(flow, paused, reason)

    def is_paused(self, flow: str) -> bool:
        return self.cursors.is_paused(flow)

    def pause(self, flow: str) -> dict[str, Any]:
        return self.cursors.pause(flow)

    # --- what F&O polls sent on -------------------------------------------------------

    def seen(self, flow: str, company: str | None = None) -> dict[str, str]:
        return self.seen_digests.get(flow, company)

    def mark_seen(self, flow: str, digests: dict[str, str], company: str | None = None) -> None:
        self.seen_digests.mark(flow, digests, company)

    def seen_range(self, flow: str, keys: list[str], company: str | None = None) -> dict[str, str]:
        """The digests of `keys` (and of any other key between them): one range query."""
        return self.seen_digests.range(flow, keys, company)

    def clear_seen(self, flow: str, company: str | None = None) -> None:
        self.seen_digests.clear(flow, company)
        self.windows.clear(flow, company)

    # --- key map ----------------------------------------------------------------------

    def get_entry(self, flow: str, key: str) -> KeyMapEntry | None:
        return self.keymap.get(flow, key)

    def get_entries(self, flow: str, keys: list[str]) -> dict[str, KeyMapEntry]:
        return self.keymap.get_many(flow, keys)

    def entries(self, flow: str) -> list[KeyMapEntry]:
        return self.keymap.entries(flow)

    def claim(self, entry: KeyMapEntry | None, flow: str, key: str, version: int, lease: timedelta) -> KeyMapEntry:
        """Take the apply lease on one record (else RecordBusy)."""
        return self.keymap.claim(entry, flow, key, version, lease)

    def commit(
        self, entry: KeyMapEntry, *, version: int, hash: str, target_key: str | None, master: str | None
    ) -> None:
        """Record the applied version and release the lease (else RecordBusy)."""
        self.keymap.commit(entry, version=version, hash=hash, target_key=target_key, master=master)

    def claim_many(self, flow: str, claims: list[Claim], lease: timedelta) -> list[KeyMapEntry | RecordBusy]:
        return self.keymap.claim_many(flow, claims, lease)

    def commit_many(self, commits: list[Commit]) -> list[RecordBusy | None]:
        return self.keymap.commit_many(commits)

    def release(self, entry: KeyMapEntry) -> None:
        self.keymap.release(entry)

    def claim_new(
        self, flow: str, claims: list[Claim], lease: timedelta, *, at: datetime | None = None
    ) -> list[KeyMapEntry | None]:
        """Claim records taken to be new by creating their entries (None where one existed)."""
        return self.keymap.claim_new(flow, claims, lease, at=at)

    def discard(self, entries: list[KeyMapEntry]) -> None:
        self.keymap.discard(entries)

    # --- failures ---------------------------------------------------------------------

    def record_failure(self, failure: Failure) -> Failure:
        """Write the failure entry and mark the record's key map entry, so that its next
        success (a fix at the source) clears the entry; applying writes without the mark."""
        self.failure_entries.record(failure)
        self.keymap.mark_failed(failure.flow, failure.source_key)
        return failure

    def purge_failures(self, flow: str, seen_before: datetime) -> int:
        return self.failure_entries.purge(flow, seen_before)

    def clear_failure(self, flow: str, key: str) -> None:
        self.failure_entries.clear(flow, key)

    def failures(self, flow: str | None = None) -> list[Failure]:
        return self.failure_entries.query(flow)

    # --- runs -------------------------------------------------------------------------

    def record_run(self, run: Run) -> None:
        self.run_history.record(run)

    def runs(self, flow: str, *, since: datetime | None = None, limit: int | None = None) -> list[Run]:
        return self.run_history.query(flow, since=since, limit=limit)
