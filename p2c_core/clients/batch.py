"""OData `$batch` as both services take it: multipart/mixed, one HTTP request per part.

Requests go as independent parts with `Prefer: odata.continue-on-error`, so one bad
record answers with its own error while the others are written (APIS.md: a batch is
one request toward the service's request limit). A `ChangeSet` groups the writes of one
document (a header's lines): atomic, answered as a whole, or by the one failure that
rolled it back (OData 4.0 part 1, 11.7.4).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx

CRLF = "\r\n"
# Requests in one `$batch`, changesets' parts included: Dataverse takes up to 1,000
# ("Execute batch operations using the Web API"; APIS.md). F&O publishes no number; the
# same bound is used for it.
MAX_BATCH_REQUESTS = 1000


@dataclass
class BatchRequest:
    method: str
    url: str  # relative to the service root, as for ODataClient.request
    params: Mapping[str, str] | None = None
    json_body: Any = None
    headers: Mapping[str, str] | None = None


@dataclass
class ChangeSet:
    """Writes that succeed or fail together (one document's)."""

    requests: list[BatchRequest]


def encode(root: str, requests: list[BatchRequest] | list[BatchRequest | ChangeSet]) -> tuple[str, bytes]:
    """(content type, body) of a batch of independent requests and changesets."""
    boundary = f"batch_{uuid.uuid4()}"
    out: list[str] = []
    for item in requests:
        out.append(f"--{boundary}")
        if isinstance(item, ChangeSet):
            inner = f"changeset_{uuid.uuid4()}"
            out += [f"Content-Type: multipart/mixed; boundary={inner}", ""]
            for n, request in enumerate(item.requests, start=1):
                out += [f"--{inner}", *_part(root, request, content_id=str(n))]
            out.append(f"--{inner}--")
        else:
            out += _part(root, item)
    out.append(f"--{boundary}--")
    return f"multipart/mixed; boundary={boundary}", (CRLF.join(out) + CRLF).encode()


def _part(root: str, request: BatchRequest, content_id: str | None = None) -> list[str]:
    url = root + request.url
    if request.params:
        url += "?" + urlencode(dict(request.params), safe="$(),'=")
    out = ["Content-Type: application/http", "Content-Transfer-Encoding: binary"]
    if content_id is not None:
        out.append(f"Content-ID: {content_id}")
    out += ["", f"{request.method} {url} HTTP/1.1"]
    headers = dict(request.headers or {})
    body = ""
    if request.json_body is not None:
        headers.setdefault("Content-Type", "application/json; charset=utf-8")
        body = json.dumps(request.json_body, ensure_ascii=False)
    out += [f"{k}: {v}" for k, v in headers.items()]
    out += ["", body]
    return out


class BatchFormatError(ValueError):
    """A batch response that is not the multipart the request asked for."""


def decode(content_type: str, body: bytes) -> list[httpx.Response]:
    """One response per answered request, in order; changeset responses are flattened."""
    responses: list[httpx.Response] = []
    for answer in decode_grouped(content_type, body):
        responses += answer if isinstance(answer, list) else [answer]
    return responses


def decode_grouped(content_type: str, body: bytes) -> list[httpx.Response | list[httpx.Response]]:
    """One answer per top-level part: a response, or a changeset's list of responses (a
    changeset that failed answers with its one failure, a response)."""
    boundary = _boundary(content_type)
    answers: list[httpx.Response | list[httpx.Response]] = []
    for part in _parts(body, boundary):
        headers, content = _split_headers(part)
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/mixed"):
            answers.append(decode(ctype, content))
        else:
            answers.append(_http_response(content))
    return answers


def _boundary(content_type: str) -> bytes:
    for param in content_type.split(";")[1:]:
        name, _, value = param.strip().partition("=")
        if name.lower() == "boundary" and value:
            return value.strip('"').encode()
    raise BatchFormatError(f"batch response is not multipart: content type {content_type or 'missing'!r}")


def _parts(body: bytes, boundary: bytes) -> list[bytes]:
    delimiter = b"--" + boundary
    chunks = body.split(delimiter)
    if len(chunks) < 2:
        raise BatchFormatError("batch response has no parts")
    parts = []
    for chunk in chunks[1:]:
        if chunk.startswith(b"--"):  # the close delimiter
            break
        parts.append(chunk.removeprefix(b"\r\n").removeprefix(b"\n").removesuffix(b"\r\n").removesuffix(b"\n"))
    return parts


def _split_headers(part: bytes) -> tuple[dict[str, str], bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        head, sep, rest = part.partition(separator)
        if sep:
            break
    else:
        head, rest = part, b""
    headers: dict[str, str] = {}
    for line in head.decode("latin-1").splitlines():
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers, rest


def _http_response(content: bytes) -> httpx.Response:
    """`HTTP/1.1 204 No Content` + headers + blank line + body -> an httpx.Response."""
    lines = content.split(b"\n")
    words = lines[0].decode("latin-1").strip().split(" ", 2)
    if len(words) < 2 or not words[0].startswith("HTTP/") or not words[1].isdigit():
        raise BatchFormatError(f"batch part does not start with an HTTP status line: {lines[0][:40]!r}")
    headers: dict[str, str] = {}
    i = 1
    while i < len(lines) and lines[i].strip():
        name, _, value = lines[i].decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
        i += 1
    body = b"\n".join(lines[i + 1 :]).strip(b"\r\n")
    headers.pop("content-length", None)  # the body was re-cut from the multipart
    return httpx.Response(int(words[1]), headers=headers, content=body)
