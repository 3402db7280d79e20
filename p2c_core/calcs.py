"""Calculations a flow names by string (`Calc("discount_per_unit", ...)`): the discount rule
and date conversions of FLOWS.md. Each takes source values and returns the target value.
Stdlib only: `rules` checks every name against `CALCS` when a flow module is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

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
