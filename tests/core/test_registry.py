"""The flow registry: a flow is one module; its order, settings and functions follow from it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from p2c_core import flows, registry
from p2c_core.errors import FlowError
from p2c_core.flow import Calc, Dataverse, Default, Field, FinOps, Flow, Ref, ValueMap

# A flow as an integration team would add it: Sales partner accounts -> F&O customers of their own group.
PARTNERS = """
from p2c_core.flow import Const, Dataverse, Field, FinOps, Flow, Where

partners = Flow(
    name="partners",
    source=Dataverse("accounts", key="accountnumber", where=Where.all(customertypecode=5, statecode=0)),
    target=FinOps("CustomersV3", key="CustomerAccount"),
    fields={"CustomerAccount": Field("accountnumber"), "OrganizationName": Field("name"),
            "CustomerGroupId": Const("PART"), "LanguageId": Const("en-us")},
    on_create={"PartyType": Const("Organization")},
    depends_on=("accounts",),
)
"""


def write_module(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.py").write_text(textwrap.dedent(text))
    return folder


def test_a_flow_module_is_registered_after_its_dependencies_and_configurable(tmp_path, monkeypatch):
    # Imported before the registry is extended: function_app builds its module-level app from
    # the registry when first imported, and that app must stay the standard one for other tests.
    from function_app import build_app

    with flows.extended(write_module(tmp_path, "partners", PARTNERS)) as extended:
        names = list(extended.names)
        assert "partners" in names and names.index("partners") > names.index("accounts")
        assert flows.get_flow("partners").queue == "p2c-partners"
        from p2c_core.settings import load_settings, setting_names

        assert {"P2C_FLOWS__PARTNERS__ENABLED", "P2C_FLOWS__PARTNERS__SCHEDULE"} <= set(setting_names())
        monkeypatch.setenv("P2C_FLOWS__PARTNERS__PAUSED", "true")
        settings = load_settings(dataverse_url="http://127.0.0.1:1", fno_url="http://127.0.0.1:2",
                                 fno_company="usmf", auth_mode="none")  # fmt: skip
        assert settings.flow("partners").paused is True
        functions = {f.get_function_name() for f in build_app(extended.flows).get_functions()}
        assert {"partners_poll", "partners_apply"} <= functions
    assert "partners" not in flows.registry().names  # gone with the block
    with pytest.raises(KeyError, match="unknown flow 'partners'"):
        flows.get_flow("partners")


def test_a_misspelled_value_map_fails_when_the_flow_module_is_imported(tmp_path):
    bad = PARTNERS.replace('Field("name")', 'ValueMap("countyr", "name")').replace(
        "import Const,", "import ValueMap, Const,"
    )
    with (
        pytest.raises(FlowError, match=r"unknown value map 'countyr'; did you mean 'country'\?"),
        flows.extended(write_module(tmp_path, "partners", bad)),
    ):
        pass


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (lambda: ValueMap("payment_term", "x"), r"unknown value map 'payment_term'; did you mean 'payment_terms'"),
        (lambda: Default("site_id"), r"unknown default 'site_id'; did you mean"),
        (lambda: Calc("discount", ("a", "b")), r"unknown calculation 'discount'"),
        (lambda: Calc("date", ("a", "b")), r"takes 1 columns, not 2"),
        (lambda: Ref("customerid", ()), r"names no flow"),
    ],
)
def test_every_named_thing_is_checked_when_the_rule_is_made(rule, message):
    with pytest.raises(FlowError, match=message):
        rule()


def flow(name: str, *depends: str, **kw) -> Flow:
    return Flow(name=name, source=Dataverse("accounts", key="accountnumber"),
                target=FinOps("CustomersV3", key="CustomerAccount"),
                fields={"CustomerAccount": Field("accountnumber"), **kw}, depends_on=depends)  # fmt: skip


def test_dependencies_order_the_flows_and_ties_go_by_name():
    built = registry.build([flow("c", "a"), flow("b"), flow("a"), flow("d", "c", "b")])
    assert built.names == ("a", "b", "c", "d")


def test_an_unknown_dependency_a_cycle_and_a_twin_name_are_refused():
    with pytest.raises(FlowError, match=r"depends on unknown flow 'acounts'; did you mean 'accounts'"):
        registry.build([flow("accounts"), flow("quotes", "acounts")])
    with pytest.raises(FlowError, match="cycle"):
        registry.build([flow("a", "b"), flow("b", "a")])
    with pytest.raises(FlowError, match="two flows are named 'a'"):
        registry.build([flow("a"), flow("a")])


def test_a_reference_to_a_flow_that_is_not_a_dependency_is_refused():
    with pytest.raises(FlowError, match="refers to records of accounts, which its depends_on does not list"):
        flow("quotes", Customer=Ref("customerid", ("accounts",)))
    assert flow("quotes", "accounts", Customer=Ref("customerid", ("accounts",))).refers_to() == ("accounts",)


def test_flow_names_fit_queue_names_and_checked_fields_are_mapped():
    with pytest.raises(FlowError, match="flow name 'Bad-Name'"):
        flow("Bad-Name")
    with pytest.raises(FlowError, match="max_lengths names fields it does not map: Nope"):
        Flow(name="x", source=Dataverse("accounts", key="accountnumber"), target=FinOps("CustomersV3", key="K"),
             fields={"K": Field("accountnumber")}, max_lengths={"Nope": 3})  # fmt: skip


def test_the_standard_flows_list_what_they_refer_to():
    for f in flows.all_flows():
        assert set(f.refers_to()) <= set(f.depends_on), f.name
    assert flows.get_flow("invoices").refers_to() == (
        "orders",
        "fno_orders",
        "accounts",
        "contact_customers",
        "products",
    )
