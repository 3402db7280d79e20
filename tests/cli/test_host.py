"""The local host drives registered functions as the Functions host does (on Azurite)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import azure.functions as func

from p2c_cli.host import LocalHost


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
