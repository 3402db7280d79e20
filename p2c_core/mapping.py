"""Turn a source record into a target payload by a flow's mapping table."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from p2c_core.errors import MappingError
from p2c_core.flow import Bind, Calc, Const, Default, Field, Flow, Lookup, PriceList, Ref, Rule, ValueMap
from p2c_core.settings import Settings

# Template defaults (FLOWS.md); a configured map extends/overrides these.
COUNTRY_NAMES: dict[str, str] = {
    "united states": "US",
    "united states of america": "US",
    "usa": "US",
    "us": "US",
    "u.s.": "US",
    "u.s.a.": "US",
    "america": "US",
    "canada": "CA",
    "ca": "CA",
    "mexico": "MX",
    "mx": "MX",
    "united kingdom": "GB",
    "uk": "GB",
    "gb": "GB",
    "great britain": "GB",
    "england": "GB",
    "germany": "DE",
    "deutschland": "DE",
    "de": "DE",
    "france": "FR",
    "fr": "FR",
    "netherlands": "NL",
    "nl": "NL",
    "spain": "ES",
    "es": "ES",
    "italy": "IT",
    "it": "IT",
    "denmark": "DK",
    "dk": "DK",
    "sweden": "SE",
    "se": "SE",
    "norway": "NO",
    "no": "NO",
    "ireland": "IE",
    "ie": "IE",
    "australia": "AU",
    "au": "AU",
    "japan": "JP",
    "jp": "JP",
    "china": "CN",
    "cn": "CN",
    "india": "IN",
    "in": "IN",
    "brazil": "BR",
    "br": "BR",
}
BUILTIN_MAPS: dict[str, dict[str, str]] = {
    "country": COUNTRY_NAMES,
    "unit": {"ea": "Primary Unit"},
    "product_type": {"Item": "1", "Service": "3"},
    "price_list": {"USD": "CRM Service USA (sample)"},
    # F&O SalesOrderProcessingStatus -> the P2C choice msdynce_processingstatus in Sales
    # (p2c-solution.json's values; FLOWS.md, orders, gives this default map).
    "processing_status": {
        "Active": "647390000",
        "Confirmed": "647390001",
        "Picked": "647390004",
        "PartiallyDelivered": "647390008",
        "Delivered": "647390007",
        "Invoiced": "647390003",
        "PartiallyInvoiced": "647390009",
        "DeliveredPartiallyInvoiced": "647390009",
        "Canceled": "647390010",
    },
}
# The largest amount both services store (Dataverse money: 922,337,203,685,477).
MAX_AMOUNT = 922_337_203_685_477
# F&O's "no date" in non-nullable date-time properties.
NO_DATE = "1900-01-01T00:00:00Z"


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0))


def _cents(value: Decimal) -> float:
    return float(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def discount_per_unit(total: Any, quantity: Any) -> float:
    """Sales line discount (a line total) -> F&O per-unit LineDiscountAmount, to the cent."""
    q = _money(quantity)
    return 0.0 if q == 0 else _cents(_money(total) / q)


def discount_remainder(total: Any, quantity: Any) -> float:
    """What rounding the per-unit discount lost, as an F&O charge (3 x 3.33 for 10.00 -> -0.01)."""
    q = _money(quantity)
    if q == 0:
        return _cents(-_money(total))
    return _cents(q * Decimal(str(discount_per_unit(total, quantity))) - _money(total))


def discount_total(per_unit: Any, quantity: Any, charge: Any) -> float:
    """F&O per-unit discount and its rounding charge -> the Sales line total."""
    return _cents(_money(quantity) * _money(per_unit) - _money(charge))


def as_datetime(value: Any) -> str:
    """A Sales date -> an F&O date-time (noon UTC keeps the day in every time zone)."""
    return NO_DATE if not value else f"{str(value)[:10]}T12:00:00Z"


def as_date(value: Any) -> str | None:
    """An F&O date-time -> a Sales date; F&O's 1900-01-01 means none."""
    return None if not value or str(value).startswith("1900-01-01") else str(value)[:10]


CALCS: dict[str, Callable[..., Any]] = {
    "discount_per_unit": discount_per_unit,
    "discount_remainder": discount_remainder,
    "discount_total": discount_total,
    "datetime": as_datetime,
    "date": as_date,
}


@dataclass(frozen=True)
class Reference:
    """A mapped value that names another record; the target's resolver turns it into the
    value to write (a key, a property of that record, or an @odata.bind)."""

    rule: Ref | Bind | PriceList
    value: Any

    def __str__(self) -> str:  # stable in content hashes
        return f"ref:{self.value}"


@dataclass
class MappedLine:
    key: Any
    payload: dict[str, Any]
    create_only: dict[str, Any]


# Maps looked up case- and space-insensitively (free text in Sales).
_FOLDED = {"country"}


class Mapper:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def table(self, name: str) -> dict[str, str] | None:
        configured: dict[str, str] | None = getattr(self.settings.value_maps, name, None)
        builtin = BUILTIN_MAPS.get(name)
        if configured is None and builtin is None:
            return None
        merged = {**(builtin or {}), **(configured or {})}
        if name in _FOLDED:
            return {k.strip().lower(): v for k, v in merged.items()}
        return merged

    def value_of(self, rule: Rule, data: Mapping[str, Any], target: str) -> tuple[bool, Any]:
        """(present, value): present=False leaves the target field out."""
        if isinstance(rule, Field):
            value = data.get(rule.column)
            return True, rule.default if value is None else value
        if isinstance(rule, Lookup):
            return True, data.get(rule.column)
        if isinstance(rule, Ref):
            value = data.get(rule.column)
            if value in (None, ""):
                raise MappingError(f"no {rule.what} set (source {rule.column} -> target {target})")
            return True, Reference(rule, value)
        if isinstance(rule, Const):
            return True, rule.value
        if isinstance(rule, Default):
            value = getattr(self.settings.defaults, rule.name)
            return value is not None, value
        if isinstance(rule, Calc):
            return True, CALCS[rule.function](*(data.get(c) for c in rule.columns))
        if isinstance(rule, Bind):
            present, value = self.value_of(rule.value, data, target)
            return present, Reference(rule, value) if value not in (None, "") else None
        if isinstance(rule, PriceList):
            currency = data.get(rule.currency)
            return True, Reference(rule, currency) if currency else None
        return self._mapped(rule, data, target)

    def _mapped(self, rule: ValueMap, data: Mapping[str, Any], target: str) -> tuple[bool, Any]:
        table = self.table(rule.map)
        if table is None:
            if rule.optional:
                return False, None
            raise MappingError(f"value map {rule.map!r} is not configured (needed for {target})")
        raw = data.get(rule.column)
        text = "" if raw is None else str(raw).strip()
        if rule.map == "country" and not text and not rule.reverse:
            return True, self.settings.defaults.country
        if not text:
            return True, None
        if rule.reverse:
            table = {v: k for k, v in table.items()}
        lookup = text.lower() if rule.map in _FOLDED and not rule.reverse else text
        if lookup not in table:
            raise MappingError(
                f"value map {rule.map!r} has no entry for {text!r} "
                f"(source {rule.column} -> target {target}); add it to P2C_VALUE_MAPS__{rule.map.upper()}"
            )
        value = table[lookup]
        if rule.number:
            try:
                return True, int(value)
            except ValueError:
                raise MappingError(f"value map {rule.map!r} maps {text!r} to {value!r}, not a choice number") from None
        return True, value

    def map(self, flow: Flow, key: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(payload, create-only fields) for one source record."""
        if not key.strip():
            raise MappingError(f"{flow.source.entity_set} record has an empty {flow.source.key}")
        return self._apply(flow, flow.fields, data), self._apply(flow, flow.on_create, data)

    def map_lines(self, flow: Flow, data: Mapping[str, Any]) -> list[MappedLine] | None:
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
            payload = self._apply(flow, lines.fields, row)
            create_only = self._apply(flow, lines.on_create, row)
            out.append(MappedLine(key=key, payload=payload, create_only=create_only))
        extra = lines.header_line
        if extra is not None and data.get(extra.amount):
            out.append(MappedLine(key=extra.key, payload=self._apply(flow, extra.fields, data), create_only={}))
        keys = [line.key for line in out if line.key is not None]
        if len(keys) != len(set(keys)):
            raise MappingError(
                f"two lines share one {lines.source_key}: {sorted(k for k in keys if keys.count(k) > 1)}"
            )
        return out

    def _apply(self, flow: Flow, rules: Mapping[str, Rule], data: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for target, rule in rules.items():
            present, value = self.value_of(rule, data, target)
            if not present:
                continue
            source = getattr(rule, "column", target)
            if target in flow.required and (value is None or (isinstance(value, str) and not value.strip())):
                raise MappingError(f"{target} is required, but source {source} is empty")
            if isinstance(value, int | float) and not isinstance(value, bool) and not abs(value) <= MAX_AMOUNT:
                raise MappingError(f"{target} = {value} is beyond what the target can store (source {source})")
            limit = flow.max_lengths.get(target)
            if limit is not None and isinstance(value, str) and len(value) > limit:
                raise MappingError(
                    f"{target} is {len(value)} characters, over the target's maximum of {limit} "
                    f"(source {getattr(rule, 'column', target)})"
                )
            out[target] = value
        return out


def document_hash(payload: Mapping[str, Any], lines: list[MappedLine] | None) -> str:
    """Hash of a record as written: header fields and, for documents, every line."""
    if lines is None:
        return content_hash(payload)
    return content_hash({"header": payload, "lines": [[line.key, line.payload] for line in lines]})


def content_hash(payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
