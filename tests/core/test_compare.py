"""One value comparison for the writer and the drift report."""

from __future__ import annotations

import pytest

from p2c_core.compare import TOLERANCE, bound_id, identity, same


@pytest.mark.parametrize(
    ("now", "new"),
    [
        (0.1 + 0.2, 0.3),  # a float that round-trips a hair off
        (10, 10.0),
        (3.33, 3.3300000000001),
        ("Net30", "Net30"),
        (None, None),
        (True, True),
    ],
)
def test_equal_values(now, new):
    assert same(now, new)


@pytest.mark.parametrize(
    ("now", "new"),
    [
        (3.33, 3.34),
        (1.0, 1.0 + 10 * TOLERANCE),
        ("Net30", "net30"),  # field values are case-sensitive; only keys are compared case-blind
        (None, 0),
        ("1", 1),
        (True, False),
        (False, None),
    ],
)
def test_different_values(now, new):
    assert not same(now, new)


def test_bound_id_is_the_lower_cased_guid_of_a_bind_path():
    assert bound_id("/pricelevels(0F8FAD5B-D9CB-469F-A165-70867728950E)") == "0f8fad5b-d9cb-469f-a165-70867728950e"
    assert bound_id("/uoms(abc)") == "abc"
    assert bound_id("no parenthesis") is None
    assert bound_id(None) is None and bound_id(42) is None


def test_identity_is_case_blind_whole_floats_are_ints_and_tuples_element_wise():
    assert identity("ABC-1") == identity("abc-1") == "abc-1"
    assert identity(2.0) == 2 and isinstance(identity(2.0), int)
    assert identity(2.5) == 2.5
    assert identity(("A", 1.0, None)) == ("a", 1, None)
    assert identity(None) is None
