"""Run history: one row per poll or apply run, newest first."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from p2c_core.state.tables import RUNS, table

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from p2c_core.state.storage import Storage

# Row keys sort ascending; an inverted start time (ms) puts the newest run first.
_INVERT_FROM = 10**13


def _inverted(moment: datetime) -> str:
    return f"{_INVERT_FROM - int(moment.timestamp() * 1000):013d}"


@dataclass
class Run:
    """One poll or apply run of a flow and what it counted."""

    flow: str
    kind: str  # "poll" | "apply"
    run_id: str
    started: str
    ended: str = ""
    counts: dict[str, int] = field(default_factory=dict)
    status: str = "ok"
    error: str | None = None


class RunStore:
    """`p2cruns`: per flow, rows keyed `<inverted start ms>-<run id>` so a query reads newest first."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def _table(self) -> TableClient:
        return table(self.storage, RUNS)

    def record(self, run: Run) -> None:
        self._table().upsert_entity(
            {
                "PartitionKey": run.flow,
                "RowKey": f"{_inverted(datetime.fromisoformat(run.started))}-{run.run_id}",
                "kind": run.kind,
                "run_id": run.run_id,
                "started": run.started,
                "ended": run.ended,
                "status": run.status,
                "error": run.error,
                "counts": json.dumps(run.counts),
            }
        )

    def query(self, flow: str, *, since: datetime | None = None, limit: int | None = None) -> list[Run]:
        """The flow's runs, newest first: those started at or after `since`, at most `limit`."""
        query = "PartitionKey eq @f"
        params: dict[str, Any] = {"f": flow}
        if since is not None:
            query += " and RowKey le @r"
            params["r"] = f"{_inverted(since)}~"  # `~` sorts after the `-<run id>` of that ms
        out: list[Run] = []
        for r in self._table().query_entities(query, parameters=params):
            out.append(
                Run(
                    flow=flow,
                    kind=r["kind"],
                    run_id=r["run_id"],
                    started=r["started"],
                    ended=r.get("ended") or "",
                    counts=json.loads(r.get("counts") or "{}"),
                    status=r.get("status") or "ok",
                    error=r.get("error"),
                )
            )
            if limit is not None and len(out) >= limit:
                break
        return out
