"""The effective mapping of a flow: the standard one with the deployment's overlay, row by row."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from p2c_core.flow import Flow
    from p2c_core.rules import Rule
    from p2c_core.runtime import Runtime


@dataclass
class MappingRow:
    target: str  # the target field
    kind: str  # the rule kind: field, const, value_map, ...
    source: str  # the source columns it reads, or its value
    when: str  # "always", "on create", "line", "line, on create"
    origin: str  # "standard", "overlay" or "overlay (<company>)" (a change for one company only)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _describe(rule: Rule) -> tuple[str, str]:
    kind = type(rule).__name__
    columns = ", ".join(rule.columns())
    extra = [
        f"{f.name}={getattr(rule, f.name)!r}"
        for f in fields(rule)  # type: ignore[arg-type]
        if f.name not in ("column", "inputs") and getattr(rule, f.name) not in (None, False)
    ]
    return kind, " ".join(filter(None, [columns, *extra]))


def effective(rt: Runtime, flow_name: str) -> list[MappingRow]:
    """Every target field of the flow as it runs here, with where its rule comes from."""
    flow = rt.flow(flow_name)
    overlay = rt.settings.overlay()
    groups: list[tuple[str, dict[str, Rule]]] = [("always", dict(flow.fields)), ("on create", dict(flow.on_create))]
    if flow.lines is not None:
        groups += [("line", dict(flow.lines.fields)), ("line, on create", dict(flow.lines.on_create))]
    rows = []
    for when, rules in groups:
        for target, rule in rules.items():
            kind, source = _describe(rule)
            origin = overlay.origin(flow.name, target) if not when.startswith("line") else "standard"
            rows.append(MappingRow(target, kind, source, when, origin))
    return rows + _company_rows(rt, flow)


def _company_rows(rt: Runtime, flow: Flow) -> list[MappingRow]:
    """Fields an overlay change for one company sets, once more, with origin `overlay (<company>)`."""
    overlay = rt.settings.overlay()
    rows = []
    for company in overlay.companies:
        mapped = rt.company_flow(flow, company)
        for when, rules in (("always", mapped.fields), ("on create", mapped.on_create)):
            for target, rule in rules.items():
                origin = overlay.origin(flow.name, target, company)
                if origin == f"overlay ({company})":
                    rows.append(MappingRow(target, *_describe(rule), when, origin))
    return rows
