"""`nearest`: the "did you mean" of mapping checks, stable when several names are as close."""

from __future__ import annotations

from p2c_core.suggest import nearest


def test_the_first_of_equally_close_names_whatever_the_order():
    names = ["telephone3", "telephone1", "telephone2", "fax"]
    assert nearest("telephone", names) == "telephone1"
    assert nearest("telephone", set(reversed(names))) == "telephone1"


def test_exact_in_another_case_and_nothing_close():
    assert nearest("NAME", {"name", "names"}) == "name"
    assert nearest("zzz", {"name"}) is None
