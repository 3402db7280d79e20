"""The owning team of a company's new Sales rows, looked up in the sandbox's `teams`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from p2c_core.companies import Companies, CompanyEntry
from p2c_core.errors import MappingError
from p2c_core.flows import get_flow
from p2c_core.owners import OWNER_BIND, OwnerTeams
from p2c_sandbox.seed_sales_companies import DE_TEAM, US_TEAM
from tests.core.sandboxed import Services, services

TWO = Companies(
    default="usmf",
    entries={
        "usmf": CompanyEntry(business_unit="Contoso US"),
        "demf": CompanyEntry(business_unit="Contoso DE"),
        "gbsi": CompanyEntry(business_unit="Contoso UK", team="Contoso DE"),
        "jpmf": CompanyEntry(business_unit="Contoso JP"),
    },
)


@pytest.fixture(scope="module")
def svc() -> Iterator[Services]:
    with services() as s:
        yield s


def test_a_company_s_rows_are_owned_by_its_business_unit_s_default_team_or_its_own(svc: Services):
    owners = OwnerTeams(svc.dataverse, TWO)
    orders = get_flow("fno_orders")
    assert owners.bind(orders, "usmf") == {OWNER_BIND: f"/teams({US_TEAM})"}
    assert owners.bind(orders, "demf") == {OWNER_BIND: f"/teams({DE_TEAM})"}
    assert owners.bind(orders, "gbsi") == {OWNER_BIND: f"/teams({DE_TEAM})"}  # the entry's team
    svc.reset_counts()
    assert owners.bind(get_flow("invoices"), "demf") == {OWNER_BIND: f"/teams({DE_TEAM})"}
    assert svc.requests() == []  # remembered


def test_no_owner_with_one_company_for_an_f_and_o_target_or_an_organization_owned_table(svc: Services):
    owners = OwnerTeams(svc.dataverse, TWO)
    assert owners.bind(get_flow("fno_orders"), None) == {}  # one company: the calling user owns it
    assert owners.bind(get_flow("accounts"), "demf") == {}  # written to F&O
    assert owners.bind(get_flow("products"), "demf") == {}  # Sales products are the org's
    by_code = Companies(default="usmf", entries={"usmf": CompanyEntry(company_code="USMF")})
    assert OwnerTeams(svc.dataverse, by_code).bind(get_flow("fno_orders"), "usmf") == {}


def test_a_team_missing_in_sales_fails_naming_the_company_and_the_team(svc: Services):
    with pytest.raises(MappingError, match=r"default team of business unit 'Contoso JP' \(owner of company jpmf"):
        OwnerTeams(svc.dataverse, TWO).bind(get_flow("fno_orders"), "jpmf")
