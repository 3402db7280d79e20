"""When a target value already equals the one p2c would write: one answer for the writer
(which skips equal line fields) and for `plan` and `reconcile` (which report drift).

Numbers are equal within a rounding's breadth (services store decimals that come back as
floats); GUIDs and natural keys are equal whatever their case (Dataverse's are case-blind).
"""

from __future__ import annotations

from typing import Any

# Services keep money to 2-4 decimals and quantities to a few more: closer than this is equal.
TOLERANCE = 1e-9


def same(now: Any, new: Any) -> bool:
    """Whether the target's value `now` already is `new`."""
    if isinstance(now, bool) or isinstance(new, bool):
        return now == new
    if isinstance(now, int | float) and isinstance(new, int | float):
        return abs(float(now) - float(new)) < TOLERANCE
    return now == new


def bound_id(path: Any) -> str | None:
    """`/pricelevels(<GUID>)` -> the GUID, lower-cased as Dataverse returns lookups."""
    if not isinstance(path, str) or "(" not in path:
        return None
    return path.rsplit("(", 1)[1].rstrip(")").lower()


def identity(value: Any) -> Any:
    """A key as compared: strings case-blind, whole floats as ints, tuples element-wise."""
    if isinstance(value, tuple):
        return tuple(identity(v) for v in value)
    if isinstance(value, str):
        return value.lower()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
