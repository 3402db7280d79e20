"""The mapping overlay: the examples of docs/customizing.md, each planned and then synced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from p2c_core import ops
from p2c_core.errors import SettingsError
from p2c_core.runtime import get_runtime, reset_runtime
from p2c_sandbox.schema import Prop
from tests.e2e.conftest import E2E
from tests.e2e.test_accounts import fno_customers

DOCS = Path(__file__).resolve().parents[2] / "docs" / "customizing.md"


def doc_example(title: str) -> dict[str, Any]:
    """The JSON block under a `### title` heading in docs/customizing.md: the tests run what the docs show."""
    text = DOCS.read_text()
    section = text.split(f"### {title}\n", 1)[1]
    return json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])


def use_overlay(e2e: E2E, monkeypatch: pytest.MonkeyPatch, overlay: dict[str, Any]) -> None:
    monkeypatch.setenv("P2C_MAPPING_OVERLAY", json.dumps(overlay))
    e2e.restart_runtime()


def customer_accounts(e2e: E2E, n: int = 2) -> list[dict[str, Any]]:
    synced = fno_customers(e2e)
    rows = [r for r in e2e.sandbox.dataverse.rows("accounts") if r.get("accountnumber") in synced]
    return sorted(rows, key=lambda r: r["accountnumber"])[:n]


def patch_account(e2e: E2E, account: dict[str, Any], **values: Any) -> None:
    with e2e.dataverse() as dv:
        dv.patch(f"accounts({account['accountid']})", json=values, headers={"If-Match": "*"}).raise_for_status()


def planned(e2e: E2E, flow: str) -> dict[str, ops.PlannedChange]:
    return {change.key: change for change in ops.plan(e2e.runtime, flow)}


def test_a_custom_column_added_to_accounts(e2e: E2E, monkeypatch):
    e2e.sandbox.dataverse_service.add_columns("accounts", {"new_salesdistrict": Prop("Edm.String", max_length=10)})
    e2e.sync("accounts")
    use_overlay(e2e, monkeypatch, doc_example("Add a custom field"))
    (account,) = customer_accounts(e2e, 1)
    patch_account(e2e, account, new_salesdistrict="NW-7")
    change = planned(e2e, "accounts")[account["accountnumber"]]
    assert change.action == "update" and change.fields["SalesDistrict"] == (None, "NW-7")
    e2e.sync("accounts")
    assert fno_customers(e2e)[account["accountnumber"]]["SalesDistrict"] == "NW-7"
    assert ops.check(e2e.runtime) == []  # the column exists on both sides and fits


def test_a_field_dropped(e2e: E2E, monkeypatch):
    e2e.sync("accounts")
    use_overlay(e2e, monkeypatch, doc_example("Stop sending a field"))
    (account,) = customer_accounts(e2e, 1)
    before = fno_customers(e2e)[account["accountnumber"]]["SalesMemo"]
    patch_account(e2e, account, description="Edited in Sales only", name="Renamed Ltd")
    change = planned(e2e, "accounts")[account["accountnumber"]]
    assert "SalesMemo" not in change.fields and change.fields["OrganizationName"][1] == "Renamed Ltd"
    e2e.sync("accounts")
    after = fno_customers(e2e)[account["accountnumber"]]
    assert after["SalesMemo"] == before and after["OrganizationName"] == "Renamed Ltd"


def test_a_filter_term_added(e2e: E2E, monkeypatch):
    e2e.sync("accounts")
    overlay = doc_example("Sync only some records")
    use_overlay(e2e, monkeypatch, overlay)
    (term,) = overlay["flows"]["accounts"]["where"]
    kept, dropped = customer_accounts(e2e, 2)
    patch_account(e2e, kept, name="Kept Ltd", **{term["column"]: term["eq"]})
    patch_account(e2e, dropped, name="Dropped Ltd", **{term["column"]: "Elsewhere"})
    plan = planned(e2e, "accounts")
    assert plan[kept["accountnumber"]].action == "update" and dropped["accountnumber"] not in plan
    summary = e2e.sync("accounts")
    customers = fno_customers(e2e)
    assert customers[kept["accountnumber"]]["OrganizationName"] == "Kept Ltd"
    assert customers[dropped["accountnumber"]]["OrganizationName"] != "Dropped Ltd"
    assert summary.flows["accounts"].skipped >= 1


def test_a_value_map_extended(e2e: E2E, monkeypatch):
    e2e.sync("accounts")
    (account,) = customer_accounts(e2e, 1)
    patch_account(e2e, account, address1_country="Holland")
    assert e2e.sync("accounts").flows["accounts"].failed == 1  # not in the built-in country names
    use_overlay(e2e, monkeypatch, doc_example("Extend a value map"))
    assert planned(e2e, "accounts") == {}  # the failed change was read already: replay it
    ops.replay(e2e.runtime, "accounts", {account["accountnumber"]})
    e2e.sync("accounts")
    assert fno_customers(e2e)[account["accountnumber"]]["DeliveryAddressCountryRegionISOCode"] == "NL"


def test_a_default_set(e2e: E2E, monkeypatch):
    use_overlay(e2e, monkeypatch, doc_example("Set a default"))
    plan = planned(e2e, "accounts")
    assert {c.fields["CustomerGroupId"][1] for c in plan.values() if c.action == "create"} == {"20"}
    e2e.sync("accounts")
    numbers = {r.get("accountnumber") for r in e2e.sandbox.dataverse.rows("accounts")}
    assert {c["CustomerGroupId"] for k, c in fno_customers(e2e).items() if k in numbers} == {"20"}


@pytest.mark.parametrize(
    ("overlay", "message"),
    [
        ({"flows": {"acounts": {}}}, "no flow is named 'acounts'; did you mean 'accounts'"),
        ({"flows": {"accounts": {"drop": ["SalesMemoo"]}}}, "drops field 'SalesMemoo'.*did you mean 'SalesMemo'"),
        ({"flows": {"accounts": {"fields": {"X": {"kind": "feild", "column": "a"}}}}}, "unknown rule kind 'feild'"),
        ({"flows": {"accounts": {"fields": {"X": {"kind": "calc", "function": "dte", "columns": ["a"]}}}}},
         "unknown calculation 'dte'; did you mean 'date'"),
        ({"value_maps": {"contry": {"a": "b"}}}, "unknown value map 'contry'; did you mean 'country'"),
    ],
)  # fmt: skip
def test_a_bad_overlay_is_refused_at_start_naming_it(e2e: E2E, monkeypatch, overlay, message):
    monkeypatch.setenv("P2C_MAPPING_OVERLAY", json.dumps(overlay))
    reset_runtime()
    with pytest.raises(SettingsError, match=message):
        get_runtime()
    app = subprocess.run([sys.executable, "-c", "import function_app"], capture_output=True, text=True)
    assert app.returncode != 0 and "P2C_MAPPING_OVERLAY" in app.stderr  # the function app does not start


def test_check_names_text_copied_into_a_number_and_a_misspelled_column(e2e: E2E, monkeypatch):
    e2e.sandbox.dataverse_service.add_columns("accounts", {"new_region": Prop("Edm.String", max_length=60)})
    fields = {"OrganizationNumberOfEmployees": {"kind": "field", "column": "new_region"},
              "SalesDistrict": {"kind": "field", "column": "new_regoin"}}  # fmt: skip
    use_overlay(e2e, monkeypatch, {"flows": {"accounts": {"fields": fields}}})
    problems = [str(p) for p in ops.check(e2e.runtime)]
    assert any("OrganizationNumberOfEmployees" in p and "text (new_region) into a number" in p for p in problems)
    assert any("accounts.new_regoin: not a property (did you mean 'new_region'?)" in p for p in problems)


def test_check_names_a_column_too_long_for_the_standard_target_field(e2e: E2E, monkeypatch):
    # 60 characters into CustomerAccount, which takes 20 (FLOWS.md; F&O's $metadata has no MaxLength).
    e2e.sandbox.dataverse_service.add_columns("accounts", {"new_longnumber": Prop("Edm.String", max_length=60)})
    fields = {"CustomerAccount": {"kind": "field", "column": "new_longnumber"}}
    use_overlay(e2e, monkeypatch, {"flows": {"accounts": {"fields": fields}}})
    [problem] = [str(p) for p in ops.check(e2e.runtime) if p.name == "CustomerAccount"]
    assert "new_longnumber holds up to 60 characters, CustomerAccount takes 20" in problem
    # Declaring the limit in the overlay makes a longer value fail by name: check is satisfied.
    use_overlay(e2e, monkeypatch, {"flows": {"accounts": {"fields": fields, "max_lengths": {"CustomerAccount": 20}}}})
    assert [p for p in ops.check(e2e.runtime) if p.name == "CustomerAccount"] == []


def test_mappings_show_marks_what_the_overlay_changed(e2e: E2E, monkeypatch):
    from typer.testing import CliRunner

    from p2c_cli.main import app

    use_overlay(e2e, monkeypatch, {**doc_example("Add a custom field"), **doc_example("Set a default")})
    result = CliRunner().invoke(app, ["mappings", "show", "accounts", "--json"])
    assert result.exit_code == 0, result.output
    rows = {r["target"]: r for r in json.loads(result.output)}
    assert rows["SalesDistrict"]["origin"] == "overlay" and rows["SalesDistrict"]["source"] == "new_salesdistrict"
    assert rows["OrganizationName"]["origin"] == "standard" and rows["IsExternallyMaintained"]["when"] == "on create"
