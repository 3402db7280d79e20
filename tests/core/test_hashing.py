"""The canonical hash is stored (key map content hashes, F&O row digests): its form is fixed.

The expected strings below were computed once; if one changes, every record is re-sent once
after an upgrade, so a change here must be deliberate.
"""

from __future__ import annotations

import datetime

from p2c_core.hashing import canonical_hash
from p2c_core.mapping import MappedLine, content_hash, document_hash
from p2c_core.sources import digest

CUSTOMER = {"CustomerAccount": "ACC-1", "OrganizationName": "Müller", "CreditLimit": 0}


def test_the_hash_of_a_fixed_value_is_a_fixed_string():
    assert canonical_hash(CUSTOMER) == "5a1ab58e2316a71e2e942a2732723a23"
    assert canonical_hash({"b": [1, 2.5, None, True], "a": "x"}, 24) == "11bc9b843c91494aca258b68"
    assert canonical_hash({"d": datetime.date(2026, 12, 1)}) == "f3e3bac8a261c351338220542392a4f1"  # str() of others


def test_stored_forms_content_hash_document_hash_and_row_digest_are_fixed():
    assert content_hash(CUSTOMER) == "5a1ab58e2316a71e2e942a2732723a23"
    line = MappedLine(key=1, payload={"q": 2}, create_only={"ignored": True})
    assert document_hash({"a": 1}, [line]) == "4c3436db1f65171482fcab09fbd2a968"
    assert document_hash(CUSTOMER, None) == content_hash(CUSTOMER)
    assert digest({"ProductNumber": "D0001", "SalesPrice": 9.5}) == "b832e78cc3665316838b51a6"


def test_key_order_does_not_change_the_hash_values_do():
    assert canonical_hash({"a": 1, "b": {"x": 1, "y": 2}}) == canonical_hash({"b": {"y": 2, "x": 1}, "a": 1})
    assert canonical_hash({"a": 1}) != canonical_hash({"a": 2})
    assert canonical_hash({"a": 1}) != canonical_hash({"a": "1"})
    assert canonical_hash([1, 2]) != canonical_hash([2, 1])  # list order is content


def test_length_is_a_prefix_of_the_same_digest():
    full = canonical_hash(CUSTOMER, 64)
    assert len(full) == 64 and full.startswith(canonical_hash(CUSTOMER))
    assert full.startswith(canonical_hash(CUSTOMER, 24))
    assert len(digest({"k": "v"})) == 24
