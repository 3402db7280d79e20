"""Telemetry is silent without a connection string and exports with one (run in subprocesses:
the global providers can be set once per process)."""

from __future__ import annotations

import os
import subprocess
import sys

CODE = (
    "from opentelemetry import trace; from p2c_core import telemetry; telemetry.configure(); "
    "print(type(trace.get_tracer_provider()).__name__)"
)


def provider_with(env: dict[str, str]) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("APPLICATIONINSIGHTS_")}
    out = subprocess.run([sys.executable, "-c", CODE], env={**clean, **env}, capture_output=True, text=True,
                         check=True, timeout=60)  # fmt: skip
    return out.stdout.strip().splitlines()[-1]


def test_silent_without_connection_string():
    assert provider_with({}) == "ProxyTracerProvider"


def test_exports_to_application_insights_with_a_connection_string():
    # A loopback ingestion endpoint nobody listens on: nothing leaves the machine.
    conn = "InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=http://127.0.0.1:9/"
    assert provider_with({"APPLICATIONINSIGHTS_CONNECTION_STRING": conn}) == "TracerProvider"


def test_pool_tasks_started_in_an_invocation_call_its_thread_binder():
    import contextvars
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from p2c_core import telemetry

    bound: list[str] = []

    def task() -> None:
        telemetry.thread_started()

    with ThreadPoolExecutor(max_workers=2) as pool:
        with telemetry.invocation(lambda: bound.append(threading.current_thread().name)):
            pool.submit(contextvars.copy_context().run, task).result()
        pool.submit(contextvars.copy_context().run, task).result()  # outside: nothing to call
    assert len(bound) == 1 and bound[0] != threading.current_thread().name
