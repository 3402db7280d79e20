"""The catalog of value maps and defaults: names looked up with a hint, and agreeing with settings."""

from __future__ import annotations

import pytest

from p2c_core import catalog
from p2c_core.errors import FlowError
from p2c_core.settings import Defaults, ValueMaps


def test_known_names_give_their_specs():
    country = catalog.value_map("country")
    assert country.folded and country.blank_default == "country" and country.builtin is not None
    assert country.builtin["u.s.a."] == "US" and country.builtin["deutschland"] == "DE"
    assert catalog.value_map("payment_terms").builtin is None  # no template default: optional in flows
    assert catalog.default("customer_group").value == "10"
    assert catalog.default("site").optional and not catalog.default("language").optional


def test_every_blank_default_names_a_default():
    for spec in catalog.VALUE_MAPS.values():
        if spec.blank_default is not None:
            assert catalog.default(spec.blank_default).name == spec.blank_default


def test_folded_builtin_entries_are_already_lower_case_and_trimmed():
    for spec in catalog.VALUE_MAPS.values():
        if spec.folded and spec.builtin:
            assert all(k == k.strip().lower() for k in spec.builtin)


def test_an_unknown_name_fails_with_the_nearest_real_one():
    with pytest.raises(FlowError, match=r"^unknown value map 'Country'; did you mean 'country'\?$"):
        catalog.value_map("Country")  # equal but for case wins over spelling
    with pytest.raises(FlowError, match=r"^unknown default 'langauge'; did you mean 'language'\?$"):
        catalog.default("langauge")


def test_a_name_like_nothing_lists_what_is_known():
    with pytest.raises(FlowError) as caught:
        catalog.default("zzz")
    assert str(caught.value) == f"unknown default 'zzz'; known: {', '.join(sorted(catalog.DEFAULTS))}"


def test_unknown_builds_an_error_without_raising():
    error = catalog.unknown("calculation", "dat", ["date", "datetime"])
    assert isinstance(error, FlowError) and str(error) == "unknown calculation 'dat'; did you mean 'date'?"


def test_settings_models_have_exactly_the_catalogs_names_and_default_values():
    assert set(ValueMaps.model_fields) == set(catalog.VALUE_MAPS)
    assert set(Defaults.model_fields) == set(catalog.DEFAULTS)
    defaults = Defaults()
    for name, spec in catalog.DEFAULTS.items():
        assert getattr(defaults, name) == spec.value
