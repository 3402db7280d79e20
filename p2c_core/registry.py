"""The flow registry: every `Flow` defined in the modules of a package's folders, checked
and put in dependency order. Adding a flow is adding a module; nothing else lists flows.

Stdlib only: built at every cold start, when function_app registers the functions.
"""

from __future__ import annotations

import graphlib
import importlib
import pkgutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import ModuleType

from p2c_core.errors import FlowError
from p2c_core.flow import Flow
from p2c_core.suggest import did_you_mean


@dataclass(frozen=True)
class Registry:
    """Flows by name, in an order where every flow comes after those it depends on."""

    flows: tuple[Flow, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.flows)

    def get(self, name: str) -> Flow:
        for flow in self.flows:
            if flow.name == name:
                return flow
        raise KeyError(f"unknown flow {name!r}{did_you_mean(name, self.names)}")

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows)


def build(flows: Iterable[Flow]) -> Registry:
    """Check names and dependencies; order by dependency (ties by name, so the order is stable)."""
    by_name: dict[str, Flow] = {}
    for flow in flows:
        if flow.name in by_name and by_name[flow.name] is not flow:
            raise FlowError(f"two flows are named {flow.name!r}")
        by_name[flow.name] = flow
    for flow in by_name.values():
        for dependency in flow.depends_on:
            if dependency not in by_name:
                raise FlowError(
                    f"flow {flow.name!r} depends on unknown flow {dependency!r}{did_you_mean(dependency, by_name)}"
                )
    sorter = graphlib.TopologicalSorter({f.name: f.depends_on for f in by_name.values()})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise FlowError(f"flows depend on each other in a cycle: {' -> '.join(exc.args[1])}") from None
    ordered: list[Flow] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered += [by_name[name] for name in ready]
        sorter.done(*ready)
    return Registry(tuple(ordered))


def flows_in(module: ModuleType) -> list[Flow]:
    """The flows a module holds at its top level."""
    return [v for v in vars(module).values() if isinstance(v, Flow)]


def discover(package: str, paths: Iterable[str]) -> Registry:
    """Import every module in `paths` (folders on `package.__path__`) and register its flows.

    A flow imported into another flow module (to share its parts) is registered once.
    """
    found: dict[int, Flow] = {}
    for info in sorted(pkgutil.iter_modules(list(paths)), key=lambda i: i.name):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"{package}.{info.name}")
            found.update((id(flow), flow) for flow in flows_in(module))
    return build(found.values())
