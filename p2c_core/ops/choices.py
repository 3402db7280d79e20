"""`check` of value maps against closed choices.

A value map between two closed sets of values (a Dataverse choice column, an F&O enum) can be
checked before anything runs: every value the source column can hold needs an entry (else a
record holding it fails), and every value the map writes must exist in the target column
(else the service refuses the write). Dataverse choices come from the metadata API ("Query
table definitions using the Web API": `Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata`
with `$expand=OptionSet`), F&O enums from the members `$metadata` publishes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from p2c_core.rules import ValueMap

if TYPE_CHECKING:
    from p2c_core.clients.metadata import EntitySet
    from p2c_core.flow import Flow

# Choice columns of a table, one request per metadata type (Status/State have their own).
_CHOICE_CASTS = ("PicklistAttributeMetadata", "StatusAttributeMetadata", "StateAttributeMetadata")
Domain = dict[str, str]  # value (as text) -> label
# (flow, service, entity set, column, what is wrong): `check` makes a CheckProblem of it.
Problem = tuple[str, str, str, str, str]


def value_map_rules(flow: Flow) -> Iterator[tuple[str, str, str, str, ValueMap]]:
    """(source set, target set, source service, target field, rule) of every value map rule."""
    for name, rule in flow.rules().items():
        if isinstance(rule, ValueMap):
            yield flow.source.entity_set, flow.target.entity_set, flow.source.service, name, rule
    lines = flow.lines
    if lines is not None and lines.source is not None:
        for name, rule in {**lines.fields, **lines.on_create}.items():
            if isinstance(rule, ValueMap):
                yield lines.source, lines.target, flow.source.service, name, rule


class Choices:
    """The closed value sets of both services' columns, read once per check."""

    def __init__(
        self,
        metadata: Mapping[str, Mapping[str, EntitySet]],
        enums: Mapping[str, list[str]],
        request_json: Callable[[str, dict[str, str]], Any],
    ) -> None:
        self._metadata = metadata
        self._enums = enums
        self._request_json = request_json
        self._tables: dict[str, dict[str, Domain]] = {}

    def domain(self, service: str, entity_set: str, column: str) -> Domain | None:
        """The values a column can hold, or None when it is not a closed choice."""
        es = self._metadata[service].get(entity_set)
        if es is None or column not in es.properties:
            return None
        if service == "fno":
            members = self._enums.get(es.properties[column].rsplit(".", 1)[-1])
            return {m: m for m in members} if members else None
        return self._dataverse(es.entity_type.rsplit(".", 1)[-1]).get(column)

    def _dataverse(self, table: str) -> dict[str, Domain]:
        if table not in self._tables:
            found: dict[str, Domain] = {}
            for cast in _CHOICE_CASTS:
                path = f"EntityDefinitions(LogicalName='{table}')/Attributes/Microsoft.Dynamics.CRM.{cast}"
                body = self._request_json(path, {"$select": "LogicalName", "$expand": "OptionSet($select=Options)"})
                for attribute in body.get("value") or []:
                    options = (attribute.get("OptionSet") or {}).get("Options") or []
                    found[attribute["LogicalName"]] = {str(o["Value"]): _label(o) for o in options}
            self._tables[table] = found
        return self._tables[table]


def _label(option: Mapping[str, Any]) -> str:
    label = ((option.get("Label") or {}).get("UserLocalizedLabel") or {}).get("Label")
    return str(label) if label else str(option.get("Value"))


def _other(service: str) -> str:
    return "fno" if service == "dataverse" else "dataverse"


def check_value_maps(flow: Flow, choices: Choices, table: Callable[[str], Mapping[str, str] | None]) -> list[Problem]:
    """Every value map rule of the flow held against the closed choices at both ends."""
    from p2c_core.catalog import value_map

    problems: list[Problem] = []
    for source_set, target_set, service, name, rule in value_map_rules(flow):
        entries = table(rule.map)
        if entries is None:
            continue  # not configured: an optional field is left out, else `check` of settings says so
        # Maps are written Sales -> F&O; a reversed rule reads them backwards.
        pairs = {v: k for k, v in entries.items()} if rule.reverse else dict(entries)
        folded = value_map(rule.map).folded and not rule.reverse
        have = {k.strip().lower() if folded else k for k in pairs}
        source = choices.domain(service, source_set, rule.column)
        missing = [f"{v} ({label})" if label != v else v
                   for v, label in (source or {}).items() if (v.lower() if folded else v) not in have]  # fmt: skip
        if missing:
            problems.append((
                flow.name, service, source_set, rule.column,
                f"value map {rule.map!r} has no entry for {', '.join(missing)} of this closed choice: "
                f"a record holding one fails; add them to P2C_VALUE_MAPS__{rule.map.upper()}",
            ))  # fmt: skip
        target = choices.domain(_other(service), target_set, name)
        wrong = sorted({v for v in pairs.values() if v is not None and str(v) not in (target or {str(v): ""})})
        if wrong:
            problems.append((
                flow.name, _other(service), target_set, name,
                f"value map {rule.map!r} writes {', '.join(wrong)}, not "
                f"{'options' if _other(service) == 'dataverse' else 'members'} of this closed choice: "
                f"{', '.join(sorted(target or {}))}",
            ))  # fmt: skip
    return problems
