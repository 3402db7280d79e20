"""A local stand-in for the Functions host that drives the *registered* functions.

Like the host: timers fire, queue messages (base64) are dequeued with a lease, deleted
on success, made visible again after `visibilityTimeout` on failure, and moved to
`<queue>-poison` after `maxDequeueCount` deliveries. Settings come from host.json.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from p2c_core.hostconfig import DEFAULT_MAX_DEQUEUE_COUNT, HOST_JSON, queue_settings, timespan_seconds
from p2c_core.state.storage import Storage
from p2c_core.waiting import Watch

log = logging.getLogger("p2c.host")

# (messages handled so far, messages still queued)
Progress = Callable[[int, int], None]
# (flow, phase "poll" | "apply", handled, queued)
FlowProgress = Callable[[str, str, int, int], None]


@dataclass
class Registered:
    name: str
    kind: str  # "timer" | "queue"
    call: Callable[..., Any]
    arg_name: str
    queue: str | None = None
    schedule: str | None = None
    # The function takes the worker's `context` (a parameter named so, as the worker passes it).
    wants_context: bool = False


class LocalContext:
    """The part of the Python worker's invocation context p2c uses: the invocation id and the
    thread-local storage that names it for the worker's log handler."""

    def __init__(self, invocation_id: str, thread_local_storage: threading.local) -> None:
        self.invocation_id = invocation_id
        self.thread_local_storage = thread_local_storage


_INDEX: dict[int, tuple[func.FunctionApp, list[func.Function]]] = {}


def indexed(app: func.FunctionApp) -> list[func.Function]:
    """`app.get_functions()`, called once per app: a second call fails on duplicate names."""
    if id(app) not in _INDEX:
        _INDEX[id(app)] = (app, app.get_functions())
    return _INDEX[id(app)][1]


def registered(app: func.FunctionApp) -> list[Registered]:
    """The app's trigger functions as the host indexes them."""
    out: list[Registered] = []
    for fn in indexed(app):
        trigger = fn.get_trigger()
        if trigger is None:
            continue
        spec = trigger.get_dict_repr()
        kind = {"timerTrigger": "timer", "queueTrigger": "queue"}.get(spec["type"])
        if kind is None:
            continue
        out.append(
            Registered(
                name=fn.get_function_name() or fn.get_user_function().__name__,
                kind=kind,
                call=fn.get_user_function(),
                arg_name=spec["name"],
                queue=spec.get("queueName"),
                schedule=spec.get("schedule"),
                wants_context="context" in inspect.signature(fn.get_user_function()).parameters,
            )
        )
    return out


class LocalHost:
    def __init__(
        self,
        app: func.FunctionApp,
        storage: Storage,
        *,
        host_json: Path = HOST_JSON,
        lease_seconds: float = 60.0,
        concurrency: int | None = None,
    ) -> None:
        self.storage = storage
        self.functions = registered(app)
        queues = queue_settings(host_json)
        self.max_dequeue = int(queues.get("maxDequeueCount", DEFAULT_MAX_DEQUEUE_COUNT))
        self.visibility_timeout = timespan_seconds(str(queues.get("visibilityTimeout", "00:00:00")))
        self.batch_size = int(queues.get("batchSize", 16))
        self.lease_seconds = lease_seconds
        self._pool = ThreadPoolExecutor(max_workers=concurrency or self.batch_size)
        # One storage for every invocation, as the worker keeps one per process.
        self.thread_local_storage = threading.local()

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def timers(self) -> list[Registered]:
        return [f for f in self.functions if f.kind == "timer"]

    def queue_functions(self) -> list[Registered]:
        return [f for f in self.functions if f.kind == "queue"]

    def fire(self, fn: Registered) -> bool:
        """Run a timer function once; like the host, a failed run is logged, not raised."""
        try:
            fn.call(**{fn.arg_name: TimerRequest(past_due=False)})
        except Exception as exc:
            log.warning("%s failed; the next tick retries: %s", fn.name, exc)
            return False
        return True

    def pump(self, fn: Registered) -> int:
        """One batch from fn's queue, like one host poll; returns messages handled."""
        assert fn.queue is not None
        client = self.storage.queue(fn.queue)
        batch = list(
            client.receive_messages(
                messages_per_page=min(32, self.batch_size),
                max_messages=self.batch_size,
                visibility_timeout=int(self.lease_seconds),
            )
        )
        if not batch:
            return 0
        list(self._pool.map(lambda m: self._deliver(fn, m), batch))
        return len(batch)

    def _deliver(self, fn: Registered, message: Any) -> None:
        assert fn.queue is not None
        client = self.storage.queue(fn.queue)
        msg = QueueMessage(
            id=message.id,
            body=message.content,
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            pop_receipt=message.pop_receipt,
        )
        args: dict[str, Any] = {fn.arg_name: msg}
        if fn.wants_context:
            args["context"] = LocalContext(str(uuid.uuid4()), self.thread_local_storage)
        try:
            fn.call(**args)
        except Exception as exc:
            if (message.dequeue_count or 1) >= self.max_dequeue:
                poison = f"{fn.queue}-poison"
                self.storage.queue(poison).send_message(message.content)
                client.delete_message(message)
                log.warning("%s: message %s moved to %s: %s", fn.name, message.id, poison, exc)
            else:
                client.update_message(message, visibility_timeout=int(self.visibility_timeout))
                log.info("%s: message %s failed, retried later: %s", fn.name, message.id, exc)
            return
        client.delete_message(message)

    def depth(self, queue: str) -> int:
        """Messages in the queue, visible or not (approximate, as Azure reports it)."""
        props = self.storage.queue(queue).get_queue_properties()
        return int(props.approximate_message_count or 0)

    def drain(
        self,
        functions: Iterable[Registered] | None = None,
        *,
        timeout: float = 600.0,
        idle_sleep: float = 0.25,
        progress: Progress | None = None,
        watch: Watch | None = None,
        settle: float = 30.0,
        raise_on_timeout: bool = True,
    ) -> int:
        """Run queue functions until their queues are empty, including delayed messages;
        returns the messages left in them.

        With a `watch`, it stops as soon as every message left is parked (waiting for a
        record of another flow, or for its paused flow), or when none came due for `settle`
        seconds (retries parked by an earlier process, unseen here): those wait for a later run.
        `progress(messages handled, messages still queued)` is called after every batch.
        """
        fns = list(functions) if functions is not None else self.queue_functions()
        flows = {fn.name.removesuffix("_apply") for fn in fns}
        deadline = time.monotonic() + timeout
        done = 0
        busy = time.monotonic()
        while True:
            handled = sum(self.pump(fn) for fn in fns)
            done += handled
            if handled:
                busy = time.monotonic()
            # Checked while busy too: records that keep coming back (waiting for another
            # flow's records) must not hold the caller here forever.
            late = time.monotonic() > deadline
            if handled and progress is None and not late:
                continue
            queued = sum(self.depth(fn.queue or "") for fn in fns)
            if progress is not None:
                progress(done, queued)
            if queued == 0:
                return 0
            parked_only = watch is not None and queued <= len(watch.parked(flows))
            if not handled and watch is not None and (parked_only or time.monotonic() - busy > settle):
                return queued
            if late:
                if raise_on_timeout:
                    raise TimeoutError(f"queues not drained within {timeout:.0f}s")
                return queued
            if not handled:
                time.sleep(idle_sleep)

    def run_flows(
        self,
        flow_names: Iterable[str],
        progress: FlowProgress | None = None,
        *,
        timeout: float = 600.0,
        watch: Watch | None = None,
        settle: float = 30.0,
    ) -> int:
        """Poll and drain each flow in order (dependency order), then drain everything;
        `timeout` bounds each drain. With a `watch`, returns the messages left queued
        (parked ones, or what a drain that ran out of time left); without, TimeoutError."""
        by_name = {f.name: f for f in self.functions}
        for name in flow_names:
            if progress is not None:
                progress(name, "poll", 0, 0)
            self.fire(by_name[f"{name}_poll"])
            report = None if progress is None else partial(progress, name, "apply")
            self.drain([by_name[f"{name}_apply"]], progress=report, timeout=timeout, watch=watch,
                       settle=settle, raise_on_timeout=watch is None)  # fmt: skip
        return self.drain(timeout=timeout, watch=watch, settle=settle, raise_on_timeout=watch is None)
