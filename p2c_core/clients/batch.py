"""OData `$batch` as both services take it: multipart/mixed, one HTTP request per part.

Requests go as independent parts with `Prefer: odata.continue-on-error`, so one bad
record answers with its own error while the others are written (APIS.md: a batch is
one request toward the service's request limit).
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


@dataclass
class BatchRequest:
    method: str
    url: str  # relative to the service root, as for ODataClient.request
    params: Mapping[str, str] | None = None
    json_body: Any = None
    headers: Mapping[str, str] | None = None


def encode(root: str, requests: list[BatchRequest]) -> tuple[str, bytes]:
    """(content type, body) of a batch of independent requests."""
    boundary = f"batch_{uuid.uuid4()}"
    out: list[str] = []
    for request in requests:
        url = root + request.url
        if request.params:
            url += "?" + urlencode(dict(request.params), safe="$(),'=")
        out += [f"--{boundary}", "Content-Type: application/http", "Content-Transfer-Encoding: binary", ""]
        out.append(f"{request.method} {url} HTTP/1.1")
        headers = dict(request.headers or {})
        body = ""
        if request.json_body is not None:
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
            body = json.dumps(request.json_body, ensure_ascii=False)
        out += [f"{k}: {v}" for k, v in headers.items()]
        out += ["", body]
    out.append(f"--{boundary}--")
    return f"multipart/mixed; boundary={boundary}", (CRLF.join(out) + CRLF).encode()


class BatchFormatError(ValueError):
    """A batch response that is not the multipart the request asked for."""


def decode(content_type: str, body: bytes) -> list[httpx.Response]:
    """One response per answered request, in order; changeset responses are flattened."""
    boundary = _boundary(content_type)
    responses: list[httpx.Response] = []
    for part in _parts(body, boundary):
        headers, content = _split_headers(part)
        ctype = headers.get("content-type", "")
        if ctype.startswith("multipart/mixed"):
            responses += decode(ctype, content)
        else:
            responses.append(_http_response(content))
    return responses


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
