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
