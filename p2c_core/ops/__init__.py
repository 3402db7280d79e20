"""Operating a deployment: controls and status, `check`, and drift (`plan`, `reconcile`)."""

from p2c_core.ops.check import CheckProblem, check
from p2c_core.ops.drift import Drift, PlannedChange, plan, reconcile
from p2c_core.ops.status import FlowStatus, failures, flow_status, replay, reset_cursor, set_paused, status

__all__ = [
    "CheckProblem",
    "Drift",
    "FlowStatus",
    "PlannedChange",
    "check",
    "failures",
    "flow_status",
    "plan",
    "reconcile",
    "replay",
    "reset_cursor",
    "set_paused",
    "status",
]
