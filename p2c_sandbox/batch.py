"""`$batch` on both services (OData 4.0 section 11.7; Dataverse's "Execute batch operations").

multipart/mixed: each part one HTTP request (absolute URL or relative to the service root),
or a changeset (a nested multipart whose parts carry `Content-ID`) that is atomic: any
failure rolls all of it back and its response is that one failure. Later parts of a
changeset may use `$n` for the entity part n created, in the URL or an `@odata.bind`.
Outside changesets requests run in order and the batch stops at the first failure unless
the request says `Prefer: odata.continue-on-error`. At most 1,000 requests. Every inner
request runs through the very code a direct request does.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

MAX_REQUESTS = 1000


class BatchError(ValueError):
    """A batch body that is not the multipart OData describes."""


@dataclass
class Part:
    method: str
    url: str  # path (with query) relative to the service root
    headers: dict[str, str]
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    parts: list[Part] = field(default_factory=list)


def parse(content_type: str, body: bytes, root_path: str) -> list[Part | ChangeSet]:
    items: list[Part | ChangeSet] = []
    for headers, content in _parts(content_type, body):
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/mixed"):
            changeset = ChangeSet()
            for inner_headers, inner in _parts(ctype, content):
                part = _request(inner, root_path)
                # Content-ID belongs in the MIME part's headers; some clients put it among the request's.
                part.content_id = inner_headers.get("content-id") or part.headers.get("content-id")
                if part.method == "GET":
                    raise BatchError("A GET request cannot be part of a change set.")
                changeset.parts.append(part)
            items.append(changeset)
        elif ctype.startswith("application/http"):
            items.append(_request(content, root_path))
        else:
            raise BatchError(f"A batch part has the content type '{ctype}'; expected application/http.")
    return items


def count(items: list[Part | ChangeSet]) -> int:
    return sum(len(i.parts) if isinstance(i, ChangeSet) else 1 for i in items)


def _boundary(content_type: str) -> bytes:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode()
    raise BatchError("The batch request must have a multipart/mixed content type with a boundary.")


def _parts(content_type: str, body: bytes) -> list[tuple[dict[str, str], bytes]]:
    delimiter = b"--" + _boundary(content_type)
    chunks = body.split(delimiter)
    if len(chunks) < 2 or not chunks[-1].lstrip().startswith(b"--"):
        raise BatchError("The batch request body is not terminated by its closing boundary.")
    out = []
    for chunk in chunks[1:-1]:
        chunk = chunk.removeprefix(b"\r\n").removeprefix(b"\n").removesuffix(b"\r\n").removesuffix(b"\n")
        out.append(_head_and_body(chunk))
    return out


def _head_and_body(chunk: bytes) -> tuple[dict[str, str], bytes]:
    lines = chunk.split(b"\n")
    headers: dict[str, str] = {}
    i = 0
    while i < len(lines) and lines[i].strip():
        name, _, value = lines[i].decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
        i += 1
    return headers, b"\n".join(lines[i + 1 :])


def _request(content: bytes, root_path: str) -> Part:
    first, _, rest = content.partition(b"\n")
    words = first.decode("utf-8").strip().split(" ")
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        raise BatchError(f"A batch part does not start with a request line: {first[:60]!r}")
    method, url = words[0].upper(), words[1]
    headers, body = _head_and_body(rest)
    parts = urlsplit(url)
    path = parts.path if parts.scheme else url.split("?", 1)[0]
    if root_path in path:
        path = path[path.index(root_path) + len(root_path) :]
    path = path.lstrip("/")
    return Part(method, path + (f"?{parts.query}" if parts.query else ""), headers, body.strip(b"\r\n"))


# --- running ---------------------------------------------------------------------------

Runner = Callable[[Request, str, bytes], Response]


def sub_request(outer: Request, part: Part, root_path: str) -> Request:
    """A request scope for one part, as if it had come on its own (same host, caller)."""
    path, _, query = part.url.partition("?")
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in part.headers.items()]
    for name in ("authorization", "host"):
        if name not in part.headers and (value := outer.headers.get(name)) is not None:
            headers.append((name.encode(), value.encode("latin-1")))
    full = root_path + path
    scope = {
        "type": "http", "method": part.method, "path": full, "raw_path": full.encode("latin-1"),
        "query_string": query.encode("latin-1"), "headers": headers, "scheme": outer.url.scheme,
        "server": (outer.url.hostname, outer.url.port), "root_path": "", "http_version": "1.1",
    }  # fmt: skip
    return Request(scope)


def _entity_path(response: Response, root: str) -> str | None:
    location = response.headers.get("odata-entityid") or response.headers.get("location")
    if location is None and response.body:
        try:
            body = json.loads(bytes(response.body))
        except ValueError:
            return None
        location = body.get("@odata.id") if isinstance(body, dict) else None
    if not location:
        return None
    return location[len(root) :] if location.startswith(root) else location


class UnknownReference(BatchError):
    """A `$n` that no earlier part of the changeset declared (Dataverse answers 400)."""

    def __init__(self, ref: str) -> None:
        super().__init__(f"Content-ID Reference: '{ref}' does not exist in the batch context.")


_REF = re.compile(r"^\$(\w+)(?=$|[/?])")


def _refuse(name: str) -> object:
    raise ValueError(name)


def _unique(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out = dict(pairs)
    if len(out) != len(pairs):
        raise ValueError("a repeated name")
    return out


def _resolve(part: Part, created: dict[str, str]) -> Part:
    """`$1` in the URL or in an `@odata.bind` -> the entity that part 1 created."""
    url = part.url
    if match := _REF.match(url):
        path = created.get(match.group(1))
        if path is None:
            raise UnknownReference(match.group(0))
        url = path + url[match.end() :]
    body = part.body
    if body and b"$" in body:
        try:  # a body the service will refuse (NaN, a repeated name) goes on to it as it came
            data = json.loads(body, parse_constant=_refuse, object_pairs_hook=_unique)
        except ValueError:
            data = None
        if isinstance(data, dict):
            for name, value in list(data.items()):
                if name.endswith("@odata.bind") and isinstance(value, str) and _REF.fullmatch(value):
                    ref = created.get(value[1:])
                    if ref is None:
                        raise UnknownReference(value)
                    data[name] = "/" + ref.lstrip("/")
            body = json.dumps(data).encode()
    return Part(part.method, url, part.headers, body, part.content_id)


def _http(response: Response, content_id: str | None = None) -> bytes:
    reason = HTTPStatus(response.status_code).phrase
    head = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        head.append(f"Content-ID: {content_id}")
    lines = [*head, "", f"HTTP/1.1 {response.status_code} {reason}"]
    headers = dict(response.headers.items())
    if "odata-entityid" in headers and "location" not in headers:  # Dataverse's batch answers carry both
        headers["location"] = headers["odata-entityid"]
    for name, value in headers.items():
        if name.lower() not in ("content-length",):
            lines.append(f"{name}: {value}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + bytes(response.body or b"")


@dataclass
class Outcome:
    body: bytes
    content_type: str
    continue_on_error: bool  # the preference was applied
    stopped_by: int | None  # the status of the failure that stopped the batch, if one did


Reject = Callable[[Request, str], Response]


def run(
    outer: Request,
    items: list[Part | ChangeSet],
    *,
    root_path: str,
    root: str,
    execute: Callable[[Request, bytes], Response],
    reject: Reject,
    transaction: Callable[[], Any],
) -> Outcome:
    """Run the parts in order. `reject(request, message)` answers a part the batch itself
    refuses (an unknown `$n`), as the service words a 400."""
    prefer = [p.strip().lower() for p in outer.headers.get("prefer", "").split(",")]
    keep_going = "odata.continue-on-error" in prefer
    boundary = f"batchresponse_{uuid.uuid4()}"
    out: list[bytes] = []
    stopped_by: int | None = None
    for item in items:
        if isinstance(item, Part):
            response = execute(sub_request(outer, item, root_path), item.body)
            out.append(_http(response))
            status = response.status_code
        else:
            parts_out, status = _changeset(outer, item, root_path, root, execute, reject, transaction)
            out.append(parts_out)
        if status >= 400 and not keep_going:
            stopped_by = status
            break
    body = b"".join(f"--{boundary}\r\n".encode() + chunk + b"\r\n" for chunk in out) + f"--{boundary}--\r\n".encode()
    return Outcome(body, f"multipart/mixed; boundary={boundary}", keep_going, stopped_by)


class _Rollback(Exception):
    pass


def _changeset(
    outer: Request,
    changeset: ChangeSet,
    root_path: str,
    root: str,
    execute: Callable[[Request, bytes], Response],
    reject: Reject,
    transaction: Callable[[], Any],
) -> tuple[bytes, int]:
    """Returns (the changeset's answer, its status: 200, or the failing part's)."""
    boundary = f"changesetresponse_{uuid.uuid4()}"
    answers: list[tuple[Response, str | None]] = []
    failure: Response | None = None
    created: dict[str, str] = {}
    try:
        with transaction():  # every store write of the parts, counters included, or none
            for part in changeset.parts:
                try:
                    resolved = _resolve(part, created)
                except UnknownReference as exc:
                    failure = reject(sub_request(outer, part, root_path), str(exc))
                    raise _Rollback from None
                response = execute(sub_request(outer, resolved, root_path), resolved.body)
                if response.status_code >= 400:
                    failure = response
                    raise _Rollback
                answers.append((response, part.content_id))
                if part.content_id and (path := _entity_path(response, root)):
                    created[part.content_id] = path
    except _Rollback:
        pass
    if failure is not None:  # the whole changeset answers with its one failure (OData 11.7.4)
        return _http(failure), failure.status_code
    body = b"".join(f"--{boundary}\r\n".encode() + _http(r, cid) + b"\r\n" for r, cid in answers)
    body += f"--{boundary}--".encode()
    head = f"Content-Type: multipart/mixed; boundary={boundary}\r\n\r\n".encode()
    return head + body, 200
