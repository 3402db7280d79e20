"""`check` holds value maps against closed choices (issue 17): a Dataverse choice's options
and an F&O enum's members, at the source (every value needs an entry) and at the target
(every value written must exist there)."""

from __future__ import annotations

import json

import pytest

from p2c_core import ops
from tests.e2e.conftest import E2E


def problems_at(e2e: E2E, column: str) -> dict[str, str]:
    """flow -> what check says of that column."""
    return {p.flow: p.problem for p in ops.check(e2e.runtime) if p.name == column}


def test_the_standard_maps_fit_the_closed_choices(e2e: E2E):
    assert ops.check(e2e.runtime) == []


def test_a_choice_option_without_a_map_entry_is_named_for_every_flow_reading_it(
    e2e: E2E, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("P2C_VALUE_MAPS__PAYMENT_TERMS", json.dumps({"1": "Net30", "3": "Net45"}))
    e2e.restart_runtime()
    found = problems_at(e2e, "paymenttermscode")
    assert set(found) == {"accounts", "quotes", "orders"}
    # The options the sandbox's choice column has and the map lacks, with their labels.
    assert "no entry for 2 (2% 10, Net 30), 4 (Net 60)" in found["accounts"]
    assert "P2C_VALUE_MAPS__PAYMENT_TERMS" in found["accounts"]


def test_a_map_writing_a_value_the_target_choice_lacks_is_named(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(
        "P2C_MAPPING_OVERLAY", json.dumps({"value_maps": {"processing_status": {"Confirmed": "647399999"}}})
    )
    e2e.restart_runtime()
    found = problems_at(e2e, "msdynce_processingstatus")
    assert list(found) == ["fno_orders"]
    assert "writes 647399999, not options of this closed choice" in found["fno_orders"]
    assert "647390001" in found["fno_orders"]  # the valid options are listed


def test_an_enum_member_without_a_map_entry_is_named(e2e: E2E, monkeypatch: pytest.MonkeyPatch):
    # F&O -> Sales: every SalesOrderProcessingStatus member F&O publishes needs an entry. The
    # map's entries are extended, never removed, by settings; so drop one in the catalog copy.
    from p2c_core import catalog

    spec = catalog.VALUE_MAPS["processing_status"]
    builtin = {k: v for k, v in (spec.builtin or {}).items() if k != "Picked"}
    monkeypatch.setitem(catalog.VALUE_MAPS, "processing_status", type(spec)(**{**spec.__dict__, "builtin": builtin}))
    found = problems_at(e2e, "SalesOrderProcessingStatus")
    assert list(found) == ["fno_orders"]
    assert "no entry for Picked of this closed choice" in found["fno_orders"]
