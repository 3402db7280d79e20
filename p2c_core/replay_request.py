"""The body of `POST /api/replay`, read defensively: the endpoint is reachable from the
network, so nothing in it is trusted, and nothing of it is echoed back whole.

`{"flow": "accounts"}`: that flow's failures (and its poison queue); `{"flow": "accounts",
"keys": ["A-1"]}`: those records; `{"keys": [...]}`: those records in every flow;
`{"all": true}`: every flow. An empty body replays nothing: a full replay is asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_BODY_BYTES = 64 * 1024
MAX_KEYS = 1000
MAX_KEY_CHARS = 512
FIELDS = ("all", "flow", "keys")


class BadReplayRequest(ValueError):
    """Why the body is refused (a 4xx); the text never quotes the body."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class ReplayRequest:
    flow: str | None
    keys: frozenset[str] | None


def parse(body: bytes, flows: tuple[str, ...]) -> ReplayRequest:
    """The request, or BadReplayRequest saying what is wrong (size, JSON, fields, flow)."""
    if len(body) > MAX_BODY_BYTES:
        raise BadReplayRequest(f"body is over {MAX_BODY_BYTES} bytes", status=413)
    try:
        request = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise BadReplayRequest(f"body is not JSON: {exc.msg} at position {exc.pos}") from None
    except (ValueError, RecursionError):
        raise BadReplayRequest("body is not JSON (or nested too deeply)") from None
    if not isinstance(request, dict):
        raise BadReplayRequest("expected a JSON object")
    if unknown := set(request) - set(FIELDS):
        raise BadReplayRequest(f"{len(unknown)} unknown field(s); allowed: {', '.join(FIELDS)}")
    everything, flow, keys = request.get("all", False), request.get("flow"), request.get("keys")
    if not isinstance(everything, bool):
        raise BadReplayRequest("all must be true or false")
    if flow is not None and (not isinstance(flow, str) or flow not in flows):
        raise BadReplayRequest(f"unknown flow; known: {', '.join(flows)}")
    if keys is not None:
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
            raise BadReplayRequest("keys must be a list of strings")
        if not keys or len(keys) > MAX_KEYS or any(len(k) > MAX_KEY_CHARS for k in keys):
            raise BadReplayRequest(f"keys must hold 1 to {MAX_KEYS} keys of at most {MAX_KEY_CHARS} characters")
    if everything and (flow is not None or keys is not None):
        raise BadReplayRequest('"all": true replays everything; leave out flow and keys')
    if not everything and flow is None and keys is None:
        raise BadReplayRequest('say what to replay: {"flow": ...}, {"keys": [...]} or, for everything, {"all": true}')
    return ReplayRequest(flow=flow, keys=frozenset(keys) if keys is not None else None)
