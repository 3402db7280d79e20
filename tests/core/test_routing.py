from typing import Any

import pytest

from p2c_core import routing
from p2c_core.companies import Companies, CompanyEntry
from p2c_core.envelope import Record
from p2c_core.flows import get_flow

BY_UNIT = Companies(
    default="usmf",
    entries={"usmf": CompanyEntry(business_unit="Contoso US"), "demf": CompanyEntry(business_unit="Contoso DE")},
)
BY_CODE = Companies(
    default="usmf",
    entries={"usmf": CompanyEntry(company_code="USMF"), "demf": CompanyEntry(company_code="DEMF")},
)
ONE = Companies(default="usmf", entries={})


def test_a_row_maps_to_the_company_of_its_business_unit_or_company_code():
    assert routing.company_of_row(BY_UNIT, {"owningbusinessunit": " contoso de "}) == "demf"
    assert routing.company_of_row(BY_UNIT, {"owningbusinessunit": "Contoso UK"}) is None  # outside every company
    assert routing.company_of_row(BY_UNIT, {"owningbusinessunit": None}) is None
    assert routing.company_of_row(BY_CODE, {"msdyn_company": "DEMF"}) == "demf"
    assert routing.company_of_row(ONE, {}) == "usmf"


def test_only_sales_to_fno_flows_read_the_company_column_and_only_with_several_companies():
    accounts, products = get_flow("accounts"), get_flow("products")
    assert routing.BUSINESS_UNIT in routing.reading(accounts, BY_UNIT).lookups()
    assert routing.COMPANY_CODE in routing.reading(accounts, BY_CODE).lookups()
    assert routing.reading(accounts, ONE) is accounts and routing.reading(products, BY_UNIT) is products
    assert routing.routes(BY_UNIT, accounts) and not routing.routes(ONE, accounts)


def test_a_routed_record_carries_its_company_and_the_qualified_key():
    record = routing.routed(BY_UNIT, Record(key="ACC-1", version=3), "demf")
    assert (record.key, record.company) == ("demf|ACC-1", "demf")
    assert '"company":"demf"' in record.to_json()


def test_a_record_queued_before_the_company_map_belongs_to_the_default_company():
    old = Record.model_validate({"key": "ACC-1", "version": 3})  # as the previous release wrote it
    assert old.company is None
    now = routing.normalized(BY_UNIT, old)
    assert (now.key, now.company) == ("usmf|ACC-1", "usmf")
    assert routing.normalized(ONE, old) is old  # one company: applied as it always was


def test_a_row_moved_to_another_company_fails_naming_both_and_a_bare_key_is_the_default_companys():
    accounts = get_flow("accounts")
    with pytest.raises(routing.CompanyChanged, match="written to company usmf and now belongs to company demf"):
        routing.check_company(BY_UNIT, accounts, "usmf|ACC-1", "demf|ACC-1", "guid-1")
    with pytest.raises(routing.CompanyChanged, match="company usmf and now belongs to company demf"):
        routing.check_company(BY_UNIT, accounts, "ACC-1", "demf|ACC-1", "guid-1")  # written before the map
    routing.check_company(BY_UNIT, accounts, "usmf|ACC-1", "usmf|ACC-2", "guid-1")  # a changed key: not this check
    assert routing.same_record(BY_UNIT, "ACC-1", "usmf|ACC-1")
    assert not routing.same_record(BY_UNIT, "ACC-1", "demf|ACC-1")


def test_the_change_tracking_read_selects_the_company_column():
    from p2c_core.sources import DataverseChanges

    reader = DataverseChanges(None, routing.reading(get_flow("quotes"), BY_UNIT), None)  # type: ignore[arg-type]
    assert "_owningbusinessunit_value" in reader.select()
    assert "_owningbusinessunit_value" not in DataverseChanges(None, get_flow("quotes"), None).select()  # type: ignore[arg-type]


def test_many_entries_are_read_as_one_by_one_also_under_the_bare_keys_of_before_the_company_map(storage):
    from datetime import timedelta
    from types import SimpleNamespace

    from p2c_core.state import StateStore

    state = StateStore(storage)
    # What routing reads of a Runtime: its state and its company map.
    rt: Any = SimpleNamespace(state=state, companies=BY_UNIT)
    for key in ["B-1", "B-2", "B-3", "usmf|Q-1", "usmf|B-2"]:  # bare: written with one company
        claimed = state.claim(None, "accounts", key, 1, timedelta(seconds=30))
        state.commit(claimed, version=1 if "|" not in key else 5, hash="h", target_key=key, master="dataverse")
    keys = ["usmf|B-1", "usmf|B-2", "usmf|Q-1", "demf|B-3", "usmf|NONE"]
    found = routing.entries(rt, "accounts", keys)
    assert found == {k: e for k in keys if (e := routing.entry(rt, "accounts", k)) is not None}
    assert sorted(found) == ["usmf|B-1", "usmf|B-2", "usmf|Q-1"]  # demf's bare key is not its own
    assert (found["usmf|B-1"].source_key, found["usmf|B-1"].etag, found["usmf|B-1"].version) == ("usmf|B-1", None, 1)
    assert found["usmf|B-2"].version == 5 and found["usmf|B-2"].etag  # the qualified entry first
