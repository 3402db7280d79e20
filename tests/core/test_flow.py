"""A flow as data: what it selects, its queues, its filters, its rules and references, its checks."""

from __future__ import annotations

from typing import Any

import pytest

from p2c_core.errors import FlowError
from p2c_core.flow import (
    Calc,
    Const,
    Dataverse,
    Eq,
    Field,
    FinOps,
    Flow,
    HeaderLine,
    In,
    Lines,
    Lookup,
    Ne,
    PriceList,
    Ref,
    Where,
)
from p2c_core.flows import get_flow

CUSTOMER = Lookup("customerid", {"accounts": "accountnumber", "contacts": "msdynce_contactnumber"})
PRODUCT = Lookup("productid", {"products": "productnumber"})


def document(**kw: Any) -> Flow:
    """A small Sales -> F&O document flow with lines, header lookups and a filter."""
    lines = Lines(
        source="quotedetails",
        source_parent="quoteid",
        source_key="sequencenumber",
        target="Lines",
        target_parent="Number",
        target_key="Line",
        lookups=(PRODUCT,),
        fields={
            "Line": Field("sequencenumber"),
            "Item": Ref("productid", ("products",), what="product"),
            "Discount": Calc("discount_per_unit", ("manualdiscountamount", "quantity")),
        },
        on_create={"Created": Field("createdon")},
    )
    spec: dict[str, Any] = {
        "name": "docs",
        "source": Dataverse("quotes", key="quotenumber", where=Where.all(statecode=1)),
        "target": FinOps("Headers", key="Number"),
        "resolve": (CUSTOMER,),
        "fields": {
            "Number": Field("quotenumber"),
            "Customer": Ref("customerid", ("accounts", "contact_customers"), what="customer"),
            "Currency": Lookup("transactioncurrencyid", {"transactioncurrencies": "isocurrencycode"}),
        },
        "lines": lines,
        "depends_on": ("accounts", "contact_customers", "products"),
    }
    return Flow(**{**spec, **kw})


# --- source columns ------------------------------------------------------------------------


def test_header_columns_select_lookups_as_value_columns_key_filter_and_document_id():
    assert document().source_columns() == [
        "quotenumber",
        "_customerid_value",  # a Ref column fed by a `resolve` lookup
        "_transactioncurrencyid_value",
        "statecode",  # the filter column: change tracking takes no $filter, so rows are checked
        "quoteid",  # lines name their document by its GUID
    ]


def test_line_columns_select_key_lookups_and_create_only_columns_once_each():
    lines = document().lines
    assert lines is not None
    assert lines.source_columns() == [
        "sequencenumber",
        "_productid_value",
        "manualdiscountamount",
        "quantity",
        "createdon",
    ]


def test_lines_built_from_the_header_are_selected_with_it_and_no_document_id_from_fno():
    flow = Flow(
        name="items",
        source=FinOps("Products", key="ProductNumber"),
        target=Dataverse("products", key="productnumber"),
        fields={"productnumber": Field("ProductNumber")},
        lines=Lines(
            source=None,
            source_parent="ProductNumber",
            source_key=None,
            target="productpricelevels",
            target_parent="productid",
            target_key=None,
            match=("pricelevelid",),
            fields={"pricelevelid": PriceList("CurrencyCode"), "amount": Field("SalesPrice")},
            header_line=HeaderLine(amount="TaxAmount", key=99, fields={"tax": Field("TaxAmount"), "n": Field("Note")}),
        ),
    )
    assert flow.source_columns() == ["ProductNumber", "CurrencyCode", "SalesPrice", "TaxAmount", "Note"]


def test_a_real_flow_selects_what_its_rules_read():
    quotes = get_flow("quotes")
    columns = quotes.source_columns()
    assert columns[0] == "quotenumber" and "_customerid_value" in columns and "customerid" not in columns
    assert {"statecode", "msdynce_hasexternallymaintainedproductsonly", "quoteid"} <= set(columns)
    assert len(columns) == len(set(columns))
    assert quotes.lines is not None and "_uomid_value" in quotes.lines.source_columns()


# --- names and queues ----------------------------------------------------------------------


def test_queues_are_named_after_the_flow_with_dashes():
    flow = document(name="contact_customers")
    assert (flow.queue, flow.poison_queue) == ("p2c-contact-customers", "p2c-contact-customers-poison")


@pytest.mark.parametrize("name", ["Docs", "docs-x", "docs__x", "_docs", "docs_", "1docs", "d" * 53])
def test_a_name_that_cannot_name_a_queue_is_refused(name):
    with pytest.raises(FlowError, match=f"flow name {name!r}: lower-case letters and digits"):
        document(name=name)


def test_the_longest_name_the_error_allows_makes_a_valid_poison_queue():
    flow = document(name="d" * 52)
    assert len(flow.poison_queue) == 63
    with pytest.raises(FlowError, match="at most 52 characters"):
        document(name="d" * 53)


# --- checks at import ------------------------------------------------------------------------


def test_max_lengths_and_required_must_name_mapped_fields():
    with pytest.raises(FlowError, match=r"flow 'docs': max_lengths names fields it does not map: Nmber"):
        document(max_lengths={"Nmber": 20})
    with pytest.raises(FlowError, match=r"flow 'docs': required names fields it does not map: A, B"):
        document(required=("B", "Number", "A"))


def test_references_must_be_listed_in_depends_on():
    with pytest.raises(FlowError, match=r"flow 'docs' refers to records of contact_customers, products, which its"):
        document(depends_on=("accounts",))


# --- rules and references ----------------------------------------------------------------------


def test_all_rules_are_header_create_only_lines_and_header_line():
    header_line = HeaderLine(amount="Tax", key=9, fields={"x": Const("tax")})
    base = document()
    assert base.lines is not None
    flow = document(on_create={"Origin": Const("p2c")}, lines=Lines(**{**vars(base.lines), "header_line": header_line}))
    kinds = [type(r).__name__ for r in flow.all_rules()]
    assert kinds == ["Field", "Ref", "Lookup", "Const", "Field", "Ref", "Calc", "Field", "Const"]
    assert list(flow.rules()) == ["Number", "Customer", "Currency", "Origin"]


def test_refers_to_is_every_referenced_flow_once_in_order():
    assert document().refers_to() == ("accounts", "contact_customers", "products")
    assert get_flow("accounts").refers_to() == ()
    assert set(get_flow("quotes").refers_to()) <= set(get_flow("quotes").depends_on)


def test_lookups_are_the_headers_and_the_resolved_ones_once_each():
    flow = document(resolve=(CUSTOMER, CUSTOMER))
    assert [lookup.column for lookup in flow.lookups()] == ["transactioncurrencyid", "customerid"]


# --- filters ---------------------------------------------------------------------------------


def test_eq_and_ne_as_odata_and_on_rows():
    assert Eq("name", "O'Brien").odata() == "name eq 'O''Brien'"
    assert Eq("statecode", 0).odata() == "statecode eq 0"
    assert Eq("flag", True).odata() == "flag eq true"
    assert Eq("parent", None).odata() == "parent eq null"
    assert Eq("IsExternallyMaintained", "Yes", enum="NoYes").odata() == (
        "IsExternallyMaintained eq Microsoft.Dynamics.DataEntities.NoYes'Yes'"
    )
    assert Ne("a", "x eq y").odata() == "a ne 'x eq y'"  # only the operator is replaced
    assert Ne("Status", "Open", enum="Status").odata() == "Status ne Microsoft.Dynamics.DataEntities.Status'Open'"
    assert Eq("statecode", 0).matches({"statecode": 0}) and not Eq("statecode", 0).matches({"statecode": 1})
    assert Eq("parent", None).matches({}) and not Ne("parent", None).matches({})
    assert Ne("statecode", 0).matches({"statecode": 1}) and not Ne("statecode", 0).matches({"statecode": 0})


def test_in_is_or_joined_eq_terms_and_matches_any():
    term = In("Status", ("Confirmed", "Invoiced"), enum="SalesStatus")
    assert term.odata() == (
        "(Status eq Microsoft.Dynamics.DataEntities.SalesStatus'Confirmed' "
        "or Status eq Microsoft.Dynamics.DataEntities.SalesStatus'Invoiced')"
    )
    assert In("n", (1, 2)).odata() == "(n eq 1 or n eq 2)"
    assert term.matches({"Status": "Invoiced"}) and not term.matches({"Status": "Open"})
    assert not term.matches({})


def test_where_is_a_conjunction_on_both_sides():
    where = Where((Eq("statecode", 0), Ne("name", None), In("type", (3, 5))))
    assert where.odata() == "statecode eq 0 and name ne null and (type eq 3 or type eq 5)"
    assert where.columns() == ("statecode", "name", "type")
    assert where.matches({"statecode": 0, "name": "A", "type": 5})
    assert not where.matches({"statecode": 0, "name": None, "type": 5})
    assert not where.matches({"statecode": 0, "name": "A", "type": 4})
    assert Where.all(customertypecode=3, statecode=0) == Where((Eq("customertypecode", 3), Eq("statecode", 0)))


def test_endpoints_know_their_service_and_sales_tables_their_id_column():
    assert Dataverse("accounts", key="accountnumber").service == "dataverse"
    assert Dataverse("salesorders", key="ordernumber").id_column == "salesorderid"
    assert Dataverse("opportunities", key="x").id_column == "opportunityid"
    source = FinOps("SalesInvoiceHeaders", key="InvoiceNumber", since="InvoiceDate")
    assert (source.service, source.overlap_days, source.more_keys) == ("fno", 3, ())
