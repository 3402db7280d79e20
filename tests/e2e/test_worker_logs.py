"""Logs from the threads that apply records concurrently carry the invocation id.

The Python worker attributes a log record to an invocation through thread-local storage
(`context.thread_local_storage.invocation_id`) and drops one from a thread that names none
("Logging from background threads", Azure Functions Python developer guide). The handler
below reads that storage as the worker's does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest
from azure.functions.queue import QueueMessage

from p2c_cli.host import LocalContext
from p2c_core.envelope import Envelope, Record
from p2c_core.functions import run_apply
from p2c_core.signing import seal
from tests.e2e.conftest import E2E


class WorkerLogHandler(logging.Handler):
    """(message, thread name, invocation id the thread names) for each record logged."""

    def __init__(self, storage: threading.local) -> None:
        super().__init__(logging.INFO)
        self.storage = storage
        self.seen: list[tuple[str, str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        invocation = getattr(self.storage, "invocation_id", None)
        self.seen.append((record.getMessage(), threading.current_thread().name, invocation))


@pytest.fixture
def concurrent(e2e: E2E, monkeypatch: pytest.MonkeyPatch) -> E2E:
    monkeypatch.setenv("P2C_RECORD_CONCURRENCY", "4")
    monkeypatch.setenv("P2C_RECORD_MAX_ATTEMPTS", "1")
    e2e.restart_runtime()
    return e2e


@pytest.fixture(autouse=True)
def p2c_logs_warnings() -> Iterator[None]:
    """The records' failures are WARNING logs: shown whatever an earlier in-process CLI run set
    (`p2c` without -v quiets the p2c logger to ERROR)."""
    logger = logging.getLogger("p2c")
    before = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(before)


def unmappable_quotes(e2e: E2E) -> bytes:
    # Quotes have lines, so their records are applied on the thread pool; these miss every
    # column the mapping needs and fail on their first attempt.
    records = [Record(key=f"QUO-BAD-{n}", version=1, data={"quotenumber": f"QUO-BAD-{n}"}) for n in range(4)]
    return seal(Envelope(flow="quotes", records=records), e2e.runtime.signing_key)  # as p2c's poll sends it


def failures_logged(handler: WorkerLogHandler) -> list[tuple[str, str, str | None]]:
    return [seen for seen in handler.seen if seen[0].startswith("record quotes/QUO-BAD-")]


def test_a_record_failure_logged_from_a_worker_thread_carries_the_invocation_id(concurrent: E2E):
    storage = threading.local()  # the worker's one storage per process
    handler = WorkerLogHandler(storage)
    logging.getLogger().addHandler(handler)
    try:
        apply = next(f for f in concurrent.host.queue_functions() if f.name == "quotes_apply")
        assert apply.wants_context
        apply.call(msg=QueueMessage(body=unmappable_quotes(concurrent)), context=LocalContext("invocation-1", storage))
    finally:
        logging.getLogger().removeHandler(handler)
    logged = failures_logged(handler)
    assert sorted(m.split(" ")[1] for m, _, _ in logged) == [f"quotes/QUO-BAD-{n}" for n in range(4)]
    assert {thread for _, thread, _ in logged} - {threading.current_thread().name}, "applied on worker threads"
    assert {invocation for _, _, invocation in logged} == {"invocation-1"}


def test_without_the_binding_worker_threads_name_no_invocation(concurrent: E2E):
    """The control: the worker would drop these (what the binding fixes)."""
    storage = threading.local()
    storage.invocation_id = "invocation-2"  # set in this thread only, as the worker does
    handler = WorkerLogHandler(storage)
    logging.getLogger().addHandler(handler)
    try:
        run_apply("quotes", unmappable_quotes(concurrent), message_id="m-2", last_attempt=False)
    finally:
        logging.getLogger().removeHandler(handler)
    from_workers = [seen for seen in failures_logged(handler) if seen[1] != threading.current_thread().name]
    assert from_workers and {invocation for _, _, invocation in from_workers} == {None}
