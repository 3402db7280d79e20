"""Turn a source record into a target payload by a flow's mapping table.

The rules themselves (`p2c_core.rules`) know their columns and values; the mapper gives
them the settings (value maps and defaults) and enforces what the flow says of its target
fields: required ones, maximum lengths, amounts the services can store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from p2c_core import catalog
from p2c_core.companies import CompanyEntry
from p2c_core.errors import MappingError
from p2c_core.flow import Flow
from p2c_core.hashing import canonical_hash
from p2c_core.rules import Context, Rule
from p2c_core.settings import Settings

# The largest amount both services store (Dataverse money: 922,337,203,685,477).
MAX_AMOUNT = 922_337_203_685_477


@dataclass
class MappedLine:
    key: Any
    payload: dict[str, Any]
    create_only: dict[str, Any]


class Mapper:
    """Maps records of any flow with one deployment's value maps and defaults.

    With several companies (P2C_COMPANIES), a record is mapped with its company's
    overrides over the global ones: the company map's `defaults` / `value_maps` and the
    overlay's changes for that company (docs/companies.md).
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _entry(self, company: str) -> CompanyEntry | None:
        return (self.settings.companies or {}).get(company)

    def table(self, name: str, company: str | None = None) -> dict[str, str] | None:
        """A value map: the built-in entries extended by the configured ones, then by the
        company's (when the record has one); None if none of them has the map."""
        spec = catalog.value_map(name)
        overlay = self.settings.overlay()
        company = company or self.settings.fno_company  # None: the default company
        entry = self._entry(company)
        layers = [
            getattr(self.settings.value_maps, name, None),
            overlay.value_maps.get(name),
            entry.value_maps.get(name) if entry is not None else None,
            overlay.company_value_maps(company).get(name),
        ]
        if spec.builtin is None and all(layer is None for layer in layers):
            return None
        merged: dict[str, str | None] = dict(spec.builtin or {})
        for layer in layers:
            merged.update(layer or {})
        # A company's entry mapped to null removes that entry for the company.
        found = {k: v for k, v in merged.items() if v is not None}
        if spec.folded:
            return {k.strip().lower(): v for k, v in found.items()}
        return found

    def default(self, name: str, company: str | None = None) -> Any:
        """A default: the company's override when it has one, else the global value."""
        overlay = self.settings.overlay()
        company = company or self.settings.fno_company  # None: the default company
        company_overlay = overlay.company_defaults(company)
        if name in company_overlay:
            return company_overlay[name]
        entry = self._entry(company)
        if entry is not None and name in entry.defaults:
            return entry.defaults[name]
        overlaid = overlay.defaults
        return overlaid[name] if name in overlaid else getattr(self.settings.defaults, name)

    def within(self, company: str | None) -> Context:
        """The value maps and defaults one company's records are mapped with."""
        return _CompanyContext(self, company)

    def map(
        self, flow: Flow, key: str, data: Mapping[str, Any], company: str | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """(payload, create-only fields) for one source record (of `company`, None: the default)."""
        if not key.strip():
            raise MappingError(f"{flow.source.entity_set} record has an empty {flow.source.key}")
        return self._apply(flow, flow.fields, data, company), self._apply(flow, flow.on_create, data, company)

    def map_lines(self, flow: Flow, data: Mapping[str, Any], company: str | None = None) -> list[MappedLine] | None:
        """The document's lines, mapped; None when the flow has no lines."""
        lines = flow.lines
        if lines is None:
            return None
        rows: list[Mapping[str, Any]] = [data] if lines.source is None else list(data.get("lines") or [])
        out: list[MappedLine] = []
        for row in rows:
            key = row.get(lines.source_key) if lines.source_key else None
            if lines.source_key and key is None:
                raise MappingError(f"a line of {flow.source.entity_set} has no {lines.source_key}")
            payload = self._apply(flow, lines.fields, row, company)
            create_only = self._apply(flow, lines.on_create, row, company)
            out.append(MappedLine(key=key, payload=payload, create_only=create_only))
        extra = lines.header_line
        if extra is not None and data.get(extra.amount):
            out.append(
                MappedLine(key=extra.key, payload=self._apply(flow, extra.fields, data, company), create_only={})
            )
        keys = [line.key for line in out if line.key is not None]
        if len(keys) != len(set(keys)):
            raise MappingError(
                f"two lines share one {lines.source_key}: {sorted(k for k in keys if keys.count(k) > 1)}"
            )
        return out

    def _apply(
        self, flow: Flow, rules: Mapping[str, Rule], data: Mapping[str, Any], company: str | None = None
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        ctx = self.within(company)
        for target, rule in rules.items():
            present, value = rule.value(data, ctx, target)
            if present:
                _check(flow, target, value, getattr(rule, "column", None) or target)
                out[target] = value
        return out


@dataclass(frozen=True)
class _CompanyContext:
    """The rules' Context for one company's records."""

    mapper: Mapper
    company: str | None

    def table(self, name: str) -> Mapping[str, str] | None:
        return self.mapper.table(name, self.company)

    def default(self, name: str) -> Any:
        return self.mapper.default(name, self.company)


def _check(flow: Flow, target: str, value: Any, source: str) -> None:
    """What the flow says of its target fields: required, amounts in range, max lengths."""
    if target in flow.required and (value is None or (isinstance(value, str) and not value.strip())):
        raise MappingError(f"{target} is required, but source {source} is empty")
    if isinstance(value, int | float) and not isinstance(value, bool) and not abs(value) <= MAX_AMOUNT:
        raise MappingError(f"{target} = {value} is beyond what the target can store (source {source})")
    limit = flow.max_lengths.get(target)
    if limit is not None and isinstance(value, str) and len(value) > limit:
        raise MappingError(
            f"{target} is {len(value)} characters, over the target's maximum of {limit} (source {source})"
        )


def document_hash(payload: Mapping[str, Any], lines: list[MappedLine] | None) -> str:
    """Hash of a record as written: header fields and, for documents, every line."""
    if lines is None:
        return content_hash(payload)
    return content_hash({"header": payload, "lines": [[line.key, line.payload] for line in lines]})


def content_hash(payload: Mapping[str, Any]) -> str:
    return canonical_hash(payload, 32)
