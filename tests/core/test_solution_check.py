"""p2c_core.solution_check: what `p2c check` requires of the P2C solution, against the solution's own list."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from p2c_core import solution_check

SPEC = json.loads((Path(__file__).resolve().parents[2] / "p2c_sandbox/data/p2c-solution.json").read_text())


def _entity_set(logical: str) -> str:
    return logical[:-1] + "ies" if logical.endswith("y") else logical + "s"


def test_the_required_columns_and_values_are_the_solutions():
    expected = {_entity_set(t): set(cols) - {f"{t}id"} for t, cols in SPEC["columns"].items()}
    assert {k: set(v) for k, v in solution_check.COLUMNS.items()} == expected
    options = SPEC["columns"]["salesorder"]["msdynce_processingstatus"]["options"]
    assert {value: label for value, label in options} == solution_check.PROCESSING_STATUS


def test_missing_tables_columns_and_values_are_named():
    sets = {name: SimpleNamespace(properties=set(cols)) for name, cols in solution_check.COLUMNS.items()}
    del sets["msdynce_p2cautonumbers"]
    sets["contacts"] = SimpleNamespace(properties={"msdynce_isactivecustomer", "msdynce_iscompanyanaccount"})
    asked: list[str] = []

    def request_json(path: str, params: dict[str, str]) -> dict[str, object]:
        asked.append(path)
        return {"OptionSet": {"Options": [{"Value": v} for v in solution_check.PROCESSING_STATUS if v != 647390003]}}

    problems = solution_check.check(sets, request_json)
    assert [(p[0], p[1]) for p in problems] == [
        ("contacts", "msdynce_contactnumber"),
        ("msdynce_p2cautonumbers", ""),
        ("salesorders", "msdynce_processingstatus"),
    ]
    assert problems[-1][2] == "choice values missing: 647390003 Invoiced"
    assert asked == [solution_check.STATUS_ATTRIBUTE]


def test_no_status_values_are_asked_for_when_the_column_is_missing():
    sets = {"salesorders": SimpleNamespace(properties=set())}

    def request_json(path: str, params: dict[str, str]) -> dict[str, object]:
        raise AssertionError("not asked")

    problems = solution_check.check(sets, request_json)
    assert ("salesorders", "msdynce_processingstatus") in {(p[0], p[1]) for p in problems}
