"""Turn a source record into a target payload by a flow's mapping table."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from p2c_core.errors import MappingError
from p2c_core.flow import Const, Default, Field, Flow, Lookup, Rule, ValueMap
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
}
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
        if isinstance(rule, Const):
            return True, rule.value
        if isinstance(rule, Default):
            value = getattr(self.settings.defaults, rule.name)
            return value is not None, value
        return self._mapped(rule, data, target)

    def _mapped(self, rule: ValueMap, data: Mapping[str, Any], target: str) -> tuple[bool, Any]:
        table = self.table(rule.map)
        if table is None:
            if rule.optional:
                return False, None
            raise MappingError(f"value map {rule.map!r} is not configured (needed for {target})")
        raw = data.get(rule.column)
        text = "" if raw is None else str(raw).strip()
        if rule.map == "country" and not text:
            return True, self.settings.defaults.country
        if not text:
            return True, None
        lookup = text.lower() if rule.map in _FOLDED else text
        if lookup not in table:
            raise MappingError(
                f"value map {rule.map!r} has no entry for {text!r} "
                f"(source {rule.column} -> target {target}); add it to P2C_VALUE_MAPS__{rule.map.upper()}"
            )
        return True, table[lookup]

    def map(self, flow: Flow, key: str, data: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(payload, create-only fields) for one source record."""
        if not key.strip():
            raise MappingError(f"{flow.source.entity_set} record has an empty {flow.source.key}")
        return self._apply(flow, flow.fields, data), self._apply(flow, flow.on_create, data)

    def _apply(self, flow: Flow, rules: Mapping[str, Rule], data: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for target, rule in rules.items():
            present, value = self.value_of(rule, data, target)
            if not present:
                continue
            limit = flow.max_lengths.get(target)
            if limit is not None and isinstance(value, str) and len(value) > limit:
                raise MappingError(
                    f"{target} is {len(value)} characters, over the target's maximum of {limit} "
                    f"(source {getattr(rule, 'column', target)})"
                )
            out[target] = value
        return out


def content_hash(payload: Mapping[str, Any]) -> str:
    text = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]
