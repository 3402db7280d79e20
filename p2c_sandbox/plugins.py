"""The P2C solution's plug-ins, as server-side reactions to the sandbox's Dataverse writes.

`data/p2c-solution.json` lists the 19 steps the managed solution registers (table, message,
stage, mode, filtering attributes); what each does is not in the solution XML, so the
handlers below do what FLOWS.md ("The P2C solution in Sales") says, inferred from the step
names, their filtering attributes and Microsoft's template pages:
- numbering: new accounts and contacts get `ACC-01000-BVRCPS` / `CON-...` from the
  `msdynce_p2cautonumber` rows (prefix, sequence, suffix length);
- flags: `msdynce_iscompanyanaccount` on contacts from their parent, `msdynce_isactivecustomer`
  on a contact that is a quote's, order's or invoice's customer, and
  `msdynce_hasexternallymaintainedproductsonly` on quotes and orders from their lines;
- a product created or repriced goes on its default price list (else the active one of its
  currency) as a price list item, one per product and list;
- an order's or invoice's header `msdynce_misctax` is one write-in line "Freight Tax"
  (`msdynce_ismisctax`), never two, none at zero. Only the asynchronous update steps have no
  filtering attributes, so a changed misc tax is applied by them, after the write returns;
- an invoice linked to an order sets the order to Invoiced and the invoice's owner to the
  order's owner.
Pre-operation steps change the row before it is stored or refuse the write; synchronous
post-operation steps run in the write's transaction; asynchronous ones run on a worker
thread afterwards (`settle()` waits for them). Plug-ins' own writes go through the same
messages, so their steps run too, to Dataverse's depth limit of 8.
"""

from __future__ import annotations

import queue
import string
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from p2c_sandbox import solution
from p2c_sandbox.schema import EntitySchema
from p2c_sandbox.service import ServiceError
from p2c_sandbox.store import Row

if TYPE_CHECKING:
    from p2c_sandbox.org import Org

MAX_DEPTH = 8  # "Plug-in depth": a chain deeper than 8 fails as an infinite loop
FREIGHT_TAX = "Freight Tax"
# msdynce_p2cautonumber rows an org with the solution starts with: table -> (column, prefix).
NUMBERED = {"account": ("accountnumber", "ACC"), "contact": ("msdynce_contactnumber", "CON")}
FIRST_NUMBER = 2000  # past the demo's numbers
SUFFIX_LENGTH = 6
# Document lines -> the lookup to their header.
LINE_PARENT = {"quotedetail": "quoteid", "salesorderdetail": "salesorderid", "invoicedetail": "invoiceid"}
# The line's copy of its document's "externally maintained products only".
LINE_FLAG = {
    "quotedetail": "msdynce_quotehasexternalmaintainedproductsonly",
    "salesorderdetail": "msdynce_orderhasexternalmaintainedproductsonly",
}


@dataclass
class Context:
    """One message on one row, as a step sees it."""

    service: Org
    schema: EntitySchema
    row: Row  # pre-operation: the row about to be stored (a step may change it); post: as stored
    before: Row | None  # update and delete: the stored row before the message
    columns: set[str]  # the columns the request set (lookups by their logical name)

    def table(self, logical: str) -> EntitySchema:
        return next(s for s in self.service.schemas.values() if s.entity_type == logical)


Handler = Callable[[Context], None]


@dataclass(frozen=True)
class Step:
    plugin_type: str
    table: str
    message: str  # Create | Update | Delete
    stage: str  # pre-operation | post-operation
    mode: str  # synchronous | asynchronous
    filtering: frozenset[str]
    handler: Handler

    def fires(self, columns: set[str]) -> bool:
        """An update step with filtering attributes runs only when one of them is set."""
        return self.message != "Update" or not self.filtering or bool(self.filtering & columns)


class Plugins:
    """The registered steps of one Dataverse service, and its asynchronous queue."""

    def __init__(self, service: Org, *, enabled: bool) -> None:
        self.service = service
        self.steps: list[Step] = steps() if enabled else []
        self.depth = threading.local()
        self.jobs: queue.Queue[tuple[Step, Context] | None] = queue.Queue()
        self.worker: threading.Thread | None = None
        self.errors: list[str] = []  # failed asynchronous jobs (Dataverse: a failed system job)

    def run(
        self, message: str, stage: str, schema: EntitySchema, row: Row, before: Row | None, columns: set[str]
    ) -> Row:
        """Run the steps of one message and stage; returns the row (changed by pre-operation steps)."""
        names = {c[1:-6] if c.startswith("_") and c.endswith("_value") else c for c in columns}
        due = [
            s
            for s in self.steps
            if (s.table, s.message, s.stage) == (schema.entity_type, message, stage) and s.fires(names)
        ]
        if not due:
            return row
        depth = getattr(self.depth, "value", 0)
        if depth >= MAX_DEPTH:
            raise ServiceError(400, "0x80044182", "This workflow job was canceled because the workflow that started "
                               "it included an infinite loop.")  # fmt: skip
        context = Context(self.service, schema, dict(row), before, names)
        self.depth.value = depth + 1
        try:
            for step in due:
                if step.mode == "asynchronous":
                    self._enqueue(step, context)
                else:
                    step.handler(context)
        finally:
            self.depth.value = depth
        return context.row

    def _enqueue(self, step: Step, context: Context) -> None:
        if self.worker is None or not self.worker.is_alive():
            self.worker = threading.Thread(target=self._work, name="p2c-solution-async", daemon=True)
            self.worker.start()
        self.jobs.put((step, context))

    def _work(self) -> None:
        while (job := self.jobs.get()) is not None:
            step, context = job
            try:
                stored = self.service.store.get(context.schema.entity_set, context.row[context.schema.keys[0]])
                if stored is not None:  # deleted meanwhile: nothing to do
                    with self.service.store.transaction():
                        step.handler(Context(self.service, context.schema, stored, context.before, context.columns))
            except Exception as exc:
                self.errors.append(f"{step.plugin_type}: {exc}")
            finally:
                self.jobs.task_done()

        self.jobs.task_done()  # the stop mark

    def settle(self) -> None:
        """Wait until every asynchronous job queued so far has run (tests; Dataverse has no such call)."""
        self.jobs.join()

    def close(self) -> None:
        """Stop the worker once the queued jobs have run."""
        if self.worker is not None and self.worker.is_alive():
            self.jobs.put(None)
            self.worker.join()


# --- numbering -------------------------------------------------------------------------


def _number(context: Context) -> None:
    column, prefix = NUMBERED[context.schema.entity_type]
    if context.row.get(column):
        return
    numbers = context.table(solution.AUTONUMBER_TABLE)
    settings = next(
        (
            r
            for r in context.service.store.find_by(
                numbers.entity_set, {"msdynce_entityname": context.schema.entity_type}
            )
        ),
        None,
    )
    if settings is not None:
        prefix, start = settings["msdynce_prefix"], settings["msdynce_numbersequence"]
        length = settings["msdynce_suffixlength"]
    else:
        start, length = FIRST_NUMBER, SUFFIX_LENGTH
    n = context.service.store.next(f"p2c-autonumber:{context.schema.entity_type}", start)
    tail = "".join(string.ascii_uppercase[(n * 7919 // 26**i) % 26] for i in range(length))
    context.row[column] = f"{prefix}-{n:05d}-{tail}"


def autonumber_rows() -> list[Row]:
    """The `msdynce_p2cautonumber` rows of a new org with the solution."""
    return [
        {
            "msdynce_p2cautonumberid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"p2c-autonumber:{table}")),
            "msdynce_entityname": table,
            "msdynce_name": f"{table} number",
            "msdynce_prefix": prefix,
            "msdynce_numbersequence": FIRST_NUMBER,
            "msdynce_suffixlength": SUFFIX_LENGTH,
        }
        for table, (_, prefix) in NUMBERED.items()
    ]


# --- flags -------------------------------------------------------------------------------


def _company_is_account(context: Context) -> None:
    parent = context.row.get("_parentcustomerid_value")
    accounts = context.table("account")
    context.row["msdynce_iscompanyanaccount"] = (
        bool(parent) and context.service.store.get(accounts.entity_set, parent) is not None
    )


def _customer_is_active(context: Context) -> None:
    customer = context.row.get("_customerid_value")
    contacts = context.table("contact")
    contact = context.service.store.get(contacts.entity_set, customer) if customer else None
    if contact is not None and not contact.get("msdynce_isactivecustomer"):
        context.service.modify(contacts, contact, {"msdynce_isactivecustomer": True})


def _externally_maintained_only(context: Context, *, deleting: bool = False) -> None:
    """A quote's or order's flag from its lines, as they will be after this message."""
    parent_column = f"_{LINE_PARENT[context.schema.entity_type]}_value"
    parent_id = context.row.get(parent_column)
    header_schema = context.service.schemas[context.schema.lookups[LINE_PARENT[context.schema.entity_type]]]
    header = context.service.store.get(header_schema.entity_set, parent_id) if parent_id else None
    if header is None:
        return
    pk = context.schema.keys[0]
    lines = context.service.store.find_by(context.schema.entity_set, {parent_column: parent_id})  # indexed: no scan
    lines = [r for r in lines if r[pk] != context.row[pk]] + ([] if deleting else [context.row])
    products = context.table("product")

    def external(line: Row) -> bool:
        product = line.get("_productid_value")
        found = context.service.store.get(products.entity_set, product) if product else None
        return bool(found and found.get("msdynce_ismaintainedexternally"))

    only = all(external(r) for r in lines if not r.get("msdynce_ismisctax"))
    flag = "msdynce_hasexternallymaintainedproductsonly"
    if header.get(flag) != only:
        context.service.modify(header_schema, header, {flag: only})
    if not deleting:
        context.row[LINE_FLAG[context.schema.entity_type]] = only


# --- lines ---------------------------------------------------------------------------------


def _quote_line_created(context: Context) -> None:
    quote = context.service.store.get(context.table("quote").entity_set, context.row.get("_quoteid_value") or "")
    if quote is not None:
        context.row["msdynce_quoterevisionnumber"] = quote.get("revisionnumber") or 0
    _externally_maintained_only(context)


def _order_line_created(context: Context) -> None:
    if context.row.get("msdynce_ismisctax"):
        order = context.row.get("_salesorderid_value")
        others = context.service.store.find_by(
            context.schema.entity_set, {"_salesorderid_value": order, "msdynce_ismisctax": True}
        )
        if others:
            raise ServiceError(400, "0x80040265", "An order can have only one Freight Tax line.")
    _externally_maintained_only(context)


def _misc_tax_line(context: Context) -> None:
    """The header's msdynce_misctax as its one write-in line "Freight Tax" (none at zero)."""
    lines = context.table({"salesorder": "salesorderdetail", "invoice": "invoicedetail"}[context.schema.entity_type])
    parent = LINE_PARENT[lines.entity_type]
    header_id = context.row[context.schema.keys[0]]
    existing = context.service.store.find_by(
        lines.entity_set, {f"_{parent}_value": header_id, "msdynce_ismisctax": True}
    )
    amount = context.row.get("msdynce_misctax") or 0
    if not amount:
        for line in existing:
            context.service.remove(lines, line)
        return
    values = {"priceperunit": amount, "extendedamount": amount}
    if existing:
        line = existing[0]
        if any(line.get(k) != v for k, v in values.items()):
            context.service.modify(lines, line, values)
        return
    row = {
        **lines.defaults,
        lines.keys[0]: str(uuid.uuid5(uuid.NAMESPACE_URL, f"p2c-solution:misctax:{header_id}")),
        f"_{parent}_value": header_id,
        "isproductoverridden": True,
        "productdescription": FREIGHT_TAX,
        "quantity": 1.0,
        "msdynce_ismisctax": True,
        **values,
    }
    context.service.insert(lines, row, set(row))


# --- products ------------------------------------------------------------------------------


def _price_list_item(context: Context) -> None:
    product = context.row
    if product.get("price") is None:
        return
    price_lists = context.table("pricelevel")
    price_list = product.get("_pricelevelid_value")
    if not price_list:
        currency = product.get("_transactioncurrencyid_value")
        active = sorted((r for _, r in context.service.store.scan(price_lists.entity_set)
                         if r.get("_transactioncurrencyid_value") == currency and r.get("statecode") == 0),
                        key=lambda r: str(r.get("name")))  # fmt: skip
        if not active:
            return
        price_list = active[0][price_lists.keys[0]]
    items = context.table("productpricelevel")
    pk = product[context.schema.keys[0]]
    # By an index, not a scan: a scan per product made a load of n products cost n² / 2 rows.
    found = context.service.store.find_by(items.entity_set, {"_productid_value": pk, "_pricelevelid_value": price_list})
    values = {"amount": product["price"], "_uomid_value": product.get("_defaultuomid_value")}
    if found:
        if any(found[0].get(k) != v for k, v in values.items()):
            context.service.modify(items, found[0], values)
        return
    item_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"p2c-solution:price:{pk}:{price_list}"))
    row = {items.keys[0]: item_id, "_productid_value": pk, "_pricelevelid_value": price_list, **values}
    context.service.insert(items, row, set(row))


# --- invoices ------------------------------------------------------------------------------

INVOICED = 647390003  # msdynce_processingstatus "Invoiced" (p2c-solution.json)


def _invoiced(context: Context) -> None:
    _customer_is_active(context)
    orders = context.table("salesorder")
    order = context.service.store.get(orders.entity_set, context.row.get("_salesorderid_value") or "")
    if order is None:
        return
    if order.get("msdynce_processingstatus") != INVOICED:
        context.service.modify(orders, order, {"msdynce_processingstatus": INVOICED})
    owner = order.get("_ownerid_value")
    if owner and context.row.get("_ownerid_value") != owner:
        invoice = context.service.store.get(context.schema.entity_set, context.row[context.schema.keys[0]])
        if invoice is not None:
            context.service.modify(context.schema, invoice, {"_ownerid_value": owner})


def _both(*handlers: Handler) -> Handler:
    def run(context: Context) -> None:
        for handler in handlers:
            handler(context)

    return run


HANDLERS: dict[str, Handler] = {
    "PreOperationAccountCreate": _number,
    "PreOperationContactCreate": _both(_number, _company_is_account),
    "PreOperationContactUpdate": _company_is_account,
    "PostOperationQuoteCreate": _customer_is_active,
    "PostOperationQuoteUpdate": _customer_is_active,
    "PostOperationOrderCreate": _both(_customer_is_active, _misc_tax_line),
    "PostOperationOrderUpdate": _customer_is_active,
    "PostOperationOrderUpdateAsync": _misc_tax_line,
    "PostOperationInvoiceCreate": _both(_invoiced, _misc_tax_line),
    "PostOperationInvoiceUpdate": _invoiced,
    "PostOperationInvoiceUpdateAsync": _misc_tax_line,
    "PreOperationQuoteLineCreate": _quote_line_created,
    "PreOperationQuoteLineUpdate": _externally_maintained_only,
    "PreOperationQuoteLineDelete": lambda c: _externally_maintained_only(c, deleting=True),
    "PreOperationOrderLineCreate": _order_line_created,
    "PreOperationOrderLineUpdate": _externally_maintained_only,
    "PreOperationOrderLineDelete": lambda c: _externally_maintained_only(c, deleting=True),
    "PostOperationProductCreate": _price_list_item,
    "PostOperationProductUpdate": _price_list_item,
}


def steps() -> list[Step]:
    """The solution's step registrations, each with its handler (every step has one)."""
    out: list[Step] = []
    for spec in solution.spec()["plugin_steps"]:
        name = spec["plugin_type"].rsplit(".", 1)[-1]
        message = spec["step"].split(" ", 1)[0]
        out.append(Step(name, spec["table"], message, spec["stage"], spec["mode"],
                        frozenset(spec["filtering_attributes"]), HANDLERS[name]))  # fmt: skip
    return out
