"""Traces and metrics with OpenTelemetry: one span per poll and per apply, a child span per
HTTP call, counters for records synced, failures and throttles, and a lag histogram.

Exported to Application Insights when `APPLICATIONINSIGHTS_CONNECTION_STRING` is set (with
the app's identity when `APPLICATIONINSIGHTS_AUTHENTICATION_STRING` names one); otherwise the
OpenTelemetry API is a no-op and costs next to nothing. Attributes carry flow, run id,
record key, status and request ids: never a header, token or secret.
"""

from __future__ import annotations

import contextvars
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import metrics, trace

log = logging.getLogger("p2c.telemetry")
CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"

_configured = False
_lock = threading.Lock()


def configure() -> None:
    """Install the Azure Monitor exporters once per process, if a connection string is set."""
    global _configured
    with _lock:
        if _configured:
            return
        _configured = True
        connection = os.environ.get(CONNECTION_STRING)
        if not connection:
            return
        from azure.monitor.opentelemetry.exporter import AzureMonitorMetricExporter, AzureMonitorTraceExporter
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        credential = _credential()
        resource = Resource.create({"service.name": "p2c"})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(
            BatchSpanProcessor(AzureMonitorTraceExporter(connection_string=connection, credential=credential))
        )
        trace.set_tracer_provider(tracer_provider)
        reader = PeriodicExportingMetricReader(
            AzureMonitorMetricExporter(connection_string=connection, credential=credential)
        )
        metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=[reader]))
        log.info("telemetry exported to Application Insights")


def _credential() -> Any:
    """The managed identity named by APPLICATIONINSIGHTS_AUTHENTICATION_STRING, if any."""
    auth = os.environ.get(AUTHENTICATION_STRING, "")
    parts = dict(p.split("=", 1) for p in auth.split(";") if "=" in p)
    if parts.get("Authorization") != "AAD":
        return None
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=parts.get("ClientId"))


# How the current invocation's logs are claimed in another thread: the Python worker keeps a
# log record only when its thread names the invocation ("Logging from background threads",
# Azure Functions Python developer guide: set context.thread_local_storage.invocation_id).
# function_app passes the setter; p2c_core never imports azure.functions.
_bind_thread: contextvars.ContextVar[Callable[[], None] | None] = contextvars.ContextVar(
    "p2c_bind_thread", default=None
)


@contextmanager
def invocation(bind_thread: Callable[[], None] | None) -> Iterator[None]:
    """Run a function body whose worker threads call `bind_thread()` first (see thread_started)."""
    token = _bind_thread.set(bind_thread)
    try:
        yield
    finally:
        _bind_thread.reset(token)


def thread_started() -> None:
    """Called first in a pool task (which runs in a copy of the submitting context)."""
    bind = _bind_thread.get()
    if bind is not None:
        bind()


def tracer() -> trace.Tracer:
    return trace.get_tracer("p2c")


@contextmanager
def span(name: str, **attributes: Any) -> Iterator[trace.Span]:
    with tracer().start_as_current_span(name, attributes=_clean(attributes)) as current:
        yield current


def _clean(attributes: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in attributes.items() if v is not None}


class Metrics:
    """The p2c instruments, created lazily against whatever meter provider is current."""

    def __init__(self) -> None:
        meter = metrics.get_meter("p2c")
        self.records = meter.create_counter("p2c.records", unit="1", description="records by flow and outcome")
        self.failures = meter.create_counter("p2c.failures", unit="1", description="failed records by flow")
        self.throttles = meter.create_counter("p2c.throttles", unit="1", description="429 answers by service")
        self.lag = meter.create_histogram(
            "p2c.lag", unit="s", description="seconds from a change (its event, or a poll enqueuing it) to its write"
        )


_metrics: Metrics | None = None


def instruments() -> Metrics:
    global _metrics
    if _metrics is None:
        _metrics = Metrics()
    return _metrics


def reset_for_tests() -> None:
    """Forget instruments so a test's meter provider gets fresh ones."""
    global _metrics
    _metrics = None
