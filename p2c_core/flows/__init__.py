"""The flows: one module each in this folder, found, checked and ordered by `p2c_core.registry`.

Adding a flow is adding a module here that defines a `Flow`; its dependencies, settings
(`P2C_FLOWS__<NAME>__*`) and functions follow from the flow itself. Stdlib-only imports:
read at every cold start.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

from p2c_core.flow import Flow
from p2c_core.registry import Registry, discover

_current: Registry = discover(__name__, __path__)


def registry() -> Registry:
    """The registered flows, in dependency order."""
    return _current


def all_flows() -> tuple[Flow, ...]:
    return _current.flows


def get_flow(name: str) -> Flow:
    """A flow by name; KeyError naming the nearest known one."""
    return _current.get(name)


@contextlib.contextmanager
def extended(folder: Path) -> Iterator[Registry]:
    """The registry with the flow modules of one more folder, while the block runs (for
    extensions tried out before they are added here, and for tests)."""
    global _current
    before, path_before = _current, list(__path__)
    loaded = set(sys.modules)
    __path__.append(str(folder))
    try:
        _current = discover(__name__, __path__)
        yield _current
    finally:
        _current = before
        __path__[:] = path_before
        for name in set(sys.modules) - loaded:
            if name.startswith(f"{__name__}."):
                del sys.modules[name]
