"""Walking the parsed Bicep (pycep's tree) for the deployment tests."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

INFRA = Path(__file__).resolve().parents[2] / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))


@cache
def _parsed(path: Path) -> dict[str, Any]:
    return dict(BicepParser().parse(text=path.read_text()))


def parsed(name: str) -> dict[str, Any]:
    """A file of infra/ by its path there, e.g. "modules/functionapp.bicep"."""
    return _parsed(INFRA / name)


def body(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource's properties, unwrapping the `if (...)` and `for` forms."""
    config = resource["config"]
    while "config" in config and ("condition" in config or "loop_type" in config):
        config = config["config"]
    return config


def condition(declaration: dict[str, Any]) -> Any:
    return declaration["config"].get("condition")


def resources_of(type_: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(file, symbol, resource) for every resource of that type in infra/."""
    for path in BICEP_FILES:
        for symbol, resource in parsed(str(path.relative_to(INFRA)))["resources"].items():
            if resource["type"] == type_:
                yield str(path.relative_to(INFRA)), symbol, resource


def site() -> dict[str, Any]:
    (found,) = [body(r) for _, _, r in resources_of("Microsoft.Web/sites") if not r.get("existing")]
    return found


def app_settings() -> dict[str, Any]:
    return {s["name"]: s["value"] for s in site()["properties"]["siteConfig"]["appSettings"]}


def accessor(expr: Any) -> list[str]:
    """`a.b.c` as ["a", "b", "c"]; [] for anything else."""
    if isinstance(expr, str):
        return [expr]
    if isinstance(expr, dict) and expr.get("operator", {}).get("type") == "property_accessor":
        operands = expr["operator"]["operands"]
        return accessor(operands["operand_1"]) + accessor(operands["operand_2"])
    return []


def function(expr: Any) -> tuple[str, dict[str, Any]] | None:
    if isinstance(expr, dict) and "function" in expr:
        return expr["function"]["type"], expr["function"]["parameters"]
    return None


def texts(node: Any) -> Iterator[str]:
    """Every string in a subtree (names, literals, interpolation parts)."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from texts(value)
    elif isinstance(node, list):
        for value in node:
            yield from texts(value)
