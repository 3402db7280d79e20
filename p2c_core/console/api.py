"""The console's HTTP surface, free of any server: the Functions app and `p2c console` both call
`handle`. Pages and reads for viewers and operators; actions (POST) for operators only.

CSRF: an action must be a POST with `Content-Type: application/json` and the header
`X-P2C-Console: 1`, which a page of another origin cannot send without a CORS preflight
(this app answers none), and, when the browser says where it comes from (`Origin`,
`Sec-Fetch-Site`), from this origin (OWASP CSRF cheat sheet: custom request headers,
verifying origin with standard headers).
"""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from p2c_core.console import actions, views
from p2c_core.console.auth import Principal, Refused

CSRF_HEADER = "x-p2c-console"
# The page may talk to this origin only; no inline script, no frames.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
STATIC = ("index.html", "console.js", "console.css")


@dataclass
class Request:
    method: str
    path: str  # below the console's root: "" (the page), "console.js", "api/flows"...
    query: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=lambda: dict(SECURITY_HEADERS))


def _json(status: int, body: object) -> Response:
    return Response(status, json.dumps(body, default=str).encode())


def handle(request: Request, who: Callable[[Request], Principal]) -> Response:
    """Answer one request; `who` names the caller or raises Refused."""
    try:
        principal = who(request)
        return _route(request, principal)
    except Refused as exc:
        return _json(exc.status, {"error": exc.reason})
    except KeyError as exc:  # an unknown flow
        return _json(404, {"error": str(exc).strip("'\"")})
    except ValueError as exc:
        return _json(400, {"error": str(exc)})


def _route(request: Request, principal: Principal) -> Response:
    path = request.path.strip("/")
    if request.method == "GET" and path in ("", *STATIC):
        return _static(path or "index.html")
    if not path.startswith("api/"):
        return _json(404, {"error": f"no such page: {path}"})
    parts = path.split("/")[1:]
    if request.method == "GET":
        return _read(parts, request.query, principal)
    if request.method == "POST":
        check_csrf(request)
        if not principal.can_act:
            raise Refused(403, f"{principal.name} may look but not act (operators have the P2C.Operator role)")
        return _act(parts, _body(request), principal)
    return _json(405, {"error": f"{request.method} not allowed"})


def _static(name: str) -> Response:
    data = resources.files("p2c_core.console").joinpath("static", name).read_bytes()
    kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Response(200, data, f"{kind}; charset=utf-8")


def _read(parts: list[str], query: Mapping[str, str], principal: Principal) -> Response:
    from p2c_core.runtime import get_runtime

    rt = get_runtime()
    match parts:
        case ["me"]:
            return _json(200, {"name": principal.name, "role": principal.role, **views.environment(rt)})
        case ["flows"]:
            return _json(200, {"flows": views.flows(rt)})
        case ["failures"]:
            q = {k: query.get(k) for k in ("flow", "company", "error", "text")}
            return _json(200, views.failures(rt, q["flow"], q["company"], q["error"], q["text"]))
        case ["failures", flow, key]:
            found = views.failure(rt, flow, key)
            return _json(200, found) if found else _json(404, {"error": f"no failure of {flow} for {key!r}"})
        case ["history"]:
            return _json(200, {"actions": actions.history(rt, query.get("flow"))})
        case ["plan", flow]:
            return _json(200, actions.plan(rt, flow, int(query.get("limit") or 20)))
        case ["reconcile", flow]:
            return _json(200, actions.reconcile(rt, flow))
    return _json(404, {"error": "no such API"})


def _act(parts: list[str], body: dict[str, Any], principal: Principal) -> Response:
    from p2c_core.runtime import get_runtime

    if len(parts) != 1 or parts[0] not in actions.ACTIONS:
        return _json(404, {"error": "no such action"})
    return _json(200, actions.ACTIONS[parts[0]](get_runtime(), body, principal.name))


def _body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(request.body or b"{}")
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON: {exc.msg}") from None
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    return body


def check_csrf(request: Request) -> None:
    h = request.headers
    if h.get(CSRF_HEADER) != "1" or not h.get("content-type", "").startswith("application/json"):
        raise Refused(403, "actions come from the console page only (JSON with its X-P2C-Console header)")
    if h.get("sec-fetch-site") not in (None, "same-origin"):
        raise Refused(403, "cross-site request refused")
    origin = h.get("origin")
    # Behind a proxy (Front Door) the public host arrives as X-Forwarded-Host; a cross-site
    # page cannot set that header either without a preflight.
    hosts = {h.get("host"), h.get("x-forwarded-host"), h.get("x-original-host")} - {None}
    if origin is not None and (origin == "null" or urlsplit(origin).netloc not in hosts):
        raise Refused(403, "cross-origin request refused")
