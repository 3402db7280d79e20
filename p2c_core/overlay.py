"""A mapping overlay: changes to the standard flows without code (docs/customizing.md).

A JSON document, in the setting `P2C_MAPPING_OVERLAY` or in the file `P2C_MAPPING_OVERLAY_FILE`
names, that per flow adds or replaces fields (any rule kind but references), drops fields,
adds filter terms and length limits, and for the whole deployment extends value maps and sets
defaults. It is checked when the app starts: an unknown flow, rule kind, field, calculation,
value map or default is refused with a message naming it and the nearest valid name, and the
function app does not start. `p2c check` then holds it against both services' `$metadata`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from p2c_core import catalog, rules
from p2c_core.errors import FlowError, SettingsError
from p2c_core.flow import Eq, Flow, In, Ne, Where
from p2c_core.suggest import did_you_mean

SETTING, FILE_SETTING = "P2C_MAPPING_OVERLAY", "P2C_MAPPING_OVERLAY_FILE"
Scalar = str | int | float | bool
FilterValue = str | int | bool  # what filters compare (F&O enums and Sales choices too)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldRule(_Strict):
    kind: Literal["field"]
    column: str
    if_null: Scalar | None = None  # replaces a null (non-nullable targets)

    def rule(self) -> rules.Rule:
        return rules.Field(self.column, self.if_null)


class ConstRule(_Strict):
    kind: Literal["const"]
    value: Scalar

    def rule(self) -> rules.Rule:
        return rules.Const(self.value)


class DefaultRule(_Strict):
    kind: Literal["default"]
    name: str

    def rule(self) -> rules.Rule:
        return rules.Default(self.name)


class ValueMapRule(_Strict):
    kind: Literal["value_map"]
    map: str
    column: str
    optional: bool = False
    reverse: bool = False
    number: bool = False

    def rule(self) -> rules.Rule:
        return rules.ValueMap(self.map, self.column, self.optional, self.reverse, self.number)


class LookupRule(_Strict):
    kind: Literal["lookup"]
    column: str
    to: dict[str, str] = Field(min_length=1)  # table -> the column it returns

    def rule(self) -> rules.Rule:
        return rules.Lookup(self.column, self.to)


class CalcRule(_Strict):
    kind: Literal["calc"]
    function: str
    columns: list[str]

    def rule(self) -> rules.Rule:
        return rules.Calc(self.function, tuple(self.columns))


RULE_KINDS = ("field", "const", "default", "value_map", "lookup", "calc")
RuleSpec = Annotated[
    FieldRule | ConstRule | DefaultRule | ValueMapRule | LookupRule | CalcRule, Field(discriminator="kind")
]


class Term(_Strict):
    """One filter term: `column` eq / ne / in."""

    column: str
    eq: FilterValue | None = None
    ne: FilterValue | None = None
    in_: list[FilterValue] | None = Field(default=None, alias="in")
    enum: str | None = None  # F&O enum type, for typed literals

    @model_validator(mode="after")
    def _one(self) -> Term:
        given = [name for name in ("eq", "ne", "in_") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"filter on {self.column!r} needs exactly one of eq, ne, in")
        return self

    def term(self) -> Eq | Ne | In:
        if self.in_ is not None:
            return In(self.column, tuple(self.in_), self.enum)
        if self.ne is not None:
            return Ne(self.column, self.ne, self.enum)
        return Eq(self.column, self.eq, self.enum)


class FlowOverlay(_Strict):
    fields: dict[str, RuleSpec] = {}
    on_create: dict[str, RuleSpec] = {}
    drop: list[str] = []
    where: list[Term] = []
    max_lengths: dict[str, int] = {}


class Overlay(_Strict):
    flows: dict[str, FlowOverlay] = {}
    value_maps: dict[str, dict[str, str]] = {}
    defaults: dict[str, str | None] = {}
    # A change for one company only (P2C_COMPANIES): its record's are mapped with it over
    # the changes for every company. The document is then a list of such changes.
    company: str | None = Field(default=None, pattern=r"^[A-Za-z0-9]{1,4}$")
    # The changes for one company each, by company (from the list form; see `parse`).
    companies: dict[str, Overlay] = {}

    def for_company(self, company: str | None) -> Overlay | None:
        return self.companies.get(company) if company else None

    def company_value_maps(self, company: str | None) -> dict[str, dict[str, str]]:
        layer = self.for_company(company)
        return layer.value_maps if layer is not None else {}

    def company_defaults(self, company: str | None) -> dict[str, str | None]:
        layer = self.for_company(company)
        return layer.defaults if layer is not None else {}

    def apply_for(self, flow: Flow, company: str | None) -> Flow:
        """`flow` (with the changes for every company applied) with one company's changes."""
        layer = self.for_company(company)
        return flow if layer is None else layer.apply(flow)

    def apply(self, flow: Flow) -> Flow:
        """The flow with this overlay's changes (the flow itself when it has none)."""
        change = self.flows.get(flow.name)
        if change is None:
            return flow
        fields = _changed(flow.name, dict(flow.fields), change.fields, change.drop, "fields")
        on_create = _changed(flow.name, dict(flow.on_create), change.on_create, [], "on_create")
        source = flow.source
        if change.where:
            terms = (*(source.where.terms if source.where else ()), *(t.term() for t in change.where))
            source = dataclasses.replace(source, where=Where(terms))
        return dataclasses.replace(
            flow,
            source=source,
            fields=fields,
            on_create=on_create,
            max_lengths={**flow.max_lengths, **change.max_lengths},
            required=tuple(f for f in flow.required if f not in change.drop),
        )

    def origin(self, flow: str, field: str, company: str | None = None) -> str:
        """Where a field of the effective mapping comes from: "standard", "overlay" or
        "overlay (<company>)"."""
        layer = self.for_company(company)
        if layer is not None and layer.origin(flow, field) == "overlay":
            return f"overlay ({company})"
        change = self.flows.get(flow)
        return "overlay" if change and (field in change.fields or field in change.on_create) else "standard"


def _changed(
    flow: str, current: dict[str, rules.Rule], added: Mapping[str, Any], dropped: list[str], where: str
) -> dict[str, rules.Rule]:
    for name in dropped:
        if name not in current:
            raise FlowError(f"overlay of flow {flow!r} drops field {name!r}, which it does not map"
                            f"{did_you_mean(name, current)}")  # fmt: skip
        del current[name]
    for name, spec in added.items():
        try:
            current[name] = spec.rule()
        except FlowError as exc:
            raise FlowError(f"flow {flow!r}, {where} {name!r}: {exc}") from None
    return current


EMPTY = Overlay()


def parse(text: str, where: str = SETTING) -> Overlay:
    """An overlay from JSON text; SettingsError naming `where` and the first problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsError(f"{where}: not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    if isinstance(data, list):
        return check_names(_layered(data, where), where)
    if not isinstance(data, dict):
        raise SettingsError(f"{where}: expected a JSON object, or a list of them (changes for one company each)")
    try:
        overlay = Overlay.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(f"{where}: {_explain(exc)}") from None
    if overlay.company is not None:  # one change, for one company
        overlay = Overlay(companies={overlay.company.lower(): overlay})
    return check_names(overlay, where)


def _layered(items: list[Any], where: str) -> Overlay:
    """The list form: changes for every company (no `company`, at most one) and for one
    company each (at most one per company)."""
    common: Overlay | None = None
    by_company: dict[str, Overlay] = {}
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise SettingsError(f"{where}: [{n}]: expected a JSON object")
        try:
            layer = Overlay.model_validate(item)
        except ValidationError as exc:
            raise SettingsError(f"{where}: [{n}].{_explain(exc)}") from None
        if layer.companies:
            raise SettingsError(f'{where}: [{n}]: name the company with "company" in a list item')
        if layer.company is None:
            if common is not None:
                raise SettingsError(f"{where}: [{n}]: a second change for every company; merge it with the first")
            common = layer
            continue
        company = layer.company.lower()
        if company in by_company:
            raise SettingsError(f"{where}: [{n}]: a second change for company {company}; merge it with the first")
        by_company[company] = layer
    base = common or EMPTY
    return base.model_copy(update={"companies": by_company})


def _explain(exc: ValidationError) -> str:
    errors = exc.errors()
    # A misspelled key also makes the right one "missing": name the misspelling.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = ".".join(str(p) for p in first["loc"])
    if first["type"] == "union_tag_invalid":
        tag = str(first.get("ctx", {}).get("tag", ""))
        return f"{loc}: unknown rule kind {tag!r}{did_you_mean(tag, RULE_KINDS)}"
    if first["type"] == "extra_forbidden":
        name = str(first["loc"][-1])
        return f"{loc}: unknown key {name!r}"
    return f"{loc}: {first['msg']}"


def check_names(overlay: Overlay, where: str = SETTING) -> Overlay:
    """Every flow, field, value map and default the overlay names exists; every rule can be made."""
    from p2c_core.flows import registry

    names = registry().names
    try:
        for flow_name in overlay.flows:
            if flow_name not in names:
                raise FlowError(f"no flow is named {flow_name!r}{did_you_mean(flow_name, names)}")
            overlay.apply(registry().get(flow_name))  # makes every rule and the flow: checks them
        for name in overlay.value_maps:
            catalog.value_map(name)
        for name in overlay.defaults:
            catalog.default(name)
        for company, layer in overlay.companies.items():
            for flow_name in layer.flows:
                if flow_name not in names:
                    hint = did_you_mean(flow_name, names)
                    raise FlowError(f"company {company}: no flow is named {flow_name!r}{hint}")
                layer.apply(overlay.apply(registry().get(flow_name)))
            for name in layer.value_maps:
                catalog.value_map(name)
            for name in layer.defaults:
                catalog.default(name)
    except FlowError as exc:
        raise SettingsError(f"{where}: {exc}") from None
    return overlay


def check_companies(overlay: Overlay, companies: list[str], where: str = SETTING) -> None:
    """Every company the overlay names is one the deployment serves (P2C_COMPANIES)."""
    for company in overlay.companies:
        if company not in companies:
            raise SettingsError(
                f"{where}: a change for company {company!r}, which is not in P2C_COMPANIES "
                f"({', '.join(companies)}){did_you_mean(company, companies)}"
            )


def load(settings_text: str | None, file: str | None) -> Overlay:
    """The deployment's overlay: the setting, or the file it names (relative to the app root)."""
    if settings_text and file:
        raise SettingsError(f"{SETTING} and {FILE_SETTING} are both set; use one")
    if file:
        path = Path(file)
        if not path.is_absolute():
            path = Path(__file__).resolve().parent.parent / path
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SettingsError(f"{FILE_SETTING}: cannot read {path}: {exc.strerror}") from None
        return parse(text, f"{FILE_SETTING} ({path.name})")
    return parse(settings_text, SETTING) if settings_text else EMPTY
