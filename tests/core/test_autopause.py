"""Auto-pause on Azurite: the threshold, the minimum, the window restarting at a resume,
and pause rows written before reasons were kept."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from p2c_core import autopause
from p2c_core.flows import get_flow
from p2c_core.outcome import Outcome
from p2c_core.state import CURSORS, Run, StateStore, now


@dataclass
class _Settings:
    auto_pause_failure_share: float | None = 0.9
    auto_pause_window_minutes: float = 15.0
    auto_pause_min_records: int = 10


@dataclass
class _Runtime:
    state: StateStore
    settings: _Settings


def _applied(state: StateStore, failed: int, written: int = 0) -> Outcome:
    out = Outcome("accounts", "apply")
    out.counts.failed, out.counts.written = failed, written
    stamp = now().isoformat()
    state.record_run(Run("accounts", "apply", out.run_id, stamp, stamp, out.counts.as_dict()))
    return out


def _check(rt: _Runtime, out: Outcome) -> bool:
    return autopause.check(cast(Any, rt), get_flow("accounts"), out)


def test_pauses_past_the_share_once_the_minimum_was_tried(storage):
    rt = _Runtime(StateStore(storage), _Settings())
    assert not _check(rt, _applied(rt.state, failed=5))  # 5 of 5, below the minimum of 10
    assert not _check(rt, _applied(rt.state, failed=4, written=2))  # 9 of 11: 0.82, below 0.9
    assert _check(rt, _applied(rt.state, failed=10))  # 19 of 21
    pause = rt.state.pause("accounts")
    assert pause["paused"] is True and "19 of 21 records failed" in pause["reason"]
    assert rt.state.is_paused("accounts")


def test_a_resume_starts_the_count_again_and_null_turns_it_off(storage):
    rt = _Runtime(StateStore(storage), _Settings())
    _applied(rt.state, failed=30)
    rt.state.set_paused("accounts", False)  # resumed after the failures above
    assert not _check(rt, _applied(rt.state, failed=5))  # only the 5 since the resume count
    rt.settings.auto_pause_failure_share = None
    assert not _check(rt, _applied(rt.state, failed=50))
    assert not rt.state.is_paused("accounts")


def test_a_pause_row_written_before_reasons_were_kept_still_reads(storage):
    state = StateStore(storage)
    state.pause("accounts")  # creates the table (and caches nothing, unlike is_paused)
    storage.table(CURSORS).upsert_entity(
        {"PartitionKey": "accounts", "RowKey": "paused", "paused": True, "updated_at": datetime.now(UTC).isoformat()}
    )
    assert state.is_paused("accounts")
    assert state.pause("accounts")["reason"] is None
