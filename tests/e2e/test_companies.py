"""Several legal entities, Sales -> F&O (issue 23): records routed to their company, keys
carrying it, per-company defaults and value maps, and the upgrade from one company."""

from __future__ import annotations

import json
from typing import Any

import pytest

from p2c_core import ops
from p2c_core.envelope import Envelope, Record
from p2c_core.flows import get_flow
from p2c_core.signing import seal

from .conftest import E2E

accounts = get_flow("accounts")
BY_UNIT = {
    "usmf": {"business_unit": "Contoso US"},
    "demf": {"business_unit": "Contoso DE", "defaults": {"customer_group": "40", "language": "de"},
             "value_maps": {"payment_terms": {"1": "14T"}}},
}  # fmt: skip


def use_companies(e2e: E2E, monkeypatch: pytest.MonkeyPatch, companies: dict[str, Any], **more: str) -> None:
    monkeypatch.setenv("P2C_COMPANIES", json.dumps(companies))
    for name, value in more.items():
        monkeypatch.setenv(name, value)
    e2e.restart_runtime()


def customers(e2e: E2E, company: str) -> dict[str, dict[str, Any]]:
    return {r["CustomerAccount"]: r for r in e2e.sandbox.fno.rows("CustomersV3") if r["dataAreaId"] == company}


def send(e2e: E2E, records: list[Record]) -> bytes:
    body = seal(Envelope(flow="accounts", records=records), e2e.runtime.signing_key)  # as the poll signs it
    e2e.storage.queue(accounts.queue).send_message(body)
    e2e.host.drain(timeout=60, idle_sleep=0.05)
    return body


def account(number: str, name: str, **more: Any) -> dict[str, Any]:
    return {"accountnumber": number, "name": name, "customertypecode": 3, "statecode": 0, **more}


def test_a_message_and_a_key_map_written_before_the_company_map_belong_to_the_default_company(e2e: E2E, monkeypatch):
    e2e.sync("accounts")  # one company: key map entries under the bare account numbers
    synced = next(e for e in e2e.runtime.state.entries("accounts") if e.version >= 0)
    use_companies(e2e, monkeypatch, BY_UNIT)
    # As the previous release queued them: no company, bare keys.
    old = Record(key="OLD-1", version=1, data=account("OLD-1", "Old Message Ltd"))
    again = Record(key=synced.source_key, version=synced.version, data=account(synced.source_key, "Renamed Ltd"))
    body = send(e2e, [old, again])
    assert b'"company"' not in body
    us, de = customers(e2e, "usmf"), customers(e2e, "demf")
    assert us["OLD-1"]["OrganizationName"] == "Old Message Ltd" and "OLD-1" not in de
    assert us[synced.source_key]["OrganizationName"] == "Renamed Ltd" and synced.source_key not in de
    assert us["OLD-1"]["CustomerGroupId"] == "10"  # the default company's (global) defaults
    state = e2e.runtime.state
    assert state.get_entry("accounts", "usmf|OLD-1") is not None and state.get_entry("accounts", "OLD-1") is None
    moved = state.get_entry("accounts", f"usmf|{synced.source_key}")
    assert moved is not None and moved.version == synced.version and moved.target_key == synced.source_key
    assert not {f.source_key for f in state.failures("accounts")} & {"OLD-1", "usmf|OLD-1", moved.source_key}


def test_records_of_two_companies_in_one_message_are_written_each_to_its_own_with_its_own_defaults(
    e2e: E2E, monkeypatch
):
    use_companies(e2e, monkeypatch, BY_UNIT, P2C_VALUE_MAPS__PAYMENT_TERMS='{"1": "Net30"}')
    records = [
        Record(key="usmf|TWO-1", company="usmf", version=1, data=account("TWO-1", "US Ltd", paymenttermscode=1)),
        Record(key="demf|TWO-1", company="demf", version=1, data=account("TWO-1", "DE GmbH", paymenttermscode=1)),
        Record(key="demf|TWO-2", company="demf", version=1, data=account("TWO-2", "Zwei GmbH")),
    ]
    send(e2e, records)
    us, de = customers(e2e, "usmf"), customers(e2e, "demf")
    assert us["TWO-1"]["OrganizationName"] == "US Ltd" and de["TWO-1"]["OrganizationName"] == "DE GmbH"
    assert "TWO-2" not in us and de["TWO-2"]["OrganizationName"] == "Zwei GmbH"
    assert (us["TWO-1"]["CustomerGroupId"], us["TWO-1"]["LanguageId"], us["TWO-1"]["PaymentTerms"]) == (
        "10",
        "en-us",
        "Net30",
    )
    assert (de["TWO-1"]["CustomerGroupId"], de["TWO-1"]["LanguageId"], de["TWO-1"]["PaymentTerms"]) == (
        "40",
        "de",
        "14T",
    )
    keys = {e.source_key: e.target_key for e in e2e.runtime.state.entries("accounts")}
    assert keys == {"usmf|TWO-1": "TWO-1", "demf|TWO-1": "TWO-1", "demf|TWO-2": "TWO-2"}


def business_units(e2e: E2E) -> dict[str, str]:
    return {str(u["businessunitid"]).lower(): u["name"] for u in e2e.sandbox.dataverse.rows("businessunits")}


def add_account(e2e: E2E, number: str, name: str, team: str, **more: Any) -> None:
    with e2e.dataverse() as dv:
        body = {**account(number, name, **more), "ownerid@odata.bind": f"/teams({team})"}
        dv.post("accounts", json=body).raise_for_status()


def company_of(e2e: E2E) -> Any:
    """Row -> the company it belongs to, from the Sales tables and the company map (not p2c's code)."""
    entries = e2e.runtime.companies.entries
    if all(e.business_unit for e in entries.values()):
        units = business_units(e2e)
        by_unit = {e.business_unit: c for c, e in entries.items()}
        return lambda row: by_unit.get(units.get(str(row.get("_owningbusinessunit_value")).lower()))
    codes = {str(r["cdm_companyid"]).lower(): r["cdm_companycode"] for r in e2e.sandbox.dataverse.rows("cdm_companies")}
    by_code = {e.company_code: c for c, e in entries.items()}
    return lambda row: by_code.get(codes.get(str(row.get("_msdyn_company_value")).lower()))


def expected_by_company(e2e: E2E) -> dict[str, dict[str, dict[str, Any]]]:
    """What F&O must hold per company, from the Sales rows: each account in the company its
    business unit (or company column) maps to, mapped with that company's defaults and value maps."""
    from p2c_core.errors import MappingError
    from p2c_core.mapping import Mapper

    belongs = company_of(e2e)
    currencies = {
        str(c["transactioncurrencyid"]).lower(): c["isocurrencycode"]
        for c in e2e.sandbox.dataverse.rows("transactioncurrencies")
    }
    mapper = Mapper(e2e.runtime.settings)
    expected: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in e2e.runtime.companies.ids}
    for row in e2e.sandbox.dataverse.rows("accounts"):
        key, company = row.get("accountnumber"), belongs(row)
        if row.get("customertypecode") != 3 or row.get("statecode") != 0 or not key or company is None:
            continue
        data = {**row, "transactioncurrencyid": currencies.get(str(row.get("_transactioncurrencyid_value")).lower())}
        try:
            payload, create = mapper.map(accounts, key, data, company)
        except MappingError:
            continue
        expected[company][key] = {**payload, **create}
    return expected


def assert_in_their_companies(e2e: E2E, natives: dict[str, set[str]]) -> None:
    for company, want in expected_by_company(e2e).items():
        got = {k: r for k, r in customers(e2e, company).items() if r.get("PartyType") != "Person"}  # accounts'
        assert set(got) - natives[company] == set(want), f"exactly {company}'s accounts, none of another company"
        for key, fields in want.items():
            for name, value in fields.items():
                actual = got[key].get(name)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    assert actual is not None and float(actual) == float(value), (company, key, name)
                else:
                    assert actual == value, (company, key, name, actual, value)


def test_every_account_lands_in_the_company_its_business_unit_maps_to_field_by_field(e2e: E2E, monkeypatch):
    from p2c_sandbox.seed_sales_companies import DE_TEAM, US_TEAM

    natives = {c: set(customers(e2e, c)) for c in ("usmf", "demf")}
    use_companies(e2e, monkeypatch, BY_UNIT)  # the demo's payment terms map: 1 Net30, 2 Net10
    add_account(e2e, "DE-ACC-1", "Erste GmbH", DE_TEAM, paymenttermscode=1, address1_country="Germany")
    add_account(e2e, "DE-ACC-2", "Zweite GmbH", DE_TEAM, paymenttermscode=2)  # 2: the global entry (demf has none)
    add_account(e2e, "US-ACC-1", "First Inc", US_TEAM, paymenttermscode=1)
    flow = e2e.sync("accounts").flows["accounts"]
    assert flow.failed == 2  # the seed's two bad accounts, as with one company
    assert_in_their_companies(e2e, natives)
    de = customers(e2e, "demf")
    assert (de["DE-ACC-1"]["CustomerGroupId"], de["DE-ACC-1"]["PaymentTerms"]) == ("40", "14T")
    assert de["DE-ACC-2"]["PaymentTerms"] == "Net10" and customers(e2e, "usmf")["US-ACC-1"]["PaymentTerms"] == "Net30"
    entries = {e.source_key for e in e2e.runtime.state.entries("accounts") if not e.source_key.startswith("accounts(")}
    assert {"demf|DE-ACC-1", "usmf|US-ACC-1"} <= entries and all("|" in k for k in entries)
    again = e2e.sync("accounts").flows["accounts"]
    assert again.written == 0 and again.failed == 0  # idle: one read serves both companies


def test_an_account_in_an_unmapped_business_unit_is_skipped_and_counted(e2e: E2E, monkeypatch):
    from p2c_sandbox import organization

    uk_team = organization.add_business_unit(
        e2e.sandbox.dataverse_service, "5e1f0000-0000-4000-8000-0000000000c9", "Contoso UK"
    )
    use_companies(e2e, monkeypatch, BY_UNIT)
    add_account(e2e, "UK-ACC-1", "British Ltd", uk_team)
    planned = {c.key: c for c in ops.plan(e2e.runtime, "accounts")}
    assert planned["UK-ACC-1"].action == "skip" and "business unit 'Contoso UK'" in str(planned["UK-ACC-1"].reason)
    assert all(c.company in ("usmf", "demf") for k, c in planned.items() if k != "UK-ACC-1" and c.action != "fail")
    e2e.sync("accounts")
    assert all("UK-ACC-1" not in customers(e2e, c) for c in ("usmf", "demf"))
    assert "UK-ACC-1" not in {f.source_key.partition("|")[2] for f in e2e.runtime.state.failures("accounts")}
    poll = next(r for r in e2e.runtime.state.runs("accounts", limit=50) if r.kind == "poll")
    assert poll.counts.get("outside") == 1 and poll.counts.get("skipped", 0) >= 1
    report = ops.status(e2e.runtime)
    assert report["companies"] == ["usmf", "demf"]
    flow = report["flows"]["accounts"]
    assert (
        flow["outside_24h"] == 1 and "Contoso" not in flow["outside_reason"] and "usmf, demf" in flow["outside_reason"]
    )
    assert {f["company"] for f in ops.failures(e2e.runtime, "accounts") if "|" in f["source_key"]} == {"usmf"}
    drift = ops.reconcile(e2e.runtime, "accounts")
    assert drift.outside == 1 and drift.missing == [] and drift.differing == {}
    assert all(k.startswith("usmf|") for k in drift.unmappable)


def test_an_account_whose_owner_moved_to_another_business_unit_fails_naming_both_companies(e2e: E2E, monkeypatch):
    from p2c_sandbox.seed_sales_companies import DE_TEAM, US_TEAM

    use_companies(e2e, monkeypatch, BY_UNIT)
    add_account(e2e, "MOVE-1", "Moving Inc", US_TEAM)
    e2e.sync("accounts")
    assert customers(e2e, "usmf")["MOVE-1"]["OrganizationName"] == "Moving Inc"
    row = next(r for r in e2e.sandbox.dataverse.rows("accounts") if r.get("accountnumber") == "MOVE-1")
    with e2e.dataverse() as dv:
        dv.patch(
            f"accounts({row['accountid']})",
            json={"ownerid@odata.bind": f"/teams({DE_TEAM})", "name": "Moved GmbH"},
            headers={"If-Match": "*"},
        ).raise_for_status()
    e2e.sync("accounts")
    failure = next(f for f in e2e.runtime.state.failures("accounts") if f.source_key == "demf|MOVE-1")
    assert failure.error_class == "CompanyChanged"
    assert "company usmf" in failure.message and "company demf" in failure.message
    assert "MOVE-1" not in customers(e2e, "demf")  # nothing written to either
    assert customers(e2e, "usmf")["MOVE-1"]["OrganizationName"] == "Moving Inc"


def test_check_names_a_misspelt_legal_entity_business_unit_and_team_with_the_nearest_real_one(e2e: E2E, monkeypatch):
    use_companies(e2e, monkeypatch, BY_UNIT)
    assert [p for p in ops.check(e2e.runtime) if p.flow == "P2C_COMPANIES"] == []
    wrong = {
        "usmf": {"business_unit": "Contoso US"},
        "demx": {"business_unit": "Contoso DF", "team": "Contoso  DE team"},
    }
    use_companies(e2e, monkeypatch, wrong)
    problems = [str(p) for p in ops.check(e2e.runtime) if p.flow == "P2C_COMPANIES"]
    assert any("LegalEntities.demx: no such legal entity (did you mean 'DEMF'?)" in p for p in problems), problems
    assert any(
        "businessunits.demx: Contoso DF: no such business unit (did you mean 'Contoso DE'?)" in p for p in problems
    )
    assert any("teams.demx: Contoso  DE team: no such team" in p for p in problems), problems
    # A company's own value map is held against the closed choices too, and named with its company.
    use_companies(
        e2e, monkeypatch, {**BY_UNIT, "demf": {**BY_UNIT["demf"], "value_maps": {"payment_terms": {"2": None}}}}
    )
    problems = [str(p) for p in ops.check(e2e.runtime)]
    assert any(
        p.startswith("accounts (demf): dataverse") and "'payment_terms' has no entry for 2" in p for p in problems
    )
    assert not any(p.startswith("accounts (usmf)") or ("accounts:" in p and "payment_terms" in p) for p in problems)


def docs_overlay(title: str) -> list[dict[str, Any]]:
    """The JSON block under a `### title` heading of docs/customizing.md: the test runs what the docs show."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "customizing.md").read_text()
    return json.loads(text.split(f"### {title}\n", 1)[1].split("```json\n", 1)[1].split("```", 1)[0])


def test_the_docs_overlay_for_one_company_changes_that_companys_records_only(e2e: E2E, monkeypatch):
    from p2c_core.ops.mappings import effective
    from p2c_sandbox.seed_sales_companies import DE_TEAM, US_TEAM

    plain = {"usmf": {"business_unit": "Contoso US"}, "demf": {"business_unit": "Contoso DE"}}
    overlay = json.dumps(docs_overlay("A default and a value map for one company"))
    use_companies(e2e, monkeypatch, plain, P2C_MAPPING_OVERLAY=overlay)
    add_account(e2e, "OV-DE-1", "Overlay GmbH", DE_TEAM, paymenttermscode=1)
    add_account(e2e, "OV-US-1", "Overlay Inc", US_TEAM, paymenttermscode=1)
    planned = {c.key: c for c in ops.plan(e2e.runtime, "accounts")}
    assert planned["demf|OV-DE-1"].fields["CustomerGroupId"] == (None, "40")
    assert planned["usmf|OV-US-1"].fields["CustomerGroupId"] == (None, "10")
    e2e.sync("accounts")
    de, us = customers(e2e, "demf")["OV-DE-1"], customers(e2e, "usmf")["OV-US-1"]
    assert (de["CustomerGroupId"], de["PaymentTerms"], de["SalesDistrict"]) == ("40", "14T", "DACH")
    assert (us["CustomerGroupId"], us["PaymentTerms"], us["SalesDistrict"]) == ("10", "Net30", "GLOBAL")
    origins = {(r.target, r.origin) for r in effective(e2e.runtime, "accounts")}
    assert {("SalesDistrict", "overlay"), ("SalesDistrict", "overlay (demf)")} <= origins


def test_an_overlay_change_for_a_company_not_in_the_map_stops_the_app_naming_the_nearest(e2e: E2E, monkeypatch):
    from p2c_core.errors import SettingsError
    from p2c_core.settings import load_settings

    monkeypatch.setenv("P2C_COMPANIES", json.dumps(BY_UNIT))
    monkeypatch.setenv("P2C_MAPPING_OVERLAY", '[{"company": "dmef", "defaults": {"customer_group": "40"}}]')
    with pytest.raises(SettingsError, match=r"company 'dmef', which is not in P2C_COMPANIES .*did you mean 'demf'"):
        load_settings()
    monkeypatch.delenv("P2C_COMPANIES")  # one company: a change for usmf is one for its only company
    monkeypatch.setenv("P2C_MAPPING_OVERLAY", '[{"company": "usmf", "defaults": {"customer_group": "30"}}]')
    e2e.restart_runtime()
    assert e2e.runtime.mapper.default("customer_group") == "30"


def test_an_overlay_filter_for_one_company_leaves_out_that_companys_rows_only(e2e: E2E, monkeypatch):
    from p2c_sandbox.seed_sales_companies import DE_TEAM, US_TEAM

    only_germany = [
        {"company": "demf", "flows": {"accounts": {"where": [{"column": "address1_country", "eq": "Germany"}]}}}
    ]
    use_companies(e2e, monkeypatch, BY_UNIT, P2C_MAPPING_OVERLAY=json.dumps(only_germany))
    add_account(e2e, "WH-DE-1", "Inland GmbH", DE_TEAM, address1_country="Germany")
    add_account(e2e, "WH-DE-2", "Pariser GmbH", DE_TEAM, address1_country="France")
    add_account(e2e, "WH-US-1", "Paris Inc", US_TEAM, address1_country="France")
    e2e.sync("accounts")
    de, us = customers(e2e, "demf"), customers(e2e, "usmf")
    assert "WH-DE-1" in de and "WH-DE-2" not in de and "WH-DE-2" not in us and "WH-US-1" in us
    assert ops.reconcile(e2e.runtime, "accounts").missing == []  # the filtered row is not missing either
