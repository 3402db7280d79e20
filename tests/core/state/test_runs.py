"""Run history on Azurite: newest first, since a moment, at most a limit."""

from datetime import UTC, datetime, timedelta

from p2c_core.state import Run
from p2c_core.state.runs import RunStore


def test_runs_newest_first_and_since(storage):
    runs = RunStore(storage)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    for i in range(3):
        started = (t0 + timedelta(minutes=i * 20)).isoformat()
        runs.record(Run(flow="accounts", kind="poll", run_id=f"r{i}", started=started, counts={"read": i}))
    assert [r.run_id for r in runs.query("accounts")] == ["r2", "r1", "r0"]
    assert [r.run_id for r in runs.query("accounts", since=t0 + timedelta(minutes=30))] == ["r2"]
    assert [r.run_id for r in runs.query("accounts", limit=2)] == ["r2", "r1"]
    assert runs.query("products") == []


def test_a_run_round_trips_with_its_counts_and_error(storage):
    runs = RunStore(storage)
    started = datetime.now(UTC).isoformat()
    run = Run(flow="orders", kind="apply", run_id="x", started=started, ended=started,
              counts={"written": 2, "failed": 1}, status="error", error="boom")  # fmt: skip
    runs.record(run)
    assert runs.query("orders") == [run]


def test_runs_started_in_the_same_millisecond_are_both_kept(storage):
    runs = RunStore(storage)
    started = datetime.now(UTC).isoformat()
    for run_id in ("a", "b"):
        runs.record(Run(flow="accounts", kind="apply", run_id=run_id, started=started))
    assert sorted(r.run_id for r in runs.query("accounts", since=datetime.fromisoformat(started))) == ["a", "b"]
