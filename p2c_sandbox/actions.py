"""Dataverse's unbound actions the sandbox serves: `ReviseQuote`.

ReviseQuote (Web API action, the organization service's ReviseQuoteRequest): parameters
`QuoteId` (the original quote) and `ColumnSet`; it returns the revised quote. As Sales does
it: the original is closed as Revised (statecode 3 Closed, statuscode 7 Revised, the quote
reference's StatusCode options) and a new draft quote is created with the same quote number,
`revisionnumber` one higher ("Revision ID", read only) and copies of the lines.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from p2c_sandbox.service import ServiceError, json_body
from p2c_sandbox.store import Row

if TYPE_CHECKING:
    from p2c_sandbox.org import Org

ACTIVE, CLOSED = 1, 3
REVISED = 7  # statuscode "Revised" (state Closed)
DRAFT_STATUS = 1  # "In Progress" (state Draft)
_COPIED_NOT = {"createdon", "modifiedon", "versionnumber"}


def _bad(message: str) -> ServiceError:
    return ServiceError(400, "0x80060888", message)


def answer(service: Org, request: Request, path: str, body: bytes) -> Response | None:
    if path.split("?", 1)[0] != "ReviseQuote":
        return None
    if request.method != "POST":
        raise ServiceError(405, "0x80060888", f"The HTTP method '{request.method}' is not allowed on ReviseQuote.")
    params = json_body(body, _bad)
    if not params.get("QuoteId"):
        raise _bad("The parameter 'QuoteId' is required.")
    revised = revise_quote(service, str(params["QuoteId"]).lower())
    quotes = service.schemas["quotes"]
    columns = _columns(quotes.props, params.get("ColumnSet"))
    out: dict[str, Any] = {"@odata.context": f"{service.root(request)}$metadata#quotes/$entity"}
    out.update(service.project(request, quotes, revised, columns))
    return JSONResponse(out)


def revise_quote(service: Org, quote_id: str) -> Row:
    """Close the active quote as Revised; a new draft revision with its lines; the new quote."""
    quotes, lines = service.schemas["quotes"], service.schemas["quotedetails"]
    with service.store.transaction():
        quote = service.store.get(quotes.entity_set, quote_id)
        if quote is None:
            raise service.not_found(quotes, quote_id)
        if quote.get("statecode") != ACTIVE:
            raise ServiceError(400, "0x80040203", "Only an active quote can be revised.")
        service.modify(quotes, quote, {"statecode": CLOSED, "statuscode": REVISED})
        copy = {k: v for k, v in quote.items() if k not in _COPIED_NOT}
        copy.update({"quoteid": str(uuid.uuid4()), "statecode": 0, "statuscode": DRAFT_STATUS,
                     "revisionnumber": (quote.get("revisionnumber") or 0) + 1})  # fmt: skip
        revised = service.insert(quotes, copy, set(copy))
        for _, line in list(service.store.scan(lines.entity_set)):
            if line.get("_quoteid_value") != quote_id:
                continue
            new = {k: v for k, v in line.items() if k not in _COPIED_NOT}
            new.update({"quotedetailid": str(uuid.uuid4()), "_quoteid_value": revised["quoteid"]})
            service.insert(lines, new, set(new))
        return service.store.get(quotes.entity_set, revised["quoteid"]) or revised


def _columns(props: dict[str, Any], column_set: Any) -> list[str]:
    """`{"AllColumns": true}` or `{"Columns": [...]}` (the ColumnSet complex type)."""
    if not isinstance(column_set, dict) or column_set.get("AllColumns"):
        return list(props)
    wanted = [str(c) for c in column_set.get("Columns") or []]
    unknown = [c for c in wanted if c not in props]
    if unknown:
        raise _bad(f"'quote' entity doesn't contain attribute with Name = '{unknown[0]}'.")
    return wanted
