import pytest

from p2c_core import overlay
from p2c_core.errors import SettingsError
from p2c_core.flows import get_flow


def test_a_list_holds_the_change_for_every_company_and_one_change_per_company():
    parsed = overlay.parse(
        '[{"defaults": {"customer_group": "20"}},'
        ' {"company": "DEMF", "flows": {"accounts": {"drop": ["SalesMemo"],'
        ' "where": [{"column": "name", "ne": "X"}]}}}]'
    )
    assert parsed.defaults == {"customer_group": "20"} and set(parsed.companies) == {"demf"}
    accounts = parsed.apply(get_flow("accounts"))
    german = parsed.apply_for(accounts, "demf")
    assert "SalesMemo" in accounts.fields and "SalesMemo" not in german.fields
    assert german.source.where is not None and german.source.where.matches(
        {"name": "Y", "customertypecode": 3, "statecode": 0}
    )
    assert not german.source.where.matches({"name": "X", "customertypecode": 3, "statecode": 0})
    assert parsed.apply_for(accounts, "usmf") is accounts


def test_one_object_naming_a_company_is_that_companys_change_only():
    parsed = overlay.parse('{"company": "demf", "defaults": {"language": "de"}}')
    assert parsed.defaults == {} and parsed.company_defaults("demf") == {"language": "de"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"defaults": {}}, {"value_maps": {}}]', r"\[1\]: a second change for every company"),
        ('[{"company": "demf"}, {"company": "DEMF"}]', r"\[1\]: a second change for company demf"),
        (
            '[{"company": "demf", "flows": {"acounts": {}}}]',
            r"company demf: no flow is named 'acounts'; did you mean 'accounts'",
        ),
        (
            '[{"company": "demf", "defaults": {"langauge": "de"}}]',
            r"unknown default 'langauge'; did you mean 'language'",
        ),
        ('[{"company": "de-mf"}]', r"\[0\]\.company"),
        ("[1]", r"\[0\]: expected a JSON object"),
    ],
)
def test_a_bad_change_for_one_company_is_refused_naming_it(text, message):
    with pytest.raises(SettingsError, match=message):
        overlay.parse(text)


def test_a_fields_origin_names_the_company_whose_change_sets_it():
    parsed = overlay.parse(
        '[{"company": "demf", "flows": {"accounts": {"fields": {"SalesDistrict": {"kind": "const", "value": "D"}}}}}]'
    )
    assert parsed.origin("accounts", "SalesDistrict", "demf") == "overlay (demf)"
    assert parsed.origin("accounts", "SalesDistrict") == "standard"
