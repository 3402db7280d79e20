"""p2c_core: the Prospect to cash sync engine, flows, clients and state.

The public surface is re-exported here, lazily: `function_app` imports `p2c_core.flows` at
every cold start, so heavy modules (pydantic, httpx, Azure SDKs) load only when a name from
them is first used (`p2c_core.Settings`, `p2c_core.poll`, ...).
"""

from __future__ import annotations

import importlib
from typing import Any

# public name -> the module that defines it
_EXPORTS: dict[str, str] = {
    # a flow, as data
    **dict.fromkeys(
        ["Flow", "Dataverse", "FinOps", "Lines", "HeaderLine", "Where", "Eq", "Ne", "In", "Endpoint"], "p2c_core.flow"
    ),
    **dict.fromkeys(
        ["Rule", "Field", "Const", "Default", "ValueMap", "Calc", "Lookup", "Ref", "Bind", "PriceList", "Reference"],
        "p2c_core.rules",
    ),
    **dict.fromkeys(["all_flows", "get_flow"], "p2c_core.flows"),
    "Registry": "p2c_core.registry",
    # running flows (poll, apply and replay themselves: `p2c_core.engine`; here they would be
    # shadowed by the submodules of the same names)
    **dict.fromkeys(["Outcome", "Counts"], "p2c_core.engine"),
    **dict.fromkeys(["Runtime", "get_runtime", "reset_runtime"], "p2c_core.runtime"),
    **dict.fromkeys(["Settings", "load_settings", "get_settings"], "p2c_core.settings"),
    **dict.fromkeys(["StateStore", "Cursor", "KeyMapEntry", "Failure", "Run"], "p2c_core.state"),
    **dict.fromkeys(["Envelope", "Record"], "p2c_core.envelope"),
    # errors
    **dict.fromkeys(
        [
            "P2CError",
            "SettingsError",
            "FlowError",
            "MappingError",
            "MessageError",
            "DependencyMissing",
            "ODataError",
            "TransientError",
            "ThrottledError",
            "PermanentError",
        ],
        "p2c_core.errors",
    ),
}

__all__ = sorted(_EXPORTS)  # pyright: ignore[reportUnsupportedDunderAll]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'p2c_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
