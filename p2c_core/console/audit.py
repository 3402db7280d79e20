"""Every operator action (who, what, when) in the run history table.

Kept in a partition of its own (`console-actions`, beside each flow's runs): the flows'
runs stay as the engine writes them, so a replay never hides a flow's failed last run
from `status`.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from p2c_core.state import RUNS, now

if TYPE_CHECKING:
    from p2c_core.state.storage import Storage

PARTITION = "console-actions"


@dataclass
class Action:
    actor: str
    action: str  # "replay" | "pause" | "resume" | "reset-cursor"
    flow: str | None
    detail: dict[str, Any] = field(default_factory=dict)
    at: str = ""
    status: str = "ok"  # "ok" | "error"
    error: str | None = None
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])


def _row_key(at: datetime, action_id: str) -> str:
    # Newest first, as the runs are stored.
    return f"{10**13 - int(at.timestamp() * 1000):013d}-{action_id}"


def _table(storage: Storage) -> Any:
    from azure.core.exceptions import ResourceExistsError

    with contextlib.suppress(ResourceExistsError):
        storage.tables.create_table(RUNS)
    return storage.table(RUNS)


def record(storage: Storage, action: Action) -> Action:
    stamp = now()
    action.at = action.at or stamp.isoformat()
    _table(storage).upsert_entity(
        {
            "PartitionKey": PARTITION,
            "RowKey": _row_key(datetime.fromisoformat(action.at), action.id),
            "kind": "action",
            "actor": action.actor,
            "action": action.action,
            "flow": action.flow or "",
            "detail": json.dumps(action.detail, default=str),
            "started": action.at,
            "status": action.status,
            "error": action.error,
        }
    )
    return action


def history(storage: Storage, flow: str | None = None, limit: int = 50) -> list[Action]:
    """The newest actions first, of one flow or of all."""
    query = "PartitionKey eq @p" + (" and flow eq @f" if flow else "")
    params = {"p": PARTITION, **({"f": flow} if flow else {})}
    out: list[Action] = []
    for e in _table(storage).query_entities(query, parameters=params):
        out.append(
            Action(
                actor=e["actor"], action=e["action"], flow=e.get("flow") or None,
                detail=json.loads(e.get("detail") or "{}"), at=e["started"], status=e.get("status") or "ok",
                error=e.get("error"), id=e["RowKey"].split("-", 1)[-1],
            )
        )  # fmt: skip
        if len(out) >= limit:
            break
    return out
