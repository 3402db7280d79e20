"""The local host drives registered functions as the Functions host does (on Azurite)."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import azure.functions as func

from p2c_cli.host import LocalHost
from p2c_core.state.storage import Storage


def make_app(calls: list[tuple[str, int]], fail_times: int) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.function_name(name="tick")
    @app.timer_trigger(arg_name="timer", schedule="0 */5 * * * *")
    def tick(timer: func.TimerRequest) -> None:
        calls.append(("tick", int(timer.past_due)))

    @app.function_name(name="work")
    @app.queue_trigger(arg_name="msg", queue_name="t-work", connection="AzureWebJobsStorage")
    def work(msg: func.QueueMessage) -> None:
        body = json.loads(msg.get_body())
        calls.append((body["n"], msg.dequeue_count or 0))
        if body["n"] == "bad" or len([c for c in calls if c[0] == body["n"]]) <= fail_times:
            raise RuntimeError("boom")

    return app


def host_json(tmp_path: Path, max_dequeue: int = 3) -> Path:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"version": "2.0", "extensions": {"queues": {
        "maxDequeueCount": max_dequeue, "visibilityTimeout": "00:00:00", "batchSize": 4}}}))  # fmt: skip
    return path


def test_retries_then_succeeds_and_poisons_after_max_dequeue_count(storage, tmp_path):
    calls: list[tuple[str, int]] = []
    host = LocalHost(make_app(calls, fail_times=2), storage, host_json=host_json(tmp_path), lease_seconds=5)
    try:
        queue = storage.queue("t-work")
        queue.send_message(json.dumps({"n": "ok"}).encode())
        queue.send_message(json.dumps({"n": "bad"}).encode())
        host.drain(timeout=60, idle_sleep=0.05)
        assert [c for c in calls if c[0] == "ok"] == [("ok", 1), ("ok", 2), ("ok", 3)]
        assert [c for c in calls if c[0] == "bad"] == [("bad", 1), ("bad", 2), ("bad", 3)]
        poison = list(storage.queue("t-work-poison").receive_messages())
        assert [json.loads(m.content)["n"] for m in poison] == ["bad"]
        assert host.depth("t-work") == 0
    finally:
        host.close()


def test_messages_are_base64_on_the_wire_as_the_host_expects(storage, tmp_path):
    calls: list[tuple[str, int]] = []
    host = LocalHost(make_app(calls, fail_times=0), storage, host_json=host_json(tmp_path))
    try:
        storage.queue("t-work")  # the queue, as the app's deployment creates it
        raw = storage.queues.get_queue_client("t-work")  # no encode policy: raw text
        raw.send_message(base64.b64encode(json.dumps({"n": "b64"}).encode()).decode())
        host.drain(timeout=30, idle_sleep=0.05)
        assert calls == [("b64", 1)]
        [timer] = host.timers()
        host.fire(timer)
        assert calls[-1] == ("tick", 0)
    finally:
        host.close()


def test_drain_reports_progress_until_the_queue_is_empty(storage, tmp_path):
    calls: list[tuple[str, int]] = []
    host = LocalHost(make_app(calls, fail_times=0), storage, host_json=host_json(tmp_path))
    try:
        queue = storage.queue("t-work")
        for i in range(10):
            queue.send_message(json.dumps({"n": f"m{i}"}).encode())
        reports: list[tuple[int, int]] = []
        host.drain(timeout=30, idle_sleep=0.05, progress=lambda done, queued: reports.append((done, queued)))
        assert reports[-1] == (10, 0)
        assert [d for d, _ in reports] == sorted(d for d, _ in reports)
        assert len(calls) == 10
    finally:
        host.close()


def pipeline_json(tmp_path: Path) -> Path:
    path = tmp_path / "host.json"
    path.write_text(json.dumps({"version": "2.0", "extensions": {"queues": {
        "visibilityTimeout": "00:00:00", "batchSize": 4, "newBatchThreshold": 2}}}))  # fmt: skip
    return path


def counting_app(on_start: Callable[[int], None]) -> func.FunctionApp:
    """A queue function `work` on `t-pipe` calling `on_start(n)`, n its place in start order."""
    app = func.FunctionApp()
    lock = threading.Lock()
    started = [0]

    @app.function_name(name="work")
    @app.queue_trigger(arg_name="msg", queue_name="t-pipe", connection="AzureWebJobsStorage")
    def work(msg: func.QueueMessage) -> None:
        with lock:
            started[0] += 1
            n = started[0]
        on_start(n)

    return app


def drained(storage: Storage, tmp_path: Path, on_start: Callable[[int], None], messages: int) -> int:
    """`messages` sent to the counting app's queue and drained by a pipelining host: the depth left."""
    host = LocalHost(counting_app(on_start), storage, host_json=pipeline_json(tmp_path))
    try:
        queue = storage.queue("t-pipe")
        for i in range(messages):
            queue.send_message(json.dumps({"n": i}).encode())
        host.drain(timeout=60, idle_sleep=0.05)
        return host.depth("t-pipe")
    finally:
        host.close()


def test_the_next_batch_starts_once_new_batch_threshold_or_fewer_still_run(storage, tmp_path):
    # batchSize 4, newBatchThreshold 2: when two of the first batch ended, the next batch
    # runs beside the two still running, as the Functions host does. A host that waited for
    # the whole batch would leave the 3rd and 4th waiting for the 5th and 6th for ever.
    sixth = threading.Event()
    stuck: list[int] = []

    def on_start(n: int) -> None:
        if n == 6:
            sixth.set()
        if n in (3, 4) and not sixth.wait(20):  # a guard, not a timing: it fails, not hangs
            stuck.append(n)

    assert drained(storage, tmp_path, on_start, 6) == 0
    assert stuck == []
    assert sixth.is_set()


def test_no_more_than_batch_size_plus_new_batch_threshold_run_at_once(storage, tmp_path):
    lock = threading.Lock()
    running = [0, 0]  # now, peak

    def on_start(n: int) -> None:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        time.sleep(0.01)  # long enough to overlap; the assertion holds at any speed
        with lock:
            running[0] -= 1

    assert drained(storage, tmp_path, on_start, 20) == 0
    assert 1 <= running[1] <= 6
