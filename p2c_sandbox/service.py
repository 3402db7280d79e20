"""What both sandbox services share: the ASGI plumbing, errors, request accounting,
`$select`/`$filter`/`$orderby`/paging over the store, and type checks on writes."""

from __future__ import annotations

import abc
import asyncio
import base64
import json
import threading
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from p2c_sandbox.enums import member_names
from p2c_sandbox.faults import FaultConfig, FaultMiddleware, Faults
from p2c_sandbox.protection import (
    DATAVERSE_WORDING,
    ProtectionConfig,
    Refusal,
    ResourceThrottling,
    ServiceProtection,
    ThrottlingConfig,
    Wording,
    identity,
)
from p2c_sandbox.query import Dialect, QueryError, identifiers, order_key, parse_filter, parse_key
from p2c_sandbox.schema import EntitySchema, Prop
from p2c_sandbox.store import Row

Handler = Callable[[Request], Awaitable[Response]]


class ServiceError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_token(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def decode_token(token: str) -> dict[str, Any]:
    try:
        return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, json.JSONDecodeError):
        raise ServiceError(400, "0x80060888", "The skip token is not valid.") from None


@dataclass
class Address:
    """A parsed resource path: entity set, optional key, optional trailing segment."""

    entity_set: str
    key: dict[str, Any] | str | None = None
    rest: str = ""


def parse_path(path: str) -> Address:
    """`accounts`, `accounts(<guid>)`, `CustomersV3(dataAreaId='x',CustomerAccount='y')`."""
    path = unquote(path)
    if "(" not in path:  # `accounts`, or a segment after it: `accounts/$count`
        name, _, rest = path.strip("/").partition("/")
        return Address(entity_set=name, rest=rest)
    name, _, remainder = path.partition("(")
    depth, inner_end, quoted = 1, -1, False
    for i, ch in enumerate(remainder):
        if ch == "'":
            quoted = not quoted
        elif not quoted and ch == "(":
            depth += 1
        elif not quoted and ch == ")":
            depth -= 1
            if depth == 0:
                inner_end = i
                break
    if inner_end < 0:
        raise ServiceError(400, "0x80060888", f"Bad Request - Error in query syntax: unbalanced key in {path!r}")
    try:
        key = parse_key(remainder[:inner_end])
    except QueryError as exc:
        raise ServiceError(400, "0x80060888", str(exc)) from None
    return Address(entity_set=name, key=key, rest=remainder[inner_end + 1 :].strip("/"))


class Accounting:
    """Request counts by method, entity set and status, for tests and benchmarks.

    A `$batch` is one request (`POST $batch`); the operations inside it are counted apart,
    under "operations", as the service counts them toward its execution-time limit.
    """

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: Counter[tuple[str, str, int]] = Counter()
        self.inner: Counter[tuple[str, str, int]] = Counter()

    def add(self, method: str, entity_set: str, status: int, *, in_batch: bool = False) -> None:
        with self.lock:
            (self.inner if in_batch else self.counts)[(method, entity_set, status)] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            items, inner = list(self.counts.items()), list(self.inner.items())
        batches = sum(n for (m, e, _), n in items if e == "$batch")
        return {
            "total": sum(n for _, n in items),
            "requests": [{"method": m, "entity_set": e, "status": s, "count": n} for (m, e, s), n in sorted(items)],
            # Operations toward the limits: each request one, a $batch one per request inside.
            "operations_total": sum(n for _, n in items) - batches + sum(n for _, n in inner),
            "operations": [{"method": m, "entity_set": e, "status": s, "count": n} for (m, e, s), n in sorted(inner)],
        }

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()
            self.inner.clear()


def check_value(schema: EntitySchema, name: str, value: Any, error: Callable[[str], ServiceError]) -> Any:
    """Type and length checks on one written value, as the services validate them."""
    prop: Prop | None = schema.props.get(name)
    if prop is None:
        raise error(f"property '{name}' does not exist on type '{schema.entity_type}'")
    if value is None:
        if not prop.nullable:
            raise error(f"property '{name}' cannot be null")
        return None
    t = prop.type
    if t == "Edm.String" or t.startswith("enum:"):
        if not isinstance(value, str):
            raise error(f"cannot convert the literal '{value}' to the expected type '{t}' of '{name}'")
        if prop.max_length is not None and len(value) > prop.max_length:
            raise error(
                f"the length of '{name}' ({len(value)}) exceeds the maximum allowed length of '{prop.max_length}'"
            )
        members = member_names(t[5:]) if t.startswith("enum:") else None
        if members is not None and value not in members:
            raise error(f"the value '{value}' is not valid for enum {t[5:]} of '{name}'")
        return value
    if t in ("Edm.Int32", "Edm.Int64"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise error(f"cannot convert the literal '{value}' to the expected type '{t}' of '{name}'")
        if t == "Edm.Int32" and not -(2**31) <= value < 2**31:
            raise error(f"the value '{value}' is out of range for '{name}' ({t})")
        if prop.options is not None and value not in prop.options:
            accepted = ",".join(str(v) for v in prop.options)
            raise error(f"the value {value} of '{name}' is outside the valid range. Accepted Values: {accepted}")
        return value
    if t in ("Edm.Decimal", "Edm.Double"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise error(f"cannot convert the literal '{value}' to the expected type '{t}' of '{name}'")
        return value
    if t == "Edm.Boolean":
        if not isinstance(value, bool):
            raise error(f"cannot convert the literal '{value}' to the expected type '{t}' of '{name}'")
        return value
    if t == "Edm.Guid":
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise error(f"cannot convert the literal '{value}' to the expected type 'Edm.Guid' of '{name}'") from None
    if t in ("Edm.DateTimeOffset", "Edm.Date"):
        if not isinstance(value, str):
            raise error(f"cannot convert the literal '{value}' to the expected type '{t}' of '{name}'")
        try:
            datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise error(f"cannot convert the literal '{value}' to the expected type '{t}' of '{name}'") from None
        return value
    return value


def select_columns(schema: EntitySchema, select: str | None, error: Callable[[str], ServiceError]) -> list[str]:
    if not select:
        return list(schema.props)
    cols = [c.strip() for c in select.split(",") if c.strip()]
    for c in cols:
        if c not in schema.props:
            raise error(f"Could not find a property named '{c}' on type '{schema.entity_type}'.")
    return cols


def filtered(
    schema: EntitySchema,
    rows: list[Row],
    params: dict[str, str],
    error: Callable[[str], ServiceError],
    dialect: Dialect,
) -> list[Row]:
    """`$filter` (as the service's `dialect` reads it) and `$orderby` applied to `rows`."""
    expr = params.get("$filter")
    if expr:
        try:
            unknown = identifiers(expr, dialect) - set(schema.props)
            if unknown:
                raise error(f"Could not find a property named '{sorted(unknown)[0]}' on type '{schema.entity_type}'.")
            predicate = parse_filter(expr, dialect)
            rows = [r for r in rows if predicate(r)]
        except QueryError as exc:
            refused = error(str(exc))
            refused.status = exc.status
            raise refused from None
    if params.get("$orderby"):
        try:
            rows = sorted(rows, key=order_key(params["$orderby"], set(schema.props)))
        except QueryError as exc:
            raise error(str(exc)) from None
    return rows


class ODataService(abc.ABC):
    """One sandbox service: its OData routes under `root_path` plus the admin endpoints."""

    root_path: str
    request_id_header: str
    protection_wording: Wording = DATAVERSE_WORDING
    # F&O's resource-based, priority-based throttling; Dataverse has none.
    resource_throttling: bool = False

    def __init__(self) -> None:
        self.accounting = Accounting()
        self.faults = Faults()
        self.protection = ServiceProtection(wording=self.protection_wording)
        self.throttling = ResourceThrottling() if self.resource_throttling else None

    def app(self) -> ASGIApp:
        app = Starlette(
            routes=[
                Route("/_sandbox/stats", self.stats, methods=["GET"]),
                Route("/_sandbox/reset-stats", self.reset_stats, methods=["POST"]),
                Route("/_sandbox/faults", self.get_faults, methods=["GET"]),
                Route("/_sandbox/faults", self.set_faults, methods=["POST"]),
                Route("/_sandbox/protection", self.get_protection, methods=["GET"]),
                Route("/_sandbox/protection", self.set_protection, methods=["POST"]),
                Route("/_sandbox/throttling", self.get_throttling, methods=["GET"]),
                Route("/_sandbox/throttling", self.set_throttling, methods=["POST"]),
                *self.extra_routes(),
                Route(self.root_path + "{path:path}", self.handle, methods=["GET", "POST", "PATCH", "DELETE"]),
            ]
        )
        faulty = FaultMiddleware(app, self.faults, self.fault_body, self.request_id_header)
        return ProtectionMiddleware(faulty, self)

    async def get_faults(self, request: Request) -> Response:
        return JSONResponse(self.faults.snapshot())

    async def set_faults(self, request: Request) -> Response:
        """Configure injected faults: {"seed": 1, "error_rate": 0.2, "latency_ms": 50, ...}."""
        try:
            self.faults.configure(FaultConfig.from_json(json.loads(await request.body() or b"{}")))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.faults.snapshot())

    async def get_protection(self, request: Request) -> Response:
        return JSONResponse(self.protection.snapshot())

    async def set_protection(self, request: Request) -> Response:
        """Service protection limits: {"enabled": true, "max_requests": 100, "window_s": 10, ...}."""
        try:
            self.protection.configure(ProtectionConfig.from_json(json.loads(await request.body() or b"{}")))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.protection.snapshot())

    async def get_throttling(self, request: Request) -> Response:
        if self.throttling is None:
            return JSONResponse({"error": "this service has no resource-based throttling"}, status_code=404)
        return JSONResponse(self.throttling.snapshot())

    async def set_throttling(self, request: Request) -> Response:
        """Resource-based throttling: {"enabled": true, "capacity_s": 5, "priorities": {"<client id>": "High"}}."""
        if self.throttling is None:
            return JSONResponse({"error": "this service has no resource-based throttling"}, status_code=404)
        try:
            self.throttling.configure(ThrottlingConfig.from_json(json.loads(await request.body() or b"{}")))
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.throttling.snapshot())

    def extra_routes(self) -> list[Route]:
        """Routes a service serves beside its OData root (F&O's metadata service)."""
        return []

    @abc.abstractmethod
    def fault(self, status: int) -> ServiceError:
        """An injected error, as the service would word it."""

    def fault_body(self, status: int) -> dict[str, Any]:
        return self.error_body(self.fault(status))

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.accounting.snapshot())

    async def reset_stats(self, request: Request) -> Response:
        self.accounting.reset()
        return Response(status_code=204)

    # --- what each service says differently -----------------------------------

    schemas: dict[str, EntitySchema]
    csdl: str
    error_code_not_found: str = ""
    error_code_bad_request: str = ""
    unauthorized: tuple[str, str] = ("", "Unauthorized")
    # A $batch that stops at a failure (no odata.continue-on-error): Dataverse answers with the
    # failure's status ("Execute batch operations using the Web API", Handling errors); F&O 200.
    batch_status_from_failure: bool = False

    @abc.abstractmethod
    def response_headers(self) -> dict[str, str]:
        """Headers on every answer (request id, OData version)."""

    @abc.abstractmethod
    def error_body(self, error: ServiceError) -> dict[str, Any]:
        """The service's OData error body."""

    def metadata_api(self, request: Request, path: str) -> Response | None:
        """The service's JSON metadata API, or None when `path` is not in it."""
        return None

    def action(self, request: Request, path: str, body: bytes) -> Response | None:
        """An unbound action (`POST ReviseQuote`), or None when `path` names none."""
        return None

    @abc.abstractmethod
    def dispatch(self, request: Request, schema: EntitySchema, address: Address, body: bytes) -> Response:
        """Answer one request to an entity set or entity."""

    # --- the request path, the same for both -------------------------------------

    async def handle(self, request: Request) -> Response:
        return await self.answer(request, self.response_headers())

    async def answer(self, request: Request, headers: dict[str, str]) -> Response:
        if request.method == "POST" and self.resource_path(request).split("?", 1)[0] == "$batch":
            return self.batch(request, await request.body(), headers)
        return self.execute(request, await request.body(), headers)

    def execute(self, request: Request, body: bytes, headers: dict[str, str], *, in_batch: bool = False) -> Response:
        """Answer one request (on its own or inside a `$batch`), counted by its outcome."""
        entity_set, status = "?", 500
        try:
            auth = request.headers.get("authorization")
            if auth is not None and not auth.startswith("Bearer "):
                raise ServiceError(401, *self.unauthorized)
            path = self.resource_path(request)
            if path.split("?", 1)[0] == "" and request.method == "GET":
                entity_set, status = "$service", 200
                return JSONResponse(self.service_document(request), headers=headers)
            if path == "$metadata":
                entity_set, status = "$metadata", 200
                return Response(self.csdl, media_type="application/xml", headers=headers)
            metadata = self.metadata_api(request, path)
            if metadata is not None:
                entity_set, status = "EntityDefinitions", metadata.status_code
                metadata.headers.update(headers)
                return metadata
            answered = self.action(request, path, body)
            if answered is not None:
                entity_set, status = path.split("?", 1)[0], answered.status_code
                answered.headers.update(headers)
                return answered
            address = parse_path(path)
            entity_set = address.entity_set
            schema = self.schemas.get(address.entity_set)
            # Past the key, only a collection-valued navigation property (accounts(<id>)/contact_customer_accounts);
            # past the entity set only /$count.
            if schema is None or (address.rest and not (
                (address.key is None and address.rest == "$count")
                or (address.key is not None and address.rest in schema.collections)
            )):  # fmt: skip
                message = f"Resource not found for the segment '{address.entity_set}'."
                raise ServiceError(404, self.error_code_not_found, message)
            response = self.dispatch(request, schema, address, body)
            response.headers.update(headers)
            status = response.status_code
            return response
        except ServiceError as exc:
            status = exc.status
            return JSONResponse(self.error_body(exc), status_code=exc.status, headers={**headers, **exc.headers})
        finally:
            self.accounting.add(request.method, entity_set, status, in_batch=in_batch)

    def batch(self, request: Request, body: bytes, headers: dict[str, str]) -> Response:
        """`POST $batch`: one request to the limits, one operation per request inside."""
        from p2c_sandbox import batch

        status = 200
        try:
            try:
                items = batch.parse(request.headers.get("content-type", ""), body, self.root_path)
            except batch.BatchError as exc:
                raise ServiceError(400, self.error_code_bad_request, str(exc)) from None
            if batch.count(items) > batch.MAX_REQUESTS:
                raise ServiceError(400, self.error_code_bad_request, (
                    "The current change set contains too many operations. "
                    f"A maximum number of '{batch.MAX_REQUESTS}' operations are allowed in a change set."))  # fmt: skip
            request.scope["sandbox.operations"] = batch.count(items)  # charged by service protection
            store = getattr(self, "store")  # noqa: B009 - both services keep one

            def run_one(sub: Request, sub_body: bytes) -> Response:
                return self.execute(sub, sub_body, self.response_headers(), in_batch=True)

            def reject(sub: Request, message: str) -> Response:
                error = ServiceError(400, self.error_code_bad_request, message)
                self.accounting.add(sub.method, parse_path(self.resource_path(sub)).entity_set, 400, in_batch=True)
                return JSONResponse(self.error_body(error), status_code=400, headers=self.response_headers())

            outcome = batch.run(
                request, items, root_path=self.root_path, root=self.root(request),
                execute=run_one, reject=reject, transaction=store.transaction,
            )  # fmt: skip
            extra = {"Preference-Applied": "odata.continue-on-error"} if outcome.continue_on_error else {}
            # Dataverse: a batch stopped by a failure answers with that failure's status.
            if outcome.stopped_by is not None and self.batch_status_from_failure:
                status = outcome.stopped_by
            return Response(outcome.body, status_code=status, media_type=outcome.content_type,
                            headers={**headers, **extra})  # fmt: skip
        except ServiceError as exc:
            status = exc.status
            return JSONResponse(self.error_body(exc), status_code=exc.status, headers={**headers, **exc.headers})
        finally:
            self.accounting.add("POST", "$batch", status)

    def service_document(self, request: Request) -> dict[str, Any]:
        """`GET <root>`: every entity set, as OData JSON (OData-JSON 4.01, section 5) lists
        them; connectors call it to test a connection."""
        return {
            "@odata.context": f"{self.root(request)}$metadata",
            "value": [{"name": name, "kind": "EntitySet", "url": name} for name in self.schemas],
        }

    def resource_path(self, request: Request) -> str:
        """The path after the service root, still percent-encoded (keys are decoded once, later)."""
        raw = request.scope.get("raw_path", request.url.path.encode()).decode("latin-1")
        return raw[raw.index(self.root_path) + len(self.root_path) :] if self.root_path in raw else ""

    def root(self, request: Request) -> str:
        return f"{request.url.scheme}://{request.url.netloc}{self.root_path}"


class _NotJson(ValueError):
    """What JSON has no room for, though Python's parser takes it: NaN and Infinity ("not
    permitted", RFC 8259 section 6), repeated names."""


def _no_constant(name: str) -> Any:
    raise _NotJson(f"'{name}' is not a JSON value")


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # I-JSON (RFC 7493, section 2.3): objects "MUST NOT have members with duplicate names"; the
    # services refuse a body that repeats one instead of keeping the last as json.loads does.
    out: dict[str, Any] = {}
    for name, value in pairs:
        if name in out:
            raise _NotJson(f"the property '{name}' appears more than once")
        out[name] = value
    return out


def json_body(body: bytes, error: Callable[[str], ServiceError]) -> Row:
    """A write's body: one JSON object, strictly (no NaN or Infinity, no repeated names)."""
    try:
        data = json.loads(body or b"{}", parse_constant=_no_constant, object_pairs_hook=_unique_members)
    except _NotJson as exc:
        raise error(f"The request body is not valid JSON: {exc}.") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise error("The request body is not valid JSON.") from None
    if not isinstance(data, dict):
        raise error("The request body must be a JSON object.")
    return data


class ProtectionMiddleware:
    """Service protection in front of everything else: a request waiting out injected
    latency is in flight, and a refused one never reaches the service."""

    def __init__(self, app: ASGIApp, service: ODataService) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_sandbox"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        caller = headers.get("authorization") or "anonymous"
        protection, throttling = self.service.protection, self.service.throttling
        refused = protection.admit(caller)
        if refused is None and throttling is not None:
            refused = throttling.admit(identity(headers.get("authorization")))
            if refused is not None:
                protection.release(caller)
        if refused is not None:
            await self.refuse(scope, send, refused)
            return
        released = False

        async def send_with_limits(message: Message) -> None:
            nonlocal released
            if message["type"] == "http.response.start" and not released:
                released = True
                await self.spend(scope)
                limits = self.done(caller, headers, scope)
                message = {**message, "headers": [*message.get("headers", []),
                                                  *((k.encode(), v.encode()) for k, v in limits.items())]}  # fmt: skip
            await send(message)

        try:
            await self.app(scope, receive, send_with_limits)
        finally:
            if not released:
                self.done(caller, headers, scope)

    async def spend(self, scope: Scope) -> None:
        """Execution time is time: a request's operations take what they are charged
        (`cost_ms` each), so a client sees a `$batch` of 20 take 20 times as long."""
        cfg = self.service.protection.config
        if cfg.enabled and cfg.cost_ms > 0 and cfg.spend_time:
            await asyncio.sleep(int(scope.get("sandbox.operations", 1)) * cfg.cost_ms / 1000)

    def done(self, caller: str, headers: dict[str, str], scope: Scope) -> dict[str, str]:
        operations = int(scope.get("sandbox.operations", 1))
        if self.service.throttling is not None:
            self.service.throttling.done(identity(headers.get("authorization")), operations)
        return self.service.protection.done(caller, operations)

    async def refuse(self, scope: Scope, send: Send, refused: Refusal) -> None:
        self.service.accounting.add(scope.get("method", "?"), "?", 429)
        error = ServiceError(429, refused.code, refused.message)
        body = json.dumps(self.service.error_body(error)).encode()
        await send({"type": "http.response.start", "status": 429, "headers": [
            (b"content-type", b"application/json; charset=utf-8"), (b"content-length", str(len(body)).encode()),
            (b"retry-after", str(refused.retry_after_s).encode()),
            *((k.encode(), v.encode()) for k, v in self.service.response_headers().items()),
        ]})  # fmt: skip
        await send({"type": "http.response.body", "body": body})
