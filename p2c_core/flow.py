"""A flow is data: source, target, keys, a mapping table, a filter, dependencies.

Stdlib only: this module is imported at every cold start to register functions. The rule
kinds live in `rules` and are re-exported here, so a flow file imports from one place.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from p2c_core.clients.keys import id_column, literal
from p2c_core.errors import FlowError
from p2c_core.rules import (
    Bind,
    Calc,
    Const,
    Default,
    Field,
    Lookup,
    PriceList,
    Ref,
    Rule,
    Service,
    ValueMap,
    columns_of,
)

__all__ = [
    "Bind",
    "Calc",
    "Const",
    "Dataverse",
    "Default",
    "Endpoint",
    "Eq",
    "Field",
    "FinOps",
    "Flow",
    "HeaderLine",
    "In",
    "Lines",
    "Lookup",
    "Ne",
    "PriceList",
    "Ref",
    "Rule",
    "Service",
    "ValueMap",
    "Where",
    "id_column",
]

# Queue names (p2c-<flow>-poison) take lower-case letters, digits and single dashes, 63 at most.
_FLOW_NAME = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


@dataclass(frozen=True)
class Eq:
    """`column eq value`: a filter term both sent as OData and checked on read rows.

    Dataverse change tracking accepts no `$filter`, so every filter must also be
    evaluable on the rows it returns.
    """

    column: str
    value: str | int | bool | None
    # F&O enums are compared as typed literals: Microsoft.Dynamics.DataEntities.NoYes'Yes'.
    enum: str | None = None

    def odata(self) -> str:
        if self.enum is not None:
            return f"{self.column} eq Microsoft.Dynamics.DataEntities.{self.enum}{literal(self.value)}"
        return f"{self.column} eq {literal(self.value)}"

    def matches(self, row: Mapping[str, Any]) -> bool:
        return row.get(self.column) == self.value


@dataclass(frozen=True)
class Ne(Eq):
    """`column ne value`."""

    def odata(self) -> str:
        return super().odata().replace(" eq ", " ne ", 1)

    def matches(self, row: Mapping[str, Any]) -> bool:
        return not super().matches(row)


@dataclass(frozen=True)
class In:
    """`column` is one of `values` (sent as `eq` terms joined by `or`: both services take that)."""

    column: str
    values: tuple[str | int | bool, ...]
    enum: str | None = None

    def odata(self) -> str:
        return "(" + " or ".join(Eq(self.column, v, self.enum).odata() for v in self.values) + ")"

    def matches(self, row: Mapping[str, Any]) -> bool:
        return row.get(self.column) in self.values


@dataclass(frozen=True)
class Where:
    """A conjunction of terms (all P2C filters are of this shape)."""

    terms: tuple[Eq | Ne | In, ...]

    @classmethod
    def all(cls, **columns: str | int | bool | None) -> Where:
        return cls(tuple(Eq(c, v) for c, v in columns.items()))

    def odata(self) -> str:
        return " and ".join(t.odata() for t in self.terms)

    def matches(self, row: Mapping[str, Any]) -> bool:
        return all(t.matches(row) for t in self.terms)

    def columns(self) -> tuple[str, ...]:
        return tuple(t.column for t in self.terms)


@dataclass(frozen=True)
class Dataverse:
    """An entity set in Dataverse (Dynamics 365 Sales), addressed by an alternate key.

    As a source it is read by change tracking (delta links).
    """

    entity_set: str
    key: str
    where: Where | None = None
    service: Service = field(default="dataverse", init=False)

    @property
    def id_column(self) -> str:
        return id_column(self.entity_set)


@dataclass(frozen=True)
class FinOps:
    """A data entity in F&O; its key is `dataAreaId`, `key` and any `more_keys`.

    As a source, F&O entities have no delta links: without `since` the (bounded) set is
    scanned and a record is sent on when its content changed; with `since` (a date of
    immutable documents, e.g. `InvoiceDate`) only rows on or after the last one seen,
    less `overlap_days`, are read.
    """

    entity_set: str
    key: str
    where: Where | None = None
    # Further key properties, taken from the mapped record (composite keys such as a
    # contact person's AssociatedPartyNumber).
    more_keys: tuple[str, ...] = ()
    since: str | None = None
    overlap_days: int = 3
    # One target row per key whichever companies hold it (a product released in several):
    # with several companies, the first in P2C_COMPANIES order that holds it sends it
    # (docs/companies-products.md).
    shared: bool = False
    service: Service = field(default="fno", init=False)


Endpoint = Dataverse | FinOps


@dataclass(frozen=True)
class HeaderLine:
    """A target line made from a header amount while it is not zero (F&O's header-level
    tax becomes a Sales write-in line `Freight Tax`). Its key lies outside the source's
    line numbers; when the amount goes back to zero, the line is deleted like any other."""

    amount: str  # source header column
    key: int
    fields: Mapping[str, Rule]


@dataclass(frozen=True)
class Lines:
    """The lines of a document flow (quote, order, invoice): read, mapped and written
    with their header, as one unit.

    Source lines name their document in `source_parent` (Dataverse: the lookup column;
    F&O: the document number property) and are matched at the target by `key`. A line
    gone from the source is deleted at the target. `source=None` means one line per
    document built from the header itself (a product's price list item).
    """

    source: str | None
    source_parent: str
    source_key: str | None
    target: str
    target_parent: str
    target_key: str | None
    fields: Mapping[str, Rule]
    on_create: Mapping[str, Rule] = field(default_factory=dict)
    # Source lookups of a line (its product, its unit), resolved when it is read.
    lookups: tuple[Lookup, ...] = ()
    header_line: HeaderLine | None = None
    # Target columns that together find this line when target_key is None.
    match: tuple[str, ...] = ()
    # Which target lines this flow maintains; others (the P2C solution's Freight Tax line) are left alone.
    owned: Where | None = None

    def source_columns(self) -> list[str]:
        resolved = {lookup.column: lookup.value_column for lookup in self.lookups}
        cols = [self.source_key] if self.source_key else []
        cols.extend(resolved.get(c, c) for c in columns_of({**self.fields, **self.on_create}))
        return list(dict.fromkeys(cols))


@dataclass(frozen=True)
class Flow:
    """One entity flow: read changes from `source`, write them to `target`."""

    name: str
    source: Endpoint
    target: Endpoint
    fields: Mapping[str, Rule]
    # Fields sent only when the target record is created (F&O rejects changing some).
    on_create: Mapping[str, Rule] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    schedule: str = "0 */5 * * * *"
    # Max length per target field, where the target enforces one; longer values fail
    # the record with an error naming the field rather than a 400 from the service.
    max_lengths: Mapping[str, int] = field(default_factory=dict)
    # Which target records this flow maintains (for reconcile's "extra" records).
    owned: Where | None = None
    # Target fields that must have a value: an empty or blank one fails the record by name.
    required: tuple[str, ...] = ()
    lines: Lines | None = None
    # Create the record in the target, never update it: after the first write the
    # target owns it (Sales-born orders, FLOWS.md).
    create_only: bool = False
    # Source lookups that feed a Ref rather than a target field (a contact's parent account).
    resolve: tuple[Lookup, ...] = ()

    def __post_init__(self) -> None:
        if not _FLOW_NAME.match(self.name) or len(self.poison_queue) > 63:
            raise FlowError(
                f"flow name {self.name!r}: lower-case letters and digits, words joined by single underscores, "
                "at most 52 characters (it names the flow's queues: p2c-<name>-poison is at most 63)"
            )
        mapped = set(self.rules())
        for what, names in (("max_lengths", self.max_lengths), ("required", self.required)):
            if stray := sorted(set(names) - mapped):
                raise FlowError(f"flow {self.name!r}: {what} names fields it does not map: {', '.join(stray)}")
        if missing := sorted(set(self.refers_to()) - set(self.depends_on)):
            raise FlowError(
                f"flow {self.name!r} refers to records of {', '.join(missing)}, which its depends_on does not list"
            )

    @property
    def queue(self) -> str:
        # Queue names allow lower-case letters, digits and single dashes only.
        return f"p2c-{self.name.replace('_', '-')}"

    @property
    def poison_queue(self) -> str:
        return f"{self.queue}-poison"

    def rules(self) -> Mapping[str, Rule]:
        return {**self.fields, **self.on_create}

    def all_rules(self) -> list[Rule]:
        """Every rule of the flow: header, create-only, lines and the header line."""
        found = list(self.rules().values())
        if self.lines is not None:
            found += [*self.lines.fields.values(), *self.lines.on_create.values()]
            if self.lines.header_line is not None:
                found += list(self.lines.header_line.fields.values())
        return found

    def refers_to(self) -> tuple[str, ...]:
        """The flows whose records this flow's references need in the target first."""
        return tuple(dict.fromkeys(name for rule in self.all_rules() for name in rule.refers_to()))

    def lookups(self) -> list[Lookup]:
        """Source lookups of the header (resolved when it is read)."""
        found = [r for r in self.rules().values() if isinstance(r, Lookup)]
        if self.lines is not None and self.lines.source is None:
            found += [r for r in self.lines.fields.values() if isinstance(r, Lookup)]
        return list(dict.fromkeys([*found, *self.resolve]))

    def source_columns(self) -> list[str]:
        """Columns to `$select` from the source: mapped, key and filter columns."""
        resolved = {lookup.column: lookup.value_column for lookup in self.lookups()}
        cols: list[str] = [self.source.key, *(resolved.get(c, c) for c in columns_of(self.rules()))]
        if self.lines is not None and self.lines.source is None:
            cols.extend(self.lines.source_columns())
        if self.lines is not None and (extra := self.lines.header_line) is not None:
            cols.extend([extra.amount, *columns_of(extra.fields)])
        if self.source.where:
            cols.extend(self.source.where.columns())
        if isinstance(self.source, Dataverse) and self.lines is not None:
            cols.append(self.source.id_column)  # lines name their document by its GUID
        return list(dict.fromkeys(cols))
