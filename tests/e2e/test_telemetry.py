"""Telemetry: a span per poll and per apply, child spans per HTTP call, and counters."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import E2E, READER, SPANS


@pytest.fixture(autouse=True)
def _providers(otel: object) -> None:
    """Every test here records into the session's in-memory providers."""


def counter_values(name: str) -> dict[tuple[tuple[str, str], ...], int]:
    data: Any = READER.get_metrics_data()
    out: dict[tuple[tuple[str, str], ...], int] = {}
    for rm in data.resource_metrics if data else []:
        for sm in rm.scope_metrics:
            for metric in sm.metrics:
                if metric.name == name:
                    for point in metric.data.data_points:
                        out[tuple(sorted((k, str(v)) for k, v in (point.attributes or {}).items()))] = int(point.value)
    return out


def test_spans_nest_http_calls_under_poll_and_apply(e2e: E2E):
    SPANS.clear()
    summary = e2e.sync("accounts")
    spans: list[Any] = list(SPANS.get_finished_spans())
    polls = [s for s in spans if s.name == "p2c poll"]
    applies = [s for s in spans if s.name == "p2c apply"]
    assert len(polls) == 1 and applies
    poll = polls[0]
    assert poll.attributes is not None and poll.attributes["p2c.flow"] == "accounts"
    children = [s for s in spans if s.parent is not None and s.parent.span_id == poll.context.span_id]
    assert children and all(s.name.startswith("dataverse ") for s in children)
    fno_calls = [s for s in spans if s.name.startswith("fno ")]
    apply_ids = {s.context.span_id for s in applies}
    assert fno_calls and all(s.parent is not None and s.parent.span_id in apply_ids for s in fno_calls)
    assert any((s.attributes or {}).get("p2c.request_id") for s in fno_calls)
    written = sum(int((s.attributes or {}).get("p2c.written", 0)) for s in applies)
    assert written == summary.flows["accounts"].written
    for s in spans:  # nothing that could carry a credential
        assert not any("authorization" in k.lower() or "token" in k.lower() for k in (s.attributes or {}))


def test_counters_count_records_and_failures(e2e: E2E):
    summary = e2e.sync("accounts")
    records = counter_values("p2c.records")
    written = sum(v for k, v in records.items() if ("outcome", "written") in k and ("flow", "accounts") in k)
    assert written >= summary.flows["accounts"].written > 0
    failures = counter_values("p2c.failures")
    assert sum(failures.values()) >= summary.flows["accounts"].failed > 0
