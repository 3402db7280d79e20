"""OData literals and key segments, escaped so any value (`O'Brien`, `A/B#1`) is safe."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# Characters left as-is inside a key segment; everything else (/, #, %, ?, &, +, space,
# non-ASCII) is percent-encoded so the segment survives any proxy and path parsing.
_SAFE = "(),='-_.~*:!$"


def literal(value: str | int | float | bool | None) -> str:
    """An OData literal: strings single-quoted with embedded quotes doubled."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


def entity_type(entity_set: str) -> str:
    """A Dataverse table's logical name from its entity set: `accounts` -> `account`."""
    return entity_set[:-3] + "y" if entity_set.endswith("ies") else entity_set.removesuffix("s")


def id_column(entity_set: str) -> str:
    """A Dataverse table's primary key: `accounts` -> `accountid`, `uoms` -> `uomid`."""
    return f"{entity_type(entity_set)}id"


def is_guid(value: str) -> bool:
    return bool(_GUID.match(value))


def key_segment(entity_set: str, key: Mapping[str, str | int] | str) -> str:
    """`entity(k='v',...)` or `entity(<guid>)`, percent-encoded for a URL path."""
    if isinstance(key, str):
        if not is_guid(key):
            raise ValueError(f"not a GUID primary key: {key!r}")
        inner = key
    else:
        inner = ",".join(f"{name}={literal(value)}" for name, value in key.items())
    return quote(f"{entity_set}({inner})", safe=_SAFE)
