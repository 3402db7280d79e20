"""The console as the Functions app serves it (`/api/console/`), behind App Service authentication."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from p2c_core.console.api import Request, Response, handle
from p2c_core.console.auth import Policy, Principal, principal_from_headers


def _who(request: Request) -> Principal:
    from p2c_core.settings import get_settings

    s = get_settings()
    policy = Policy(frozenset(s.console.operator_groups), frozenset(s.console.viewer_groups), s.tenant_id)
    return principal_from_headers(request.headers, policy)


def respond(
    method: str, path: str, query: Mapping[str, str], headers: Mapping[str, str], body: bytes, url: str
) -> dict[str, Any]:
    """func.HttpResponse keyword arguments for one request."""
    if not path and not url.split("?", 1)[0].endswith("/"):
        # Relative links (console.js, api/...) need the page's URL to end with a slash.
        response = Response(308, b"", "text/plain", {"Location": url.split("?", 1)[0] + "/"})
    else:
        lowered = {k.lower(): v for k, v in headers.items()}
        response = handle(Request(method.upper(), path, dict(query), lowered, body), _who)
    return {
        "body": response.body,
        "status_code": response.status,
        "headers": {**response.headers, "Content-Type": response.content_type},
    }
