"""Mapping rules: each says how one target field gets its value, and owns all it needs.

A rule kind is one class: the source columns it reads (`columns`), its value for a source
record (`value`), the named things it refers to (checked when it is made), the target column
its value reads back as (`read_back`), and, for rules naming another record, how that
reference becomes what the target takes (`resolve`). A new kind is a new class here.
Stdlib only: flows are read at every cold start.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from p2c_core import catalog
from p2c_core.calcs import CALCS
from p2c_core.clients.keys import entity_type
from p2c_core.errors import DependencyMissing, FlowError, MappingError

Service = Literal["dataverse", "fno"]


class Context(Protocol):
    """What rules read from settings: value maps (built-in + configured) and defaults."""

    def table(self, name: str) -> Mapping[str, str] | None: ...

    def default(self, name: str) -> Any: ...


class Resolver(Protocol):
    """What reference rules look up in the target: records of other flows, rows, price lists."""

    def fno_record(self, flows: Sequence[str], key: str, returns: str | None) -> tuple[bool, Any]:
        """(found, the key or the referenced record's `returns` property) in F&O."""
        ...

    def dataverse_tables(self, flows: Sequence[str]) -> list[tuple[str, str]]:
        """(entity set, natural key column) where the flows' records live in Sales."""
        ...

    def row_id(self, entity_set: str, column: str, value: Any) -> str | None:
        """The GUID of the Sales row whose `column` equals `value`, or None."""
        ...

    def price_list(self, currency: str) -> str:
        """The GUID of the Sales price list for a currency (FLOWS.md, products)."""
        ...


@dataclass(frozen=True)
class Reference:
    """A mapped value naming another record; `resolve` turns it into what the target takes."""

    rule: ReferenceRule
    value: Any

    def __str__(self) -> str:  # stable in content hashes
        return f"ref:{self.value}"


class Rule(ABC):
    """Base of the rule kinds. `value` returns (present, value): absent leaves the field out."""

    def columns(self) -> tuple[str, ...]:
        return ()

    @abstractmethod
    def value(self, data: Mapping[str, Any], ctx: Context, target: str) -> tuple[bool, Any]: ...

    def refers_to(self) -> tuple[str, ...]:
        """Flows whose records this rule needs in the target first."""
        return ()

    def read_back(self, target: str, service: Service) -> str:
        """The target column that holds what this rule writes to `target`."""
        return target


class ReferenceRule(Rule):
    """A rule whose value names a record that must be in the target (DESIGN invariant 5)."""

    @abstractmethod
    def resolve(self, target: str, value: Any, resolver: Resolver, service: Service) -> dict[str, Any]: ...

    def read_back(self, target: str, service: Service) -> str:
        # Sales returns a lookup as `_<name>_value`, whichever table it points to.
        return f"_{target}_value" if service == "dataverse" else target


@dataclass(frozen=True)
class Field(Rule):
    """Copy a source column; `default` replaces a null (for non-nullable targets)."""

    column: str
    default: str | int | float | bool | None = None

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def value(self, data: Mapping[str, Any], ctx: Context, target: str) -> tuple[bool, Any]:
        found = data.get(self.column)
        return True, self.default if found is None else found


@dataclass(frozen=True)
class Const(Rule):
    """A fixed value."""

    constant: str | int | float | bool

    def value(self, data: Mapping[str, Any], ctx: Context, target: str) -> tuple[bool, Any]:
        return True, self.constant


@dataclass(frozen=True)
class Default(Rule):
    """A configured default value (`P2C_DEFAULTS__<NAME>`), e.g. the customer group."""

    name: str

    def __post_init__(self) -> None:
        catalog.default(self.name)

    def value(self, data: Mapping[str, Any], ctx: Context, target: str) -> tuple[bool, Any]:
        found = ctx.default(self.name)
        return found is not None, found


@dataclass(frozen=True)
class ValueMap(Rule):
    """Translate a source value through the named value map (`P2C_VALUE_MAPS__<NAME>`).

    `optional`: sent only when the map is configured (FLOWS.md: terms and delivery maps have
    no template default). `reverse`: read the map backwards (maps are written Sales -> F&O;
    the F&O -> Sales flows use them reversed). `number`: the target is a Dataverse choice.
    """

    map: str
    column: str
    optional: bool = False
    reverse: bool = False
    number: bool = False

    def __post_init__(self) -> None:
        catalog.value_map(self.map)

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def value(self, data: Mapping[str, Any], ctx: Context, target: str) -> tuple[bool, Any]:
        spec = catalog.value_map(self.map)
        table = ctx.table(self.map)
        if table is None:
            if self.optional:
                return False, None
            raise MappingError(f"value map {self.map!r} is not configured (needed for {target})")
        raw = data.get(self.column)
        text = "" if raw is None else str(raw).strip()
        if not text:
            blank = ctx.default(spec.blank_default) if spec.blank_default and not self.reverse else None
            return True, blank
        if self.reverse:
            table = {v: k for k, v in table.items()}
        lookup = text.lower() if spec.folded and not self.reverse else text
        if lookup not in table:
            raise MappingError(
                f"value map {self.map!r} has no entry for {text!r} "
                f"(source {self.column} -> target {target}); add it to P2C_VALUE_MAPS__{self.map.upper()}"
            )
        mapped = table[lookup]
        if not self.number:
            return True, mapped
        try:
            return True, int(mapped)
        except ValueError:
            raise MappingError(f"value map {self.map!r} maps {text!r} to {mapped!r}, not a choice number") from None


@dataclass(frozen=True)
class Calc(Rule):
    """A value computed by a named function of `calcs.CALCS` from source columns."""

    function: str
    inputs: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.function not in CALCS:
            raise catalog.unknown("calculation", self.function, CALCS)
        wanted = len(inspect.signature(CALCS[self.function]).parameters)
        if wanted != len(self.inputs):
            raise FlowError(f"calculation {self.function!r} takes {wanted} columns, not {len(self.inputs)}")

    def columns(self) -> tuple[str, ...]:
        return self.inputs

    def value(self, data: Mapping[str, Any], ctx: Context, target: str) -> tuple[bool, Any]:
        return True, CALCS[self.function](*(data.get(c) for c in self.inputs))


@dataclass(frozen=True, eq=False)  # `to` is a mapping: compared and hashed by identity
class Lookup(Rule):
    """A Dataverse lookup column read as a natural key of the row it points to.

    Reads `_<column>_value` (a GUID) and replaces it by that row's `returns` column, e.g.
    the account's currency GUID -> its ISO code. `to` maps each table the lookup may
    point to (customer lookups point to accounts or contacts) to the column it returns.
    Resolved when the source is read, so queue messages carry natural keys, never GUIDs.
    """

    column: str
    to: Mapping[str, str]

    @property
    def value_column(self) -> str:
        return f"_{self.column}_value"

    def columns(self) -> tuple[str, ...]:
        return (self.value_column,)

    def value(self, data: Mapping[str, Any], ctx: Context, target: str) -> tuple[bool, Any]:
        return True, data.get(self.column)


@dataclass(frozen=True)
class Ref(ReferenceRule):
    """A record another flow carries, named by its natural key in `column`.

    Found through those flows' key maps or by its key in the target, else the record waits
    and, after P2C_DEPENDENCY_WAIT_MINUTES, fails naming it. F&O targets get the key itself
    (or the referenced record's `returns` property); Dataverse targets get an `@odata.bind`.
    """

    column: str
    flows: tuple[str, ...]
    returns: str | None = None
    what: str = "record"  # how an error names it: "customer", "product", ...

    def __post_init__(self) -> None:
        if not self.flows:
            raise FlowError(f"Ref({self.column!r}) names no flow that carries the {self.what}")

    def columns(self) -> tuple[str, ...]:
        return (self.column,)

    def refers_to(self) -> tuple[str, ...]:
        return self.flows

    def value(self, data: Mapping[str, Any], ctx: Context, target: str) -> tuple[bool, Any]:
        found = data.get(self.column)
        if found in (None, ""):
            raise MappingError(f"no {self.what} set (source {self.column} -> target {target})")
        return True, Reference(self, found)

    def resolve(self, target: str, value: Any, resolver: Resolver, service: Service) -> dict[str, Any]:
        origin = " or ".join(self.flows)
        if service == "fno":
            found, written = resolver.fno_record(self.flows, str(value), self.returns)
            if not found:
                raise DependencyMissing(f"{self.what} {value!r} is not in F&O yet (from flow {origin})")
            return {target: written}
        tables = resolver.dataverse_tables(self.flows)
        for entity_set, column in tables:
            guid = resolver.row_id(entity_set, column, value)
            if guid is not None:
                # A polymorphic lookup (customerid) is written through one navigation property per table.
                nav = target if len(tables) == 1 else f"{target}_{entity_type(entity_set)}"
                return {f"{nav}@odata.bind": f"/{entity_set}({guid})"}
        raise DependencyMissing(f"{self.what} {value!r} is not in Sales yet (from flow {origin})")


@dataclass(frozen=True)
class Bind(ReferenceRule):
    """A Dataverse lookup to reference data found by a column value (`uoms` by `name`).

    `source` gives the natural value (a Field, ValueMap or Default); the target gets
    `<field>@odata.bind` to the row whose `column` equals it.
    """

    source: Field | ValueMap | Default
    entity_set: str
    column: str

    def columns(self) -> tuple[str, ...]:
        return self.source.columns()

    def value(self, data: Mapping[str, Any], ctx: Context, target: str) -> tuple[bool, Any]:
        present, found = self.source.value(data, ctx, target)
        return present, Reference(self, found) if found not in (None, "") else None

    def resolve(self, target: str, value: Any, resolver: Resolver, service: Service) -> dict[str, Any]:
        if service != "dataverse":
            raise FlowError(f"Bind({self.entity_set}) for {target}: only Sales targets take @odata.bind")
        guid = resolver.row_id(self.entity_set, self.column, value)
        if guid is None:
            raise DependencyMissing(f"{self.entity_set} has no row with {self.column} {value!r} (for {target})")
        return {f"{target}@odata.bind": f"/{self.entity_set}({guid})"}


@dataclass(frozen=True)
class PriceList(ReferenceRule):
    """The Sales price list for a currency: the `price_list` map's entry, else the first
    active price list in that currency by name (FLOWS.md, products)."""

    currency: str  # source column holding the ISO currency code

    def columns(self) -> tuple[str, ...]:
        return (self.currency,)

    def value(self, data: Mapping[str, Any], ctx: Context, target: str) -> tuple[bool, Any]:
        code = data.get(self.currency)
        return True, Reference(self, code) if code else None

    def resolve(self, target: str, value: Any, resolver: Resolver, service: Service) -> dict[str, Any]:
        if service != "dataverse":
            raise FlowError(f"PriceList for {target}: price lists are Sales rows")
        return {f"{target}@odata.bind": f"/pricelevels({resolver.price_list(str(value))})"}


def columns_of(rules: Mapping[str, Rule]) -> list[str]:
    """The source columns a set of rules reads, in order, once each."""
    return list(dict.fromkeys(c for rule in rules.values() for c in rule.columns()))
