"""The flow registry, in dependency order. Stdlib-only imports: read at every cold start."""

from p2c_core.flow import Flow
from p2c_core.flows.accounts import accounts

FLOWS: tuple[Flow, ...] = (accounts,)
BY_NAME: dict[str, Flow] = {f.name: f for f in FLOWS}


def get_flow(name: str) -> Flow:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown flow {name!r}; known: {', '.join(BY_NAME)}") from None
