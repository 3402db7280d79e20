"""End to end: the registered functions, driven like the host, on Azurite and the sandbox."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from p2c_cli.azurite import Azurite
from p2c_cli.host import LocalHost
from p2c_cli.local import Summary, sandbox_env, sync
from p2c_core.runtime import Runtime, get_runtime, reset_runtime
from p2c_core.settings import setting_names
from p2c_core.state.storage import Storage
from p2c_sandbox import Sandbox


@dataclass
class E2E:
    sandbox: Sandbox
    host: LocalHost
    runtime: Runtime
    storage: Storage
    env: dict[str, str]

    def sync(self, *flows: str) -> Summary:
        return sync(self.host, self.runtime, list(flows or ["accounts"]))

    def dataverse(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.sandbox.dataverse_url + "/api/data/v9.2/",
            headers={"OData-Version": "4.0", "Accept": "application/json"},
        )

    def restart_runtime(self) -> None:
        """Re-read settings (after a test changes one), as a new worker process would."""
        self.host.close()
        reset_runtime()
        import function_app

        self.runtime = get_runtime()
        self.host = LocalHost(function_app.app, self.runtime.storage, lease_seconds=2)


SPANS = InMemorySpanExporter()
READER = InMemoryMetricReader()
_otel_installed = False


@pytest.fixture(scope="session")
def otel() -> tuple[InMemorySpanExporter, InMemoryMetricReader]:
    """In-memory OpenTelemetry providers; the global ones can be set once per process."""
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from p2c_core import telemetry

    global _otel_installed
    if not _otel_installed:  # once: tests/security re-exports this fixture, a session fixture of its own
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(SPANS))
        trace.set_tracer_provider(provider)
        metrics.set_meter_provider(MeterProvider(metric_readers=[READER]))
        telemetry.reset_for_tests()
        _otel_installed = True
    return SPANS, READER


@pytest.fixture
def sandbox_options() -> dict[str, object]:
    """Keyword arguments of the test's Sandbox; a test module overrides it (an org without the solution)."""
    return {}


@pytest.fixture
def e2e(
    azurite: Azurite, storage: Storage, monkeypatch: pytest.MonkeyPatch, sandbox_options: dict[str, object]
) -> Iterator[E2E]:
    import function_app

    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    with Sandbox(data_dir=None, fno_company="usmf", **sandbox_options) as sb:  # type: ignore[arg-type]
        env = sandbox_env(azurite.connection_string, sb.dataverse_url, sb.fno_url)
        env["P2C_APPLY_LEASE_SECONDS"] = "2"
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        reset_runtime()
        runtime = get_runtime()
        host = LocalHost(function_app.app, runtime.storage, lease_seconds=2)
        box = E2E(sb, host, runtime, storage, env)
        try:
            yield box
        finally:
            box.host.close()
            reset_runtime()
