"""The named things a flow may refer to: value maps and defaults (settings), with their
built-in values. Flows name them by string; `rules` checks every name against this
catalog when a flow module is imported, and `settings` builds its models from it, so a
name exists in one place. Stdlib only: read at every cold start.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from p2c_core.errors import FlowError
from p2c_core.suggest import did_you_mean


@dataclass(frozen=True)
class ValueMapSpec:
    """A value map: a JSON object setting `P2C_VALUE_MAPS__<NAME>` that extends `builtin`."""

    name: str
    meaning: str
    builtin: Mapping[str, str] | None = None
    # Looked up case- and space-insensitively (free text in Sales, such as country names).
    folded: bool = False
    # The default (a DEFAULTS name) a blank source value maps to; None: blank stays blank.
    blank_default: str | None = None


@dataclass(frozen=True)
class DefaultSpec:
    """A default value: the setting `P2C_DEFAULTS__<NAME>`; `value` None means "not set"."""

    name: str
    meaning: str
    value: str | None
    optional: bool = False
    examples: tuple[str, ...] = field(default=())


# Template defaults (FLOWS.md); a configured map extends/overrides these.
COUNTRY_NAMES: dict[str, str] = {
    **dict.fromkeys(["united states", "united states of america", "usa", "us", "u.s.", "u.s.a.", "america"], "US"),
    **dict.fromkeys(["canada", "ca"], "CA"),
    **dict.fromkeys(["mexico", "mx"], "MX"),
    **dict.fromkeys(["united kingdom", "uk", "gb", "great britain", "england"], "GB"),
    **dict.fromkeys(["germany", "deutschland", "de"], "DE"),
    **dict.fromkeys(["france", "fr"], "FR"),
    **dict.fromkeys(["netherlands", "nl"], "NL"),
    **dict.fromkeys(["spain", "es"], "ES"),
    **dict.fromkeys(["italy", "it"], "IT"),
    **dict.fromkeys(["denmark", "dk"], "DK"),
    **dict.fromkeys(["sweden", "se"], "SE"),
    **dict.fromkeys(["norway", "no"], "NO"),
    **dict.fromkeys(["ireland", "ie"], "IE"),
    **dict.fromkeys(["australia", "au"], "AU"),
    **dict.fromkeys(["japan", "jp"], "JP"),
    **dict.fromkeys(["china", "cn"], "CN"),
    **dict.fromkeys(["india", "in"], "IN"),
    **dict.fromkeys(["brazil", "br"], "BR"),
}

VALUE_MAPS: dict[str, ValueMapSpec] = {
    spec.name: spec
    for spec in (
        ValueMapSpec(
            "country",
            "Sales country text -> F&O ISO code (blank -> the country default)",
            COUNTRY_NAMES,
            folded=True,
            blank_default="country",
        ),
        ValueMapSpec("unit", "F&O unit symbol <-> Sales unit name", {"ea": "Primary Unit"}),
        ValueMapSpec("price_list", "currency -> Sales price list name", {"USD": "CRM Service USA (sample)"}),
        ValueMapSpec("payment_terms", "Sales payment terms choice <-> F&O terms (not mapped unless set)"),
        ValueMapSpec("freight_terms", "Sales freight terms choice <-> F&O delivery terms (not mapped unless set)"),
        ValueMapSpec("shipping_method", "Sales shipping method choice <-> F&O delivery mode (not mapped unless set)"),
        ValueMapSpec("product_type", "F&O product type -> Sales product type", {"Item": "1", "Service": "3"}),
        ValueMapSpec(
            "processing_status",
            "F&O order processing status -> the P2C solution's Sales msdynce_processingstatus choice",
            # p2c-solution.json's values; FLOWS.md, orders, gives this default map.
            {
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
        ),
    )
}

DEFAULTS: dict[str, DefaultSpec] = {
    spec.name: spec
    for spec in (
        DefaultSpec("customer_group", "F&O customer group of new customers", "10"),
        DefaultSpec("site", "default site on customers", "1", optional=True),
        DefaultSpec("warehouse", "default warehouse on customers", "13", optional=True),
        DefaultSpec("language", "customer language", "en-us"),
        DefaultSpec("country", "ISO country when the Sales country is blank", "US"),
        DefaultSpec("unit_group", "Sales unit group of new products", "Default Unit"),
    )
}


def unknown(kind: str, name: str, known: Iterable[str]) -> FlowError:
    """The error for a name that is not in the catalog, naming the nearest real one."""
    return FlowError(f"unknown {kind} {name!r}{did_you_mean(name, known)}")


def value_map(name: str) -> ValueMapSpec:
    try:
        return VALUE_MAPS[name]
    except KeyError:
        raise unknown("value map", name, VALUE_MAPS) from None


def default(name: str) -> DefaultSpec:
    try:
        return DEFAULTS[name]
    except KeyError:
        raise unknown("default", name, DEFAULTS) from None
