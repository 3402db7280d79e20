"""A company's record names a customer synced for that company, never another company's."""

from __future__ import annotations

from typing import Any

from p2c_core.company_refs import carrying_flows, scoped_row_id
from p2c_core.state import KeyMapEntry

ENTRIES = {
    ("accounts", "usmf|C-1"): KeyMapEntry(flow="accounts", source_key="usmf|C-1", version=3, source_id="us-row"),
    ("accounts", "demf|C-1"): KeyMapEntry(flow="accounts", source_key="demf|C-1", version=5, source_id="de-row"),
    ("accounts", "C-2"): KeyMapEntry(flow="accounts", source_key="C-2", version=1, source_id="old-row"),
    ("accounts", "demf|C-3"): KeyMapEntry(flow="accounts", source_key="demf|C-3", version=1),  # no row id kept
    ("accounts", "demf|C-4"): KeyMapEntry(flow="accounts", source_key="demf|C-4", version=-1),  # never applied
}


def row_id(entity_set: str, column: str, value: Any) -> str | None:
    return f"{entity_set}:{column}:{value}"  # what a look-up by number finds, whichever company


def find(company: str, entity_set: str, column: str, value: str, *, default: bool = False) -> str | None:
    return scoped_row_id(
        lambda flow, key: ENTRIES.get((flow, key)), lambda key: f"{company}|{key}", default, row_id,
        entity_set, column, value,
    )  # fmt: skip


def test_the_customer_of_a_company_s_record_is_the_one_synced_for_that_company():
    assert carrying_flows("accounts", "accountnumber") == ["accounts"]
    assert find("demf", "accounts", "accountnumber", "C-1") == "de-row"
    assert find("usmf", "accounts", "accountnumber", "C-1", default=True) == "us-row"
    assert find("demf", "accounts", "accountnumber", "C-9") is None  # not synced for demf: it waits
    assert find("demf", "accounts", "accountnumber", "C-4") is None


def test_an_entry_without_a_company_is_the_default_company_s_and_an_old_entry_is_read_by_number():
    assert find("usmf", "accounts", "accountnumber", "C-2", default=True) == "old-row"
    assert find("demf", "accounts", "accountnumber", "C-2") is None
    assert find("demf", "accounts", "accountnumber", "C-3") == "accounts:accountnumber:C-3"


def test_reference_data_is_the_org_s():
    assert find("demf", "uoms", "name", "Primary Unit") == "uoms:name:Primary Unit"
    assert find("demf", "products", "productnumber", "D0001") == "products:productnumber:D0001"
    # Orders are Sales- or F&O-born: by their number (one per org), not by the orders key map.
    assert carrying_flows("salesorders", "ordernumber") == []
    assert find("demf", "salesorders", "ordernumber", "DE-SO-1") == "salesorders:ordernumber:DE-SO-1"
