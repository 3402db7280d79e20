"""`check`: reach both services and hold every mapped entity set and field against `$metadata`."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from p2c_core.clients.keys import id_column
from p2c_core.flows import all_flows
from p2c_core.ops.problems import CheckProblem
from p2c_core.suggest import nearest

if TYPE_CHECKING:
    from p2c_core.clients.metadata import EntitySet
    from p2c_core.flow import Flow
    from p2c_core.runtime import Runtime


def check(rt: Runtime, flows: list[Flow] | None = None) -> list[CheckProblem]:
    """Reach both services and check every entity set and field a mapping uses against `$metadata`."""
    from p2c_core.clients.metadata import parse_csdl, parse_enums
    from p2c_core.mapping import Mapper
    from p2c_core.ops.choices import Choices, check_value_maps

    documents = {
        service: client.request("GET", "$metadata", headers={"Accept": "application/xml"}).content
        for service, client in (("dataverse", rt.dataverse.odata), ("fno", rt.fno.odata))
    }
    metadata: dict[str, dict[str, EntitySet]] = {service: parse_csdl(xml) for service, xml in documents.items()}
    choices = Choices(metadata, parse_enums(documents["fno"]), _metadata_api(rt))
    problems = _check_solution(rt, metadata["dataverse"])
    from p2c_core.ops.company_check import check_companies, companies_with_maps

    problems += check_companies(rt)  # P2C_COMPANIES: legal entities, business units / company codes, teams
    for flow in flows if flows is not None else [rt.flow(f.name) for f in all_flows()]:
        source_cols = set(flow.source_columns())
        target_cols = {flow.target.key, *flow.rules()}
        for endpoint, columns in ((flow.source, source_cols), (flow.target, target_cols)):
            problems += _check_columns(flow.name, endpoint.service, endpoint.entity_set, columns, metadata)
        problems += _check_overlaid_fields(rt, flow, metadata)
        problems += [CheckProblem(*p) for p in check_value_maps(flow, choices, Mapper(rt.settings).table)]
        for company in companies_with_maps(rt):  # a company's own value maps, held the same way
            table = functools.partial(Mapper(rt.settings).table, company=company)
            found = check_value_maps(flow, choices, table)
            problems += [CheckProblem(f"{name} ({company})", *rest) for name, *rest in found]
        for rule in flow.lookups():
            for entity_set, returns in rule.to.items():
                columns = {id_column(entity_set), returns}
                problems += _check_columns(flow.name, "dataverse", entity_set, columns, metadata, navigation=False)
    return problems


def _metadata_api(rt: Runtime) -> Callable[[str, dict[str, str]], Any]:
    def request_json(path: str, params: dict[str, str]) -> Any:
        return rt.dataverse.odata.request("GET", path, params=params).json()

    return request_json


def _check_solution(rt: Runtime, sets: dict[str, EntitySet]) -> list[CheckProblem]:
    """Microsoft's P2C solution in Sales: its columns and processing status values (solution_check)."""
    from p2c_core import solution_check

    request_json = _metadata_api(rt)

    found = solution_check.check(sets, request_json)
    return [
        CheckProblem("p2c solution", "dataverse", entity_set, column, problem) for entity_set, column, problem in found
    ]


def _check_columns(
    flow: str,
    service: str,
    entity_set: str,
    columns: set[str],
    metadata: dict[str, dict[str, EntitySet]],
    *,
    navigation: bool = True,
) -> list[CheckProblem]:
    """The entity set is in the service's `$metadata` and has every column (as a property or,
    where `navigation`, a navigation property)."""
    sets = metadata[service]
    es = sets.get(entity_set)
    if es is None:
        return [CheckProblem(flow, service, entity_set, "", "entity set not in $metadata", nearest(entity_set, sets))]
    names = set(es.properties) | (es.navigation if navigation else set())
    problems = []
    for column in sorted(columns):
        # A polymorphic lookup is written through one navigation property per table.
        polymorphic = navigation and any(n.startswith(f"{column}_") for n in es.navigation)
        if column not in names and not polymorphic:
            problems.append(CheckProblem(flow, service, es.name, column, "not a property", nearest(column, names)))
    return problems


_NUMBERS = {"Edm.Int16", "Edm.Int32", "Edm.Int64", "Edm.Decimal", "Edm.Double", "Edm.Single", "Edm.Byte"}


def _check_overlaid_fields(rt: Runtime, flow: Flow, metadata: dict[str, dict[str, EntitySet]]) -> list[CheckProblem]:
    """Fields an overlay copies: the source value must fit the target (type and length)."""
    from p2c_core.flows import get_flow
    from p2c_core.rules import Field

    overlay = rt.settings.overlay()
    standard = get_flow(flow.name)
    source = metadata[flow.source.service].get(flow.source.entity_set)
    target = metadata[flow.target.service].get(flow.target.entity_set)
    if source is None or target is None:
        return []  # named by _check_columns
    problems = []
    for name, rule in flow.rules().items():
        if not isinstance(rule, Field) or overlay.origin(flow.name, name) != "overlay":
            continue
        have, want = source.properties.get(rule.column), target.properties.get(name)
        if have is None or want is None:
            continue
        where = (flow.name, flow.target.service, target.name, name)
        if have == "Edm.String" and want in _NUMBERS:
            problems.append(CheckProblem(*where, f"the overlay copies text ({rule.column}) into a number ({want})"))
        longest = source.max_lengths.get(rule.column)
        # F&O's $metadata publishes no MaxLength: there the standard flow's (FLOWS.md) is the room.
        room = target.max_lengths.get(name) or standard.max_lengths.get(name)
        change = overlay.flows.get(flow.name)
        acknowledged = change is not None and name in change.max_lengths and change.max_lengths[name] <= (room or 0)
        if longest and room and longest > room and not acknowledged:
            problems.append(
                CheckProblem(
                    *where,
                    f"{rule.column} holds up to {longest} characters, {name} takes {room}: "
                    f'add "max_lengths": {{"{name}": {room}}} to the overlay, so a longer value fails by name',
                )
            )
    return problems
