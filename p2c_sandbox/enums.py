"""F&O enum types and their members, from `data/fno-enums.json` (each with its source).

An enum whose members no public source lists would have `None` (today every enum has its
members): it is published without members and takes any string (docs/fidelity.md).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


@cache
def fno_enums() -> dict[str, tuple[tuple[str, int], ...] | None]:
    """Enum name -> its members (name, value) in value order, or None where unknown."""
    raw = json.loads((DATA / "fno-enums.json").read_text())["enums"]
    return {
        name: None if spec["members"] is None else tuple((m["name"], int(m["value"])) for m in spec["members"])
        for name, spec in raw.items()
    }


def member_names(enum: str) -> tuple[str, ...] | None:
    members = fno_enums().get(enum)
    return None if members is None else tuple(name for name, _ in members)
