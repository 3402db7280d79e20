"""What one poll or apply did: counts, a run id, and where they are reported (run history,
metrics, structured log fields)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from p2c_core import telemetry
from p2c_core.flow import Flow
from p2c_core.state import Run, now

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime


@dataclass
class Counts:
    read: int = 0
    enqueued: int = 0
    written: int = 0
    skipped: int = 0
    failed: int = 0
    retried: int = 0
    deferred: int = 0
    # Source rows deleted or deactivated (whatever the flow's ON_DELETE does with them).
    removed: int = 0
    # Source rows outside every mapped business unit / company (P2C_COMPANIES): skipped too.
    outside: int = 0

    def as_dict(self) -> dict[str, int]:
        return {k: v for k, v in self.__dict__.items() if v}

    def add(self, other: Counts) -> None:
        for name, value in other.__dict__.items():
            setattr(self, name, getattr(self, name) + value)


@dataclass
class Outcome:
    flow: str
    kind: str
    counts: Counts = field(default_factory=Counts)
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    # p2c.lag of what this apply wrote (s): from the source change (a pushed event's time) or
    # from the poll's enqueue; kept in the run as `lag_ms` for `status`.
    lag_s: float | None = None


def log_fields(flow: Flow, out: Outcome, key: str | None = None) -> dict[str, str]:
    """Structured log fields (customDimensions in Application Insights)."""
    fields = {"p2c.flow": flow.name, "p2c.run_id": out.run_id, "p2c.kind": out.kind}
    if key is not None:
        fields["p2c.key"] = key
    return fields


def count_metrics(flow: Flow, out: Outcome) -> None:
    meters = telemetry.instruments()
    for outcome, n in out.counts.as_dict().items():
        meters.records.add(n, {"flow": flow.name, "outcome": outcome})
    if out.counts.failed:
        meters.failures.add(out.counts.failed, {"flow": flow.name})


def record_run(rt: Runtime, out: Outcome, started: str, error: str | None) -> None:
    rt.state.record_run(
        Run(
            flow=out.flow,
            kind=out.kind,
            run_id=out.run_id,
            started=started,
            ended=now().isoformat(),
            counts=out.counts.as_dict() | ({"lag_ms": round(out.lag_s * 1000)} if out.lag_s is not None else {}),
            status="error" if error else "ok",
            error=error,
        )
    )
