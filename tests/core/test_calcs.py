"""Calculations flows name: the discount rule of FLOWS.md and the date conversions."""

from __future__ import annotations

import inspect

import pytest

from p2c_core.calcs import (
    CALCS,
    NO_DATE,
    as_date,
    as_datetime,
    discount_per_unit,
    discount_remainder,
    discount_total,
)


@pytest.mark.parametrize(
    ("total", "quantity", "per_unit", "charge"),
    [(10.0, 3, 3.33, -0.01), (10.0, 7, 1.43, 0.01), (0, 5, 0.0, 0.0), (25.0, 4, 6.25, 0.0), (5.0, 0, 0.0, -5.0)],
)
def test_the_discount_rule_splits_a_line_total_and_comes_back_to_it(total, quantity, per_unit, charge):
    assert (discount_per_unit(total, quantity), discount_remainder(total, quantity)) == (per_unit, charge)
    if quantity:
        assert discount_total(per_unit, quantity, charge) == total  # FLOWS.md: 3 x 3.33 - (-0.01) = 10.00


def test_missing_amounts_count_as_zero_and_halves_round_up():
    assert discount_per_unit(None, 3) == 0.0 and discount_per_unit(10, None) == 0.0
    assert discount_remainder(None, None) == 0.0
    assert discount_total(None, None, None) == 0.0
    assert discount_per_unit(0.125, 1) == 0.13  # ROUND_HALF_UP on the decimal, not binary float rounding
    assert discount_per_unit("10.00", "4") == 2.5  # decimals may come as strings


def test_a_sales_date_becomes_noon_utc_and_none_becomes_fnos_no_date():
    assert as_datetime("2026-12-01") == "2026-12-01T12:00:00Z"
    assert as_datetime("2026-12-01T23:30:00Z") == "2026-12-01T12:00:00Z"
    assert as_datetime(None) == NO_DATE == "1900-01-01T00:00:00Z"
    assert as_datetime("") == NO_DATE


def test_an_fno_date_time_becomes_a_sales_date_and_1900_means_none():
    assert as_date("2026-12-01T12:00:00Z") == "2026-12-01"
    assert as_date(NO_DATE) is None and as_date("1900-01-01T12:00:00Z") is None
    assert as_date(None) is None and as_date("") is None


def test_the_registry_names_each_calculation_with_its_arity():
    arity = {name: len(inspect.signature(fn).parameters) for name, fn in CALCS.items()}
    assert arity == {"discount_per_unit": 2, "discount_remainder": 2, "discount_total": 3, "datetime": 1, "date": 1}
