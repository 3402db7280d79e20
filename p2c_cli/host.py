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
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ALL_COMPLETED, FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage
from azure.functions.timer import TimerRequest

from p2c_cli.host_messages import Renewal, settle
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
        # The host fetches the next batch once the messages still running are this few or
        # fewer, so up to batchSize + newBatchThreshold run at once per function (QueuesOptions:
        # https://learn.microsoft.com/dotnet/api/microsoft.azure.webjobs.host.queuesoptions).
        self.new_batch_threshold = int(queues.get("newBatchThreshold", self.batch_size // 2))
        self.lease_seconds = lease_seconds
        self.concurrency = concurrency or self.batch_size + self.new_batch_threshold
        self._pool = ThreadPoolExecutor(max_workers=concurrency or self.batch_size)
        # Per queue function, as the host runs each function's messages apart (drain).
        self._pools: dict[str, ThreadPoolExecutor] = {}
        # The host's listeners, one per queue function, poll side by side.
        self._listeners = ThreadPoolExecutor(max_workers=16, thread_name_prefix="p2c-host-listen")
        # One storage for every invocation, as the worker keeps one per process.
        self.thread_local_storage = threading.local()

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for pool in self._pools.values():
            pool.shutdown(wait=True)
        self._listeners.shutdown(wait=True)

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
        batch = self._receive(fn, self.batch_size)
        if not batch:
            return 0
        list(self._pool.map(lambda m: self._deliver(fn, m), batch))
        return len(batch)

    def _receive(self, fn: Registered, count: int) -> list[Any]:
        assert fn.queue is not None
        client = self.storage.queue(fn.queue)
        return list(
            client.receive_messages(
                messages_per_page=min(32, count), max_messages=count, visibility_timeout=int(self.lease_seconds)
            )
        )

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
            with Renewal(client, message, self.lease_seconds):
                fn.call(**args)
        except Exception as exc:
            if (message.dequeue_count or 1) >= self.max_dequeue:
                poison = f"{fn.queue}-poison"
                self.storage.queue(poison).send_message(message.content)
                settle(lambda: client.delete_message(message), message.id)
                log.warning("%s: message %s moved to %s: %s", fn.name, message.id, poison, exc)
            else:
                release = partial(client.update_message, message, visibility_timeout=int(self.visibility_timeout))
                settle(release, message.id)
                log.info("%s: message %s failed, retried later: %s", fn.name, message.id, exc)
            return
        settle(lambda: client.delete_message(message), message.id)

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
        running: dict[Future[None], Registered] = {}
        done = 0
        busy = time.monotonic()
        try:
            while True:
                received = self._listen(fns, running)
                handled = self._ended(running, block=not received)
                done += handled
                if received or handled:
                    busy = time.monotonic()
                # Checked while busy too: records that keep coming back (waiting for another
                # flow's records) must not hold the caller here forever.
                late = time.monotonic() > deadline
                if running and not late:
                    if handled and progress is not None:
                        progress(done, self._queued(fns))
                    continue
                if running:  # late: what runs ends first
                    last = self._ended(running, block=True, every=True)
                    handled, done = handled + last, done + last
                if (received or handled) and progress is None and not late:
                    continue
                queued = self._queued(fns)
                if progress is not None:
                    progress(done, queued)
                if queued == 0:
                    return 0
                parked_only = watch is not None and queued <= len(watch.parked(flows))
                idle = not received and not handled
                if idle and watch is not None and (parked_only or time.monotonic() - busy > settle):
                    return queued
                if late:
                    if raise_on_timeout:
                        raise TimeoutError(f"queues not drained within {timeout:.0f}s")
                    return queued
                if idle:
                    time.sleep(idle_sleep)
        finally:
            wait(running)  # after an error too: nothing of this drain runs on behind the caller

    def _listen(self, fns: list[Registered], running: dict[Future[None], Registered]) -> int:
        """Like the host's listeners, side by side: a batch for each function whose running
        messages are `newBatchThreshold` or fewer, each message started as it comes;
        returns how many were received."""
        inflight = Counter(fn.name for fn in running.values())
        due = [(fn, room) for fn in fns if inflight[fn.name] <= self.new_batch_threshold
               and (room := min(self.batch_size, self.concurrency - inflight[fn.name])) > 0]  # fmt: skip
        if len(due) == 1:
            batches = [self._receive(*due[0])]
        else:
            batches = list(self._listeners.map(lambda d: self._receive(*d), due))
        for (fn, _), batch in zip(due, batches, strict=True):
            pool = self._pools.get(fn.name)
            if pool is None:
                pool = self._pools[fn.name] = ThreadPoolExecutor(max_workers=self.concurrency)
            for message in batch:
                running[pool.submit(self._deliver, fn, message)] = fn
        return sum(len(b) for b in batches)

    @staticmethod
    def _ended(running: dict[Future[None], Registered], *, block: bool, every: bool = False) -> int:
        """Messages of `running` that ended (waiting for one, or all, with `block`); an error
        of the host's own (a delete that failed) is raised as `pump` raises it."""
        if block and running:
            wait(running, return_when=ALL_COMPLETED if every else FIRST_COMPLETED)
        ended = [f for f in running if f.done()]
        for f in ended:
            del running[f]
        for f in ended:
            f.result()
        return len(ended)

    def _queued(self, fns: list[Registered]) -> int:
        return sum(self._listeners.map(lambda fn: self.depth(fn.queue or ""), fns))

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
