"""A local F&O OData endpoint (`/data/`) for the data entities P2C uses.

Composite keys with dataAreaId, company scoping and `cross-company=true`, no upsert
(PATCH of a missing key is 404, POST of an existing key fails), number sequences for
party numbers, server-driven paging, F&O-style error bodies with `ms-dyn-aid`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from p2c_sandbox import fno_metadata
from p2c_sandbox.csdl import build_csdl
from p2c_sandbox.protection import FNO_WORDING
from p2c_sandbox.push_fno import FnoPush
from p2c_sandbox.query import FNO as FILTERS
from p2c_sandbox.query import QueryError, parse_expand
from p2c_sandbox.schema import EntitySchema, fno_schema
from p2c_sandbox.service import (
    Address,
    ODataService,
    ServiceError,
    check_value,
    filtered,
    json_body,
    now_iso,
    select_columns,
)
from p2c_sandbox.store import Row, Store

ROOT = "/data/"
NAMESPACE = "Microsoft.Dynamics.DataEntities"
WRITE_EXCEPTION = "Microsoft.Dynamics.Platform.Integration.Services.OData.AxODataWriteException"


def _bad(message: str) -> ServiceError:
    return ServiceError(400, "", message)


class FnoService(ODataService):
    root_path = ROOT
    request_id_header = "ms-dyn-aid"
    protection_wording = FNO_WORDING
    resource_throttling = True

    def fault(self, status: int) -> ServiceError:
        return ServiceError(
            status, "", "Too many requests: please retry later." if status == 429 else f"Service error {status}."
        )

    def __init__(self, store: Store, *, company: str = "usmf", page_size: int = 10_000) -> None:
        super().__init__()
        self.store = store
        self.company = company.lower()
        self.page_size = page_size
        self.schemas: dict[str, EntitySchema] = fno_schema()
        # F&O's "Calculate sales totals" batch job, as if it ran right after every change; with
        # False, changed orders stay uncalculated (AreTotalsUpdated = No) until
        # `calculate_sales_totals()` runs it.
        self.calculate_totals = True
        self.csdl = build_csdl(NAMESPACE, self.schemas, "EntityContainer")
        # Data events after each committed write, once activated (p2c_sandbox/push_fno.py).
        self.push = FnoPush(store, set(self.schemas))

    def response_headers(self) -> dict[str, str]:
        return {"ms-dyn-aid": str(uuid.uuid4()), "OData-Version": "4.0"}

    def extra_routes(self) -> list[Route]:
        return [
            Route(fno_metadata.ROOT + "{path:path}", self.metadata_service, methods=["GET", "POST", "PATCH", "DELETE"]),
            *self.push.routes(),
        ]

    async def metadata_service(self, request: Request) -> Response:
        """`/Metadata/DataEntities`, `/Metadata/PublicEntities`, `/Metadata/PublicEnumerations`."""
        headers = self.response_headers()
        try:
            base = f"{request.url.scheme}://{request.url.netloc}"
            response = fno_metadata.answer(self.schemas, request, request.path_params["path"], base)
        except ServiceError as exc:
            response = JSONResponse(self.error_body(exc), status_code=exc.status)
        response.headers.update(headers)
        self.accounting.add(request.method, "Metadata", response.status_code)
        return response

    def error_body(self, error: ServiceError) -> dict[str, Any]:
        # F&O wraps the useful text in innererror under a generic message.
        inner = {"message": error.message, "type": WRITE_EXCEPTION, "stacktrace": ""}
        return {"error": {"code": error.code, "message": "An error has occurred.", "innererror": inner}}

    def dispatch(self, request: Request, schema: EntitySchema, address: Address, body: bytes) -> Response:
        params = dict(request.query_params)
        cross = params.get("cross-company", "").lower() == "true"
        if "$expand" in params:
            self.check_expand(schema, params["$expand"])
        if address.key is None:
            if address.rest:  # CustomersV3/$count
                if request.method != "GET":
                    raise ServiceError(405, "", f"The HTTP method '{request.method}' is not allowed on $count.")
                return PlainTextResponse(str(len(self.matching(schema, params, cross))))
            if request.method == "GET":
                return self.read(request, schema, params, cross)
            if request.method == "POST":
                return self.create(request, schema, json_body(body, _bad))
            raise ServiceError(405, "", f"The HTTP method '{request.method}' is not allowed on a collection.")
        key = self.full_key(schema, address.key)
        if not cross and "dataAreaId" in schema.keys and key.get("dataAreaId") != self.company:
            row = None
        else:
            row = self.store.get(schema.entity_set, row_pk(schema, key))
        if request.method == "GET":
            if row is None:
                raise ServiceError(404, "", "No resource was found matching the request URL.")
            return JSONResponse(self.project(request, schema, row, select_columns(schema, params.get("$select"), _bad)))
        if request.method == "PATCH":
            if row is None:
                raise ServiceError(404, "", "No resource was found matching the request URL.")
            values = self.values(schema, json_body(body, _bad))
            for k in schema.keys:
                if k in values and _norm(k, values[k]) != _norm(k, row[k]):
                    raise _bad(f"The key field '{k}' cannot be changed.")
            self.store.put(schema.entity_set, row_pk(schema, key), self.computed(schema, {**row, **values}))
            self.update_totals(schema, row)
            return Response(status_code=204)
        if request.method == "DELETE":
            if row is None:
                raise ServiceError(404, "", "No resource was found matching the request URL.")
            self.store.delete(schema.entity_set, row_pk(schema, key))
            self.update_totals(schema, row)
            return Response(status_code=204)
        raise ServiceError(405, "", f"The HTTP method '{request.method}' is not allowed.")

    def matching(self, schema: EntitySchema, params: dict[str, str], cross: bool) -> list[Row]:
        """The rows of the caller's company (or of every company), `$filter`ed and `$orderby`ed."""
        rows = [r for _, r in self.store.scan(schema.entity_set)]
        if not cross and "dataAreaId" in schema.keys:  # shared entities (LegalEntities) have no company
            rows = [r for r in rows if r.get("dataAreaId") == self.company]
        return filtered(schema, rows, params, _bad, FILTERS)

    def read(self, request: Request, schema: EntitySchema, params: dict[str, str], cross: bool) -> Response:
        cols = select_columns(schema, params.get("$select"), _bad)
        rows = self.matching(schema, params, cross)
        total = len(rows)
        try:
            skip = int(params.get("$skip", "0"))
            top = int(params["$top"]) if "$top" in params else None
        except ValueError:
            raise _bad("$skip and $top must be whole numbers") from None
        window = rows[skip:] if top is None else rows[skip : skip + top]
        page = window[: self.page_size]
        body: dict[str, Any] = {"@odata.context": f"{self.root(request)}$metadata#{schema.entity_set}"}
        if params.get("$count") == "true":
            body["@odata.count"] = total
        body["value"] = [self.project(request, schema, r, cols) for r in page]
        if len(window) > len(page):
            query = {k: v for k, v in params.items() if k != "$skip"}
            if top is not None:
                query["$top"] = str(top - len(page))
            query["$skip"] = str(skip + len(page))
            body["@odata.nextLink"] = f"{self.root(request)}{schema.entity_set}?" + "&".join(
                f"{k}={quote(v, safe=',$')}" for k, v in query.items()
            )
        return JSONResponse(body)

    def create(self, request: Request, schema: EntitySchema, body: Row) -> Response:
        values = self.values(schema, body)
        if "dataAreaId" in schema.props:
            values["dataAreaId"] = str(values.get("dataAreaId") or self.company).lower()
        missing = [k for k in schema.keys if values.get(k) in (None, "")]
        sequence = NUMBER_SEQUENCES.get(schema.entity_set)
        if sequence is not None and sequence[0] in missing:
            column, prefix, start = sequence
            values[column] = f"{prefix}{self.store.next(column, start):06d}"
            missing.remove(column)
        if missing:
            raise _bad(
                f"Write failed for table row of type '{schema.entity_type}'. The key field(s) "
                f"{', '.join(missing)} must be set."
            )
        key = {k: values[k] for k in schema.keys}
        if self.store.get(schema.entity_set, row_pk(schema, key)) is not None:
            raise _bad(
                f"Write failed for table row of type '{schema.entity_type}'. Infolog: Warning: Cannot create a "
                f"record in {schema.entity_set}. {', '.join(f'{k}: {v}' for k, v in key.items())}. "
                "The record already exists."
            )
        row: Row = {}
        for name, prop in schema.props.items():
            if name in values:
                row[name] = values[name]
            elif not prop.nullable:
                row[name] = _zero(prop.type)
            else:
                row[name] = None
        for column in CREATION_STAMPS.get(schema.entity_set, ()):
            if column not in values:
                row[column] = now_iso()
        if schema.entity_set == "CustomersV3" and not row.get("PartyNumber"):
            row["PartyNumber"] = f"{self.store.next('PartyNumber', 2000):09d}"
        row = self.computed(schema, row)
        self.store.put(schema.entity_set, row_pk(schema, key), row)
        self.update_totals(schema, row)
        # Location names the new entity, so a later part of a $batch changeset can say `$1`.
        keys = quote(",".join(f"{k}={_literal(row[k])}" for k in schema.keys), safe=",=()'")
        return JSONResponse(
            {
                "@odata.context": f"{self.root(request)}$metadata#{schema.entity_set}/$entity",
                **self.project(request, schema, row, list(schema.props)),
            },
            status_code=201,
            headers={"Location": f"{self.root(request)}{schema.entity_set}({keys})"},
        )

    def values(self, schema: EntitySchema, body: Row) -> Row:
        out: Row = {}
        for name, value in body.items():
            if name.startswith("@"):
                continue
            if name not in schema.props:
                raise _bad(
                    f"The property '{name}' does not exist on type '{NAMESPACE}.{schema.entity_type}'. "
                    "Make sure to only use property names that are defined by the type."
                )
            out[name] = check_value(schema, name, value, _bad)
        if "dataAreaId" in out and out["dataAreaId"] is not None:
            out["dataAreaId"] = str(out["dataAreaId"]).lower()
        return out

    def check_expand(self, schema: EntitySchema, text: str) -> None:
        """`$expand` names navigation properties the entity defines; the P2C entities
        (fno-entities.json) define none, so every one is unknown, as OData says for them."""
        try:
            items = parse_expand(text)
        except QueryError as exc:
            raise _bad(str(exc)) from None
        if items:
            raise _bad(f"Could not find a property named '{items[0].nav}' on type '{NAMESPACE}.{schema.entity_type}'.")

    def full_key(self, schema: EntitySchema, key: dict[str, Any] | str) -> dict[str, Any]:
        if isinstance(key, str) or set(key) != set(schema.keys):
            raise _bad(f"The key of '{schema.entity_set}' is ({', '.join(schema.keys)}).")
        return {k: (str(key[k]).lower() if k == "dataAreaId" else key[k]) for k in schema.keys}

    def project(self, request: Request, schema: EntitySchema, row: Row, cols: list[str]) -> Row:
        out: Row = {"@odata.etag": f'W/"{abs(hash(json.dumps(row, sort_keys=True))) % 10**12}"'}
        for c in cols:
            out[c] = row.get(c)
        return out

    def computed(self, schema: EntitySchema, row: Row) -> Row:
        """What F&O derives on a write: line amounts, (price - per-unit discount) x quantity,
        and the order's customer flags (`derived`)."""
        row = self.derived(schema, row)
        quantity = LINE_QUANTITY.get(schema.entity_set)
        if quantity is None:
            return row
        amount = (row.get("SalesPrice") or 0) - (row.get("LineDiscountAmount") or 0)
        return {**row, "LineAmount": round(amount * (row.get(quantity) or 0), 2)}

    def derived(self, schema: EntitySchema, row: Row) -> Row:
        """`OrderingCustomerIsExternallyMaintained` / `InvoiceCustomerIsExternallyMaintained`:
        the order's customers' IsExternallyMaintained, which the entity reads from the customer
        (a client's value is not kept); lines carry their header's. "Synchronize sales orders
        directly between Sales and Supply Chain Management": these columns filter the orders
        whose customers both come from Sales."""
        if schema.entity_set == "CDSSalesOrderHeaders":
            flags = {flag: self.customer_flag(row["dataAreaId"], row.get(account)) for flag, account in CUSTOMER_FLAGS}
            return {**row, **flags}
        if schema.entity_set == "CDSSalesOrderLines":
            headers = self.schemas["CDSSalesOrderHeaders"]
            key = {"dataAreaId": row["dataAreaId"], "SalesOrderNumber": row.get("SalesOrderNumber")}
            header = self.store.get(headers.entity_set, row_pk(headers, key)) or {}
            return {**row, **{flag: header.get(flag) or "No" for flag, _ in CUSTOMER_FLAGS}}
        return row

    def customer_flag(self, company: str, account: Any) -> str:
        if not account:
            return "No"
        customers = self.schemas["CustomersV3"]
        customer = self.store.get(
            customers.entity_set, row_pk(customers, {"dataAreaId": company, "CustomerAccount": account})
        )
        return (customer or {}).get("IsExternallyMaintained") or "No"

    def update_totals(self, schema: EntitySchema, line: Row) -> None:
        """A document's totals follow its lines, so a line change changes the header too.

        Sales order totals are the batch job's: an order changed while it does not run keeps
        its old totals, marked not updated."""
        if schema.entity_set == ORDER_HEADERS:
            self.totals_changed(line)
            return
        document = DOCUMENTS.get(schema.entity_set)
        if document is None:
            return
        header_set, number, total, charges = document
        header_schema = self.schemas[header_set]
        key = {"dataAreaId": line["dataAreaId"], number: line[number]}
        pk = row_pk(header_schema, key)
        header = self.store.get(header_set, pk)
        if header is None:
            return
        lines = [
            r
            for _, r in self.store.scan(schema.entity_set)
            if r["dataAreaId"] == line["dataAreaId"] and _norm(number, r[number]) == _norm(number, line[number])
        ]
        if header_set == ORDER_HEADERS and not self.calculate_totals:
            self.store.put(header_set, pk, {**header, "AreTotalsUpdated": "No"})
            return
        line_total = sum(r.get("LineAmount") or 0 for r in lines)
        charge_total = sum(r.get("FixedPriceCharges") or 0 for r in lines)
        header = {**header, total: round(line_total + charge_total, 2), charges: round(charge_total, 2)}
        if header_set == ORDER_HEADERS:
            header["AreTotalsUpdated"] = "Yes"
        self.store.put(header_set, pk, header)

    def totals_changed(self, header: Row) -> None:
        """An order header written: the job (when it runs) recalculates it from its lines."""
        pk = row_pk(self.schemas[ORDER_HEADERS], header)
        stored = self.store.get(ORDER_HEADERS, pk)
        if stored is None:
            return
        lines = [r for _, r in self.store.scan("CDSSalesOrderLines")
                 if r["dataAreaId"] == stored["dataAreaId"]
                 and _norm("", r["SalesOrderNumber"]) == _norm("", stored["SalesOrderNumber"])]  # fmt: skip
        if lines and self.calculate_totals:
            self.update_totals(self.schemas["CDSSalesOrderLines"], lines[0])
        else:
            self.store.put(ORDER_HEADERS, pk, {**stored, "AreTotalsUpdated": "Yes" if self.calculate_totals else "No"})

    def calculate_sales_totals(self) -> int:
        """Run "Calculate sales totals" once: every order not updated gets its totals; how many."""
        was, self.calculate_totals = self.calculate_totals, True
        try:
            pending = [r for _, r in self.store.scan(ORDER_HEADERS) if r.get("AreTotalsUpdated") != "Yes"]
            for header in pending:
                self.totals_changed(header)
            return len(pending)
        finally:
            self.calculate_totals = was


ORDER_HEADERS = "CDSSalesOrderHeaders"
# Entities whose key F&O numbers on create: key property, prefix, first number.
NUMBER_SEQUENCES: dict[str, tuple[str, str, int]] = {
    "CustomersV3": ("CustomerAccount", "C", 100000),
    "CDSSalesOrderHeaders": ("SalesOrderNumber", "SO-", 1000),
    "CDSSalesQuotationHeaders": ("SalesQuotationNumber", "QT-", 1000),
}
# Date-times F&O sets when it creates a record (the order's created date-time): FLOWS.md finds
# new F&O orders by OrderCreationDateTime, the one such field the P2C entities publish.
CREATION_STAMPS: dict[str, tuple[str, ...]] = {"CDSSalesOrderHeaders": ("OrderCreationDateTime",)}
# Document lines -> (header entity, document number, header total, header charges total).
DOCUMENTS: dict[str, tuple[str, str, str, str]] = {
    "CDSSalesOrderLines": ("CDSSalesOrderHeaders", "SalesOrderNumber", "OrderTotalAmount", "OrderTotalChargesAmount"),
    "CDSSalesQuotationLines": (
        "CDSSalesQuotationHeaders",
        "SalesQuotationNumber",
        "QuotationTotalAmount",
        "QuotationTotalChargesAmount",
    ),
}
# The order's flags and the customer each reads IsExternallyMaintained from.
CUSTOMER_FLAGS = (
    ("OrderingCustomerIsExternallyMaintained", "OrderingCustomerAccountNumber"),
    ("InvoiceCustomerIsExternallyMaintained", "InvoiceCustomerAccountNumber"),
)
LINE_QUANTITY = {"CDSSalesOrderLines": "OrderedSalesQuantity", "CDSSalesQuotationLines": "RequestedSalesQuantity"}


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    return str(value)


def _zero(t: str) -> Any:
    if t in ("Edm.Int32", "Edm.Int64", "Edm.Decimal", "Edm.Double"):
        return 0
    if t == "Edm.Boolean":
        return False
    if t.startswith("enum:NoYes"):
        return "No"
    if t == "Edm.DateTimeOffset":
        return "1900-01-01T00:00:00Z"
    return ""


def _norm(key: str, value: Any) -> Any:
    return str(value).casefold() if isinstance(value, str) else value


def row_pk(schema: EntitySchema, key: dict[str, Any]) -> str:
    # F&O keys compare case-insensitively (SQL Server collation).
    return json.dumps([_norm(k, key[k]) for k in schema.keys], ensure_ascii=False)
