"""A local Dataverse Web API (v9.2) for the tables P2C uses.

Faithful where the product depends on it: alternate-key addressing and upsert,
If-Match / If-None-Match, @odata.bind, server-maintained createdon / modifiedon /
versionnumber, change tracking with delta links and $deletedEntity entries, server-driven
paging with Prefer: odata.maxpagesize, OData error bodies and request-id headers.
"""

from __future__ import annotations

import dataclasses
import itertools
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from p2c_sandbox import lookup_annotations, ownership, reference, solution
from p2c_sandbox.csdl import build_csdl
from p2c_sandbox.derived import derived
from p2c_sandbox.dual_write import layer as dual_write_layer
from p2c_sandbox.plugins import Plugins
from p2c_sandbox.push_dataverse import DataversePush
from p2c_sandbox.query import DATAVERSE as FILTERS
from p2c_sandbox.query import QueryError, parse_expand
from p2c_sandbox.schema import DATAVERSE, USER_OWNED, EntitySchema, Prop
from p2c_sandbox.service import (
    Address,
    ODataService,
    ServiceError,
    check_value,
    decode_token,
    encode_token,
    filtered,
    json_body,
    now_iso,
    parse_path,
    select_columns,
)
from p2c_sandbox.store import Row, Store

ROOT = "/api/data/v9.2/"
NAMESPACE = "Microsoft.Dynamics.CRM"
MAX_PAGE_SIZE = 5000
MAX_COUNT = 5000  # "Count rows using OData": @odata.count counts up to 5,000
VERSION = "version"  # the org-wide row version counter


# The standard columns of Microsoft's table reference beside the ones schema.py declares.
reference.extend(DATAVERSE)


def _bad(message: str) -> ServiceError:
    return ServiceError(400, "0x80060888", message)


class DataverseService(ODataService):
    root_path = ROOT
    request_id_header = "x-ms-service-request-id"
    FAULTS = {
        # "Compose HTTP requests and handle errors": 403 for PrivilegeDenied and its kin; the
        # code and wording Dataverse gives a user without a table privilege.
        403: ("0x80040220", "Principal user is missing the privilege this operation needs."),
        429: ("0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds."),
        500: ("0x80040216", "An unexpected error occurred."),
        502: ("0x80040216", "Bad gateway."),
        503: ("0x80040216", "The service is temporarily unavailable."),
    }

    error_code_not_found = "0x8006088a"
    error_code_bad_request = "0x80060888"
    unauthorized = ("0x80072560", "The user is not a member of the organization.")
    batch_status_from_failure = True

    def fault(self, status: int) -> ServiceError:
        return ServiceError(status, *self.FAULTS.get(status, ("0x80040216", f"Injected fault {status}.")))

    def __init__(
        self, store: Store, *, delta_retention_days: float = 30.0, p2c_solution: bool = True, dual_write: bool = False
    ) -> None:
        super().__init__()
        self.store = store
        # An org with Microsoft's P2C solution installed (its columns and plug-ins), or without.
        self.p2c_solution = p2c_solution
        self.schemas: dict[str, EntitySchema] = solution.tables(p2c_solution)
        # An org with dual-write's company model (cdm_companies, msdyn_company: p2c_sandbox.dual_write).
        self.dual_write = dual_write
        if dual_write:
            self.schemas = dual_write_layer(self.schemas)
        # The solution's plug-in steps, run on this service's writes (p2c_sandbox.plugins).
        self.plugins = Plugins(self, enabled=p2c_solution)
        self.delta_retention = timedelta(days=delta_retention_days)
        self.csdl = build_csdl(NAMESPACE, self.schemas, "System")
        # Webhook registrations and the pushes after each committed write (p2c_sandbox/push_dataverse.py).
        self.push = DataversePush(self.schemas)

    def extra_routes(self) -> list[Route]:
        return self.push.routes()

    def add_columns(self, entity_set: str, columns: dict[str, Prop]) -> None:
        """Custom columns (`new_...`) as an org's customizer adds them: stored, served, in `$metadata`."""
        schema = self.schemas[entity_set]
        changed = dataclasses.replace(schema, props={**schema.props, **columns})
        self.schemas = {**self.schemas, entity_set: changed}
        self.csdl = build_csdl(NAMESPACE, self.schemas, "System")

    # --- dispatch ---------------------------------------------------------------

    def response_headers(self) -> dict[str, str]:
        request_id = str(uuid.uuid4())
        return {"x-ms-service-request-id": request_id, "REQ_ID": request_id, "OData-Version": "4.0"}

    def error_body(self, error: ServiceError) -> dict[str, Any]:
        return {"error": {"code": error.code, "message": error.message}}

    def metadata_api(self, request: Request, path: str) -> Response | None:
        """`EntityDefinitions`: tables, columns and keys, as client libraries read them."""
        from p2c_sandbox import metadata_api

        return metadata_api.answer(self.schemas, request, path, self.root(request))

    def action(self, request: Request, path: str, body: bytes) -> Response | None:
        from p2c_sandbox import actions

        registered = self.push.registrations.answer(request, path, body, self.root(request))
        return registered if registered is not None else actions.answer(self, request, path, body)

    def dispatch(self, request: Request, schema: EntitySchema, address: Address, body: bytes) -> Response:
        # "Impersonate another user using the Web API": MSCRMCallerID names the systemuser the
        # request runs as (the owner of what it creates, its createdby and modifiedby).
        caller = request.headers.get("mscrmcallerid")
        if caller is not None and self.store.get("systemusers", caller.strip("{}").lower()) is None:
            raise ServiceError(404, "0x80040217", f"systemuser With Id = {caller} Does Not Exist")
        token = ownership.CALLER.set(caller.strip("{}").lower() if caller else None)
        try:
            return self.answer_entity(request, schema, address, body)
        finally:
            ownership.CALLER.reset(token)

    def answer_entity(self, request: Request, schema: EntitySchema, address: Address, body: bytes) -> Response:
        method = request.method
        prefer = _prefer(request.headers.get("prefer", ""))
        params = dict(request.query_params)
        if address.key is None:
            if address.rest:  # accounts/$count
                if method != "GET":
                    raise ServiceError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on $count.")
                return self.count(schema, params)
            if method == "GET":
                return self.read(request, schema, params, prefer)
            if method == "POST":
                return self.create(request, schema, json_body(body, _bad), prefer)
            raise ServiceError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on a collection.")
        if address.rest:  # accounts(<id>)/contact_customer_accounts: a filtered collection
            if method != "GET":
                raise ServiceError(405, "0x80060888", f"The HTTP method '{method}' is not allowed on a collection.")
            row = self.find(schema, address.key)
            if row is None:
                raise self.not_found(schema, address.key)
            child, back = schema.collections[address.rest]
            target = self.schemas[child]
            column = f"_{target.lookup_columns.get(back, back)}_value"
            path = f"{schema.entity_set}({row[schema.keys[0]]})/{address.rest}"
            return self.read(request, target, params, prefer, parent=(column, row[schema.keys[0]], path))
        if method == "GET":
            row = self.find(schema, address.key)
            if row is None:
                raise self.not_found(schema, address.key)
            cols = select_columns(schema, params.get("$select"), _bad)
            plans = self.expand_plan(schema, params.get("$expand"))
            out = self.project(request, schema, row, cols)
            self.expand(request, schema, [(row, out)], plans, _paging(plans, _page_size(prefer)[0]))
            context = f"{self.root(request)}$metadata#{schema.entity_set}({_context(cols, plans)})/$entity"
            noted = lookup_annotations.applied(request.headers.get("prefer", ""))
            return JSONResponse(
                {"@odata.context": context, **out}, headers={"Preference-Applied": noted} if noted else None
            )
        if method == "PATCH":
            return self.upsert(request, schema, address.key, json_body(body, _bad), prefer)
        if method == "DELETE":
            row = self.find(schema, address.key)
            if row is None:
                raise self.not_found(schema, address.key)
            self.remove(schema, row)
            return Response(status_code=204)
        raise ServiceError(405, "0x80060888", f"The HTTP method '{method}' is not allowed.")

    # --- reads ------------------------------------------------------------------

    def read(
        self,
        request: Request,
        schema: EntitySchema,
        params: dict[str, str],
        prefer: dict[str, str],
        *,
        parent: tuple[str, str, str] | None = None,
    ) -> Response:
        """A collection: an entity set, or with `parent` (lookup column, parent id, path) the
        rows of one parent's collection-valued navigation property."""
        page_size, applied = _page_size(prefer)
        if "$skip" in params:  # "Page results using OData": Dataverse doesn't support $skip
            raise _bad("The query parameter $skip is not supported")
        track = "odata.track-changes" in prefer or "$deltatoken" in params
        if "$skiptoken" in params:
            state = decode_token(params["$skiptoken"])
        elif "$deltatoken" in params:
            since = self.delta_version(params["$deltatoken"])
            state = {"after": "", "since": since, "snapshot": self.store.current(VERSION), "track": True}
        else:
            state = {"after": "", "since": 0, "snapshot": self.store.current(VERSION), "track": track}
        if state["track"]:
            for option in ("$filter", "$orderby", "$top", "$expand", "$count"):
                if option in params:
                    raise _bad(f"The query option {option} is not supported together with change tracking.")
            if not schema.track_changes:
                raise _bad(f"Change tracking is not enabled for the entity '{schema.entity_type}'.")
        cols = select_columns(schema, params.get("$select"), _bad)
        plans = self.expand_plan(schema, params.get("$expand"))
        # "Don't use $top with the Prefer: odata.maxpagesize request header. If you include
        # both, $top is ignored."
        top = None if "odata.maxpagesize" in prefer else _top(params.get("$top"))
        # Sorted and counted reads need every row; they page by position, others by key.
        by_position = not state["track"] and ("$orderby" in params or params.get("$count") == "true")
        after = "" if by_position else state["after"]
        source = (row for _, row in self.store.scan(schema.entity_set, after_pk=after, since=state["since"]))
        if parent is not None:
            column, parent_id, _path = parent
            source = (row for row in source if row.get(column) == parent_id)
        taken, offset, total = state.get("taken", 0), state.get("offset", 0), None
        if top is not None:
            top = max(0, top - taken)
        if state["track"]:
            rows = list(itertools.islice(source, page_size + 1))
        elif by_position:
            matched = filtered(schema, list(source), params, _bad, FILTERS)
            total = len(matched)
            rows = matched[:top][offset : offset + page_size + 1]
        else:  # key order: read only as far as this page needs
            wanted = page_size + 1 if top is None else min(top, page_size + 1)
            rows = []
            while len(rows) < wanted and (chunk := list(itertools.islice(source, 1000))):
                rows += filtered(schema, chunk, params, _bad, FILTERS)
            rows = rows[:wanted]
        page, more = rows[:page_size], len(rows) > page_size
        body: dict[str, Any] = {
            "@odata.context": f"{self.root(request)}$metadata#{schema.entity_set}({_context(cols, plans)})",
        }
        if total is not None and params.get("$count") == "true":
            # "Count rows using OData": the count of matching rows, up to 5,000.
            body["@odata.count"] = min(total, MAX_COUNT)
        body["value"] = [self.project(request, schema, r, cols) for r in page]
        self.expand(request, schema, list(zip(page, body["value"], strict=True)), plans, _paging(plans, page_size))
        query = {k: v for k, v in params.items() if k not in ("$skiptoken", "$deltatoken")}
        base = f"{self.root(request)}{parent[2] if parent else schema.entity_set}"
        if more:
            if by_position:
                state = {**state, "offset": offset + len(page)}
            else:
                state = {**state, "after": page[-1][schema.keys[0]], "taken": taken + len(page)}
            body["@odata.nextLink"] = _link(base, {**query, "$skiptoken": encode_token(state)})
        elif state["track"]:
            if state["since"]:
                for pk in self.store.deleted_since(schema.entity_set, state["since"]):
                    if self.store.get(schema.entity_set, pk) is None:
                        body["value"].append(
                            {
                                "@odata.context": f"{self.root(request)}$metadata#{schema.entity_set}/$deletedEntity",
                                "id": pk,
                                "reason": "deleted",
                            }
                        )
            token = f"{state['snapshot']}!{datetime.now(UTC).strftime('%m/%d/%Y %H:%M:%S')}"
            body["@odata.deltaLink"] = _link(base, {**query, "$deltatoken": token})
        if state["track"]:
            applied.append("odata.track-changes")
        if noted := lookup_annotations.applied(request.headers.get("prefer", "")):
            applied.append(noted)
        return JSONResponse(body, headers={"Preference-Applied": ",".join(applied)} if applied else None)

    def count(self, schema: EntitySchema, params: dict[str, str]) -> Response:
        """`accounts/$count`: the number of (filtered) rows as plain text ("Count rows using
        OData"), up to the 5,000 the count annotation is limited to."""
        for option in params:
            if option not in ("$filter",):
                raise _bad(f"The query option {option} is not supported with /$count.")
        rows = filtered(schema, [row for _, row in self.store.scan(schema.entity_set)], params, _bad, FILTERS)
        return PlainTextResponse(str(min(len(rows), MAX_COUNT)))

    def delta_version(self, token: str) -> int:
        match = re.fullmatch(r"(\d+)!(\d\d/\d\d/\d{4} \d\d:\d\d:\d\d)", unquote(token))
        if not match:
            raise _bad("The delta token is not valid.")
        issued = datetime.strptime(match.group(2), "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
        if datetime.now(UTC) - issued > self.delta_retention:
            raise ServiceError(
                400, "0x80044352", "Version stamp associated with the client has expired. Please perform a full sync."
            )
        return int(match.group(1))

    def project(self, request: Request, schema: EntitySchema, row: Row, cols: list[str], *, etag: bool = True) -> Row:
        pk = schema.keys[0]
        out: Row = {"@odata.etag": f'W/"{row.get("versionnumber")}"'} if etag else {}
        for c in dict.fromkeys([*cols, pk]):
            out[c] = row.get(c)
        patterns = lookup_annotations.wanted(request.headers.get("prefer", ""))
        if patterns:
            lookup_annotations.add(self, schema, row, out, patterns)
        return out

    # --- $expand (Dataverse "Join tables using OData") ----------------------------

    def expand_plan(self, schema: EntitySchema, text: str | None) -> list[_Plan]:
        """Check an `$expand` before any row is read: unknown navigation properties, columns
        and options are the request's error even when no row matches."""
        if not text:
            return []
        try:
            items = parse_expand(text)
        except QueryError as exc:
            raise _bad(str(exc)) from None
        plans: list[_Plan] = []
        for item in items:
            if item.nav in schema.lookups:
                target = self.schemas[schema.lookups[item.nav]]
                plan = _Plan(item.nav, target, False, f"_{schema.lookup_columns.get(item.nav, item.nav)}_value")
            elif item.nav in schema.collections:
                child, back = schema.collections[item.nav]
                target = self.schemas[child]
                plan = _Plan(item.nav, target, True, f"_{target.lookup_columns.get(back, back)}_value")
            else:
                raise _bad(f"Could not find a property named '{item.nav}' on type '{NAMESPACE}.{schema.entity_type}'.")
            if item.ref:
                if plan.many:
                    raise _bad("Expand with $ref is only supported on lookup type navigation property.")
                plan.ref = True
                plans.append(plan)
                continue
            unknown = set(item.options) - {"$select", "$filter", "$orderby", "$top", "$expand"}
            if unknown:  # $skip, $count, $search and $levels are not supported in an expand
                raise _bad(f"The query option '{sorted(unknown)[0]}' is not supported in $expand.")
            plan.nested = self.expand_plan(target, item.options.get("$expand"))
            if ("$orderby" in item.options or "$top" in item.options) and (not plan.many or plan.nested):
                raise _bad(
                    "Only $select and $filter clause can be provided while doing $expand on many-to-one "
                    "relationship or nested one-to-many relationship."
                )
            plan.cols = select_columns(target, item.options.get("$select"), _bad)
            plan.options = item.options
            filtered(target, [], item.options, _bad, FILTERS)  # parses $filter and $orderby: their errors now
            if "$top" in item.options:
                try:
                    plan.top = int(item.options["$top"])
                except ValueError:
                    raise _bad("$top must be a whole number") from None
            plans.append(plan)
        return plans

    def expand(
        self,
        request: Request,
        schema: EntitySchema,
        pairs: list[tuple[Row, Row]],
        plans: list[_Plan],
        paging: int | None = None,
    ) -> None:
        """Add each planned navigation property to the projected rows (`pairs`: stored, projected).

        The join doc, "Expand collection-valued navigation properties": with only single-level
        expands no paging applies to an expanded collection (up to 5,000 rows each) and its
        `<nav>@odata.nextLink` is the filtered collection without paging information. With a
        nested `$expand` anywhere in the query (`paging`: the page size), every expanded
        collection is paged, its rows come without etag or lookup back to the parent, and
        its nextLink carries a skip token to the next rows.
        """
        root = self.root(request)
        for plan in plans:
            target = plan.target
            if not plan.many:  # single-valued: the related row (without its etag), or null
                related: list[tuple[Row, Row]] = []
                for row, out in pairs:
                    ref = row.get(plan.column)
                    found = self.store.get(target.entity_set, ref) if ref else None
                    if found is not None and "$filter" in plan.options:
                        one = filtered(target, [found], {"$filter": plan.options["$filter"]}, _bad, FILTERS)
                        found = next(iter(one), None)
                    if found is None:
                        out[plan.nav] = None
                    elif plan.ref:
                        out[plan.nav] = {"@odata.id": f"{root}{target.entity_set}({ref})"}
                    else:
                        out[plan.nav] = self.project(request, target, found, plan.cols, etag=False)
                        related.append((found, out[plan.nav]))
                self.expand(request, target, related, plan.nested, paging)
                continue
            pk = schema.keys[0]
            wanted = {row[pk] for row, _ in pairs}
            children: dict[str, list[Row]] = {}
            if wanted:  # one pass over the child table for the whole page
                for _, child in self.store.scan(target.entity_set):
                    if child.get(plan.column) in wanted:
                        children.setdefault(child[plan.column], []).append(child)
            names = ("$select", "$filter", "$orderby") + (("$expand",) if paging else ())
            query = {k: v for k, v in plan.options.items() if k in names}
            limit = paging or MAX_PAGE_SIZE
            # Single-level: each row carries the lookup back to its parent, as Dataverse returns it.
            cols = plan.cols if paging else list(dict.fromkeys([*plan.cols, plan.column]))
            for row, out in pairs:
                rows = filtered(target, children.get(row[pk], []), plan.options, _bad, FILTERS)[: plan.top][:limit]
                outs = [self.project(request, target, child, cols, etag=paging is None) for child in rows]
                out[plan.nav] = outs
                link = dict(query)
                if paging and len(rows) == limit:  # a full page: where the next one starts
                    state: dict[str, Any] = {"after": "", "since": 0, "snapshot": 0, "track": False}
                    if "$orderby" in query:
                        state["offset"] = len(rows)
                    else:
                        state["after"] = rows[-1][target.keys[0]]
                    link["$skiptoken"] = encode_token(state)
                base = f"{root}{schema.entity_set}({row[pk]})/{plan.nav}"
                out[f"{plan.nav}@odata.nextLink"] = _link(base, link) if link else base
                self.expand(request, target, list(zip(rows, outs, strict=True)), plan.nested, paging)

    # --- writes -----------------------------------------------------------------

    def create(self, request: Request, schema: EntitySchema, body: Row, prefer: dict[str, str]) -> Response:
        pk = schema.keys[0]
        values = self.values(schema, body, creating=True)
        key = values.pop(pk, None) or str(uuid.uuid4())
        if self.store.get(schema.entity_set, key) is not None:
            raise ServiceError(412, "0x80040237", "A record with matching key values already exists.")
        row = self.insert(schema, {**schema.defaults, **values, pk: key}, set(values))
        return self.written(request, schema, row, prefer, created=True)

    def upsert(
        self, request: Request, schema: EntitySchema, key: dict[str, Any] | str, body: Row, prefer: dict[str, str]
    ) -> Response:
        existing = self.find(schema, key)
        if_match = request.headers.get("if-match")
        if_none_match = request.headers.get("if-none-match")
        if existing is None and if_match is not None:
            raise self.not_found(schema, key)
        if existing is not None and if_none_match == "*":
            raise ServiceError(412, "0x80040237", "A record with matching key values already exists.")
        if existing is not None and if_match not in (None, "*") and if_match != f'W/"{existing.get("versionnumber")}"':
            raise ServiceError(
                412, "0x80060882", "The version of the existing record doesn't match the RowVersion property provided."
            )
        values = self.values(schema, body, creating=existing is None)
        pk = schema.keys[0]
        if existing is None:
            base = {**schema.defaults, pk: key if isinstance(key, str) else str(uuid.uuid4())}
            if isinstance(key, dict):
                base.update(key)
            row = self.insert(schema, {**base, **values}, set(values))
            return self.written(request, schema, row, prefer, created=True, status_create=204)
        values.pop(pk, None)
        row = self.modify(schema, existing, values)
        return self.written(request, schema, row, prefer, created=False)

    # The write messages, each with the plug-in steps registered on it: pre-operation steps
    # may change the row or refuse the write, post-operation ones react to the stored row.

    # Each message is one transaction with its synchronous steps: a failing step undoes the write.

    def insert(self, schema: EntitySchema, row: Row, columns: set[str]) -> Row:
        """Create: `row` with defaults applied; `columns` the ones the caller set."""
        with self.store.transaction():
            row = self.plugins.run("Create", "pre-operation", schema, row, None, columns)
            row = self.save(schema, row, created=True)
            self.plugins.run("Create", "post-operation", schema, row, None, columns)
        self.push.committed("Create", schema, row, None, columns)
        return row

    def modify(self, schema: EntitySchema, existing: Row, values: Row) -> Row:
        with self.store.transaction():
            row = self.plugins.run("Update", "pre-operation", schema, {**existing, **values}, existing, set(values))
            row = self.save(schema, row, created=False)
            self.plugins.run("Update", "post-operation", schema, row, existing, set(values))
        self.push.committed("Update", schema, row, existing, set(values))
        return row

    def remove(self, schema: EntitySchema, row: Row) -> None:
        with self.store.transaction():
            self.plugins.run("Delete", "pre-operation", schema, row, row, set())
            self.store.delete(schema.entity_set, row[schema.keys[0]], self.store.next(VERSION))
            self.touch_parent(schema, row)
        self.push.committed("Delete", schema, row, row, set())

    def values(self, schema: EntitySchema, body: Row, *, creating: bool) -> Row:
        """Validated column values of a write body, with @odata.bind lookups resolved."""
        out: Row = {}
        # The reference's IsValidForCreate / IsValidForUpdate: "whether the value can be set"
        # in this operation (AttributeMetadata.IsValidForCreate); the key is checked apart.
        fixed = reference.not_writable(schema, creating=creating) - set(schema.keys)
        for name, value in body.items():
            if name.endswith("@odata.bind"):
                nav = name[: -len("@odata.bind")]
                column = schema.lookup_columns.get(nav, nav)
                if f"_{column}_value" in schema.server_columns:
                    raise _bad(f"The property '{nav}' cannot be set {'on create' if creating else 'on update'}.")
                if nav == "ownerid" and schema.ownership == USER_OWNED:  # a user or a team
                    if "_ownerid_value" in fixed:
                        raise _bad(f"The property '{nav}' cannot be set {'on create' if creating else 'on update'}.")
                    out["_ownerid_value"], out["owneridtype"] = ownership.bind_owner(self, value)
                    continue
                if nav not in schema.lookups:
                    raise _bad(
                        f"An undeclared property '{nav}' which only has property annotations in the payload "
                        f"but no property value was found in the payload."
                    )
                if f"_{column}_value" in fixed:
                    raise _bad(f"The property '{nav}' cannot be set {'on create' if creating else 'on update'}.")
                out[f"_{column}_value"] = None if value is None else self.bind(schema.lookups[nav], value)
                continue
            if name.startswith("@"):
                continue
            if name in schema.server_columns - set(schema.keys):
                raise _bad(f"The property '{name}' cannot be set: it is maintained by the server.")
            if name not in schema.props or name.startswith("_"):
                raise _bad(f"Invalid property '{name}' was found in entity '{NAMESPACE}.{schema.entity_type}'.")
            if name in fixed:
                raise _bad(f"The property '{name}' cannot be set {'on create' if creating else 'on update'}.")
            out[name] = check_value(schema, name, value, self.validation_error(schema))
        return out

    def validation_error(self, schema: EntitySchema):
        def make(message: str) -> ServiceError:
            if "exceeds the maximum allowed length" in message:
                return ServiceError(
                    400, "0x80044331", f"A validation error occurred. {message} (entity '{schema.entity_type}')."
                )
            return _bad(message)

        return make

    def bind(self, target_set: str, ref: str) -> str:
        target = self.schemas[target_set]
        ref = ref.split(ROOT, 1)[-1].lstrip("/")
        address = parse_path(ref)
        if address.entity_set != target_set or address.key is None:
            raise _bad(f"The @odata.bind reference '{ref}' does not point to {target_set}.")
        row = self.find(target, address.key)
        if row is None:
            raise self.not_found(target, address.key)
        return row[target.keys[0]]

    def save(self, schema: EntitySchema, row: Row, *, created: bool) -> Row:
        pk = schema.keys[0]
        watched = not created and schema.entity_set in ownership.WATCHED
        before = self.store.get(schema.entity_set, row[pk]) if watched else None
        row = ownership.derive(self, schema, row, created=created)
        for alt in schema.alternate_keys:
            values = tuple(row.get(c) for c in alt)
            if any(v is None for v in values):
                continue
            clash = self.find(schema, dict(zip(alt, values, strict=True)))
            if clash is not None and clash[pk] != row[pk]:
                raise ServiceError(
                    412,
                    "0x80060892",
                    f"A record that has the attribute values {', '.join(alt)} "
                    "already exists. The entity key requires that this set of "
                    "attributes contains unique values.",
                )
        if created:
            for column, prefix in schema.autonumber.items():
                if not row.get(column):
                    row = {**row, column: self.number(schema, prefix)}
        row = {**row, **derived(schema.entity_type, row)}
        row = {**row, **reference.base_amounts(schema.entity_type, row, self.exchange_rate(row))}
        version = self.store.next(VERSION)
        stamp = now_iso()
        row = {**row, "modifiedon": stamp, "versionnumber": version}
        if created:
            row["createdon"] = stamp
        self.store.put(schema.entity_set, row[pk], row, version)
        self.touch_parent(schema, row)
        ownership.after_save(self, schema, row, before)
        return row

    def exchange_rate(self, row: Row) -> float | None:
        """The exchange rate of the row's currency to the base currency, as Dataverse copies
        it onto the record on save (exchangerate: "the conversion rate of the record's currency")."""
        currency_id = row.get("_transactioncurrencyid_value")
        currency = self.store.get("transactioncurrencies", currency_id) if currency_id else None
        return (currency or {}).get("exchangerate")

    def number(self, schema: EntitySchema, prefix: str) -> str:
        """An autonumber like the P2C solution's: `ORD-01000-BVRCPS` (sequence and a random tail)."""
        n = self.store.next(f"autonumber:{schema.entity_set}", 1000)  # the admin center starts at 1000
        tail = "".join(chr(65 + (n * 7919 // 26**i) % 26) for i in range(6))
        return f"{prefix}{n:05d}-{tail}"

    def touch_parent(self, schema: EntitySchema, line: Row) -> None:
        """A line changed: Dataverse recalculates the document's totals, so the header changes too."""
        if schema.parent is None:
            return
        parent_id = line.get(f"_{schema.parent}_value")
        target = self.schemas[schema.lookups[schema.parent]]
        header = self.store.get(target.entity_set, parent_id) if parent_id else None
        if header is not None:
            version = self.store.next(VERSION)
            header = {**header, "modifiedon": now_iso(), "versionnumber": version}
            self.store.put(target.entity_set, header[target.keys[0]], header, version)

    def written(
        self,
        request: Request,
        schema: EntitySchema,
        row: Row,
        prefer: dict[str, str],
        *,
        created: bool,
        status_create: int = 204,
    ) -> Response:
        entity_id = f"{self.root(request)}{schema.entity_set}({row[schema.keys[0]]})"
        if prefer.get("return") == "representation":
            return JSONResponse(
                self.project(request, schema, row, list(schema.props)),
                status_code=201 if created else 200,
                headers={"OData-EntityId": entity_id},
            )
        return Response(status_code=status_create if created else 204, headers={"OData-EntityId": entity_id})

    # --- helpers ----------------------------------------------------------------

    def find(self, schema: EntitySchema, key: dict[str, Any] | str) -> Row | None:
        if isinstance(key, str):
            return self.store.get(schema.entity_set, key)
        if set(key) == {schema.keys[0]}:
            return self.store.get(schema.entity_set, str(key[schema.keys[0]]).lower())
        if tuple(sorted(key)) not in {tuple(sorted(a)) for a in schema.alternate_keys}:
            raise _bad(f"The key {', '.join(key)} is not an alternate key of '{schema.entity_type}'.")
        for row in self.store.find_by(schema.entity_set, key):
            if all(_same(row.get(c), v) for c, v in key.items()):
                return row
        return None

    def not_found(self, schema: EntitySchema, key: dict[str, Any] | str) -> ServiceError:
        if isinstance(key, str):
            return ServiceError(404, "0x80040217", f"{schema.entity_type} With Id = {key} Does Not Exist")
        return ServiceError(
            404, "0x80040217", f"A record with the specified key values does not exist in {schema.entity_type} entity"
        )


@dataclass
class _Plan:
    """One checked `$expand` item."""

    nav: str
    target: EntitySchema
    many: bool  # collection-valued
    column: str  # the lookup column: the parent's (single-valued) or the child's (collection-valued)
    ref: bool = False
    cols: list[str] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    top: int | None = None
    nested: list[_Plan] = field(default_factory=list)


def _page_size(prefer: dict[str, str]) -> tuple[int, list[str]]:
    """The page size and the preference applied. "Page results using OData": up to 5,000 rows
    a page; a larger odata.maxpagesize is ignored (so not applied)."""
    if "odata.maxpagesize" not in prefer:
        return MAX_PAGE_SIZE, []
    try:
        asked = int(prefer["odata.maxpagesize"])
    except ValueError:
        raise _bad("odata.maxpagesize must be a number") from None
    if not 0 < asked <= MAX_PAGE_SIZE:
        return MAX_PAGE_SIZE, []
    return asked, [f"odata.maxpagesize={asked}"]


def _top(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        top = int(text)
    except ValueError:
        raise _bad("$top must be a whole number") from None
    if top < 0:
        raise _bad("$top must not be negative")
    return top


def _paging(plans: list[_Plan], page_size: int) -> int | None:
    """The page size of expanded collections: set when a nested $expand is anywhere in the query."""
    return page_size if any(plan.nested for plan in plans) else None  # any deeper nesting starts at the top


def _context(cols: list[str], plans: list[_Plan]) -> str:
    """`name,primarycontactid(fullname),quote_details(quantity)` for `@odata.context`."""
    parts = list(cols)
    for plan in plans:
        parts.append(plan.nav if plan.ref else f"{plan.nav}({_context(plan.cols, plan.nested)})")
    return ",".join(parts)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, str) and isinstance(b, str):
        return a.casefold() == b.casefold()
    return a == b


def _prefer(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name:
            out[name.strip()] = value.strip().strip('"')
    return out


def _link(base: str, params: dict[str, str]) -> str:
    return base + "?" + "&".join(f"{k}={quote(v, safe=',$')}" for k, v in params.items())
