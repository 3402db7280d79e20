"""Whether a flow runs: enabled by settings, paused by a setting or by an operator."""

from __future__ import annotations

from typing import TYPE_CHECKING

from p2c_core.flow import Flow

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime


def paused(rt: Runtime, flow: Flow) -> bool:
    return rt.settings.flow(flow.name).paused or rt.state.is_paused(flow.name)
