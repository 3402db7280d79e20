"""A flow is data: source, target, keys, a mapping table, a filter, dependencies.

Stdlib only: this module is imported at every cold start to register functions.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Service = Literal["dataverse", "fno"]


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
        from p2c_core.keys import literal

        if self.enum is not None:
            return f"{self.column} eq Microsoft.Dynamics.DataEntities.{self.enum}{literal(self.value)}"
        return f"{self.column} eq {literal(self.value)}"

    def matches(self, row: Mapping[str, Any]) -> bool:
        return row.get(self.column) == self.value


@dataclass(frozen=True)
class Where:
    """A conjunction of equality terms (all P2C filters are of this shape)."""

    terms: tuple[Eq, ...]

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
    """An entity set in Dataverse (Dynamics 365 Sales), addressed by an alternate key."""

    entity_set: str
    key: str
    where: Where | None = None
    service: Service = field(default="dataverse", init=False)


@dataclass(frozen=True)
class FinOps:
    """A data entity in F&O; its key is `dataAreaId` plus `key`."""

    entity_set: str
    key: str
    where: Where | None = None
    service: Service = field(default="fno", init=False)


Endpoint = Dataverse | FinOps


# --- mapping rules: each says how one target field gets its value --------------------


@dataclass(frozen=True)
class Field:
    """Copy a source column; `default` replaces a null (for non-nullable targets)."""

    column: str
    default: str | int | float | bool | None = None


@dataclass(frozen=True)
class ValueMap:
    """Translate a source value through the named value map (a setting).

    `optional`: the target field is sent only when the map is configured (FLOWS.md:
    terms and delivery maps have no template default).
    """

    map: str
    column: str
    optional: bool = False


@dataclass(frozen=True)
class Default:
    """A configured default value (a setting), e.g. the customer group."""

    name: str


@dataclass(frozen=True)
class Const:
    """A fixed value."""

    value: str | int | float | bool


@dataclass(frozen=True)
class Lookup:
    """A Dataverse lookup column resolved to a column of the row it points to.

    Reads `_<column>_value` (a GUID) and replaces it by `<entity_set>.<returns>`, e.g.
    the account's currency GUID -> its ISO code. Resolved when the source is read, from
    the referenced (small) table, so queue messages carry plain values.
    """

    column: str
    entity_set: str
    returns: str
    # Primary key column of `entity_set`; Dataverse names most lookups after it.
    target_id: str | None = None

    @property
    def id_column(self) -> str:
        return self.target_id or self.column


Rule = Field | ValueMap | Default | Const | Lookup


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

    @property
    def queue(self) -> str:
        return f"p2c-{self.name}"

    @property
    def poison_queue(self) -> str:
        return f"{self.queue}-poison"

    def rules(self) -> Mapping[str, Rule]:
        return {**self.fields, **self.on_create}

    def source_columns(self) -> list[str]:
        """Columns to `$select` from the source: mapped, key and filter columns."""
        cols: list[str] = [self.source.key]
        for rule in self.rules().values():
            if isinstance(rule, Field | ValueMap):
                cols.append(rule.column)
            elif isinstance(rule, Lookup):
                cols.append(f"_{rule.column}_value")
        if self.source.where:
            cols.extend(self.source.where.columns())
        return list(dict.fromkeys(cols))
