"""Table transactions (entity group transactions) written and read as plain text.

`TableClient.submit_transaction` builds each operation as a request of its own, runs the
pipeline policies over it on a thread pool, and writes and parses the multipart body with
Python's `email` package: about 0.4 ms of CPU per entity, the largest part of a synced
record's CPU (docs/benchmarks.md). This writes the same `$batch` body (one changeset,
https://learn.microsoft.com/rest/api/storageservices/performing-entity-group-transactions)
as text and sends it through the client's own pipeline (authentication, retries, version
headers), so only the body differs in how it is made. Operations are the SDK's tuples:
`("create" | "upsert" | "update" | "delete", entity[, {"mode", "etag", "match_condition"}])`.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

if TYPE_CHECKING:
    from azure.data.tables import TableClient

_STATUS = re.compile(rb"^HTTP/1\.1 (\d{3})", re.MULTILINE)
_ETAG = re.compile(rb"^ETag: *(.+?)\r?$", re.MULTILINE | re.IGNORECASE)


def _address(base: str, entity: dict[str, Any]) -> str:
    keys = (("PartitionKey", entity["PartitionKey"]), ("RowKey", entity["RowKey"]))
    inner = ",".join(f"{name}='{quote(str(value).replace(chr(39), chr(39) * 2), safe='')}'" for name, value in keys)
    return f"{base}({inner})"


def _part(base: str, op: tuple[Any, ...]) -> str:
    from azure.core import MatchConditions
    from azure.data.tables import UpdateMode
    from azure.data.tables._serialize import _add_entity_properties

    kind, entity = op[0], dict(op[1])
    options: dict[str, Any] = op[2] if len(op) > 2 else {}
    headers = ["Content-Type: application/json", "Accept: application/json;odata=nometadata", "DataServiceVersion: 3.0"]
    if options.get("match_condition") == MatchConditions.IfNotModified:
        headers.append(f"If-Match: {options['etag']}")
    elif kind in ("update", "delete"):
        headers.append("If-Match: *")
    if kind == "create":
        line, body = f"POST {base} HTTP/1.1", _add_entity_properties(entity)
        headers.append("Prefer: return-no-content")
    elif kind == "delete":
        line, body = f"DELETE {_address(base, entity)} HTTP/1.1", None
    else:
        mode = options.get("mode", UpdateMode.MERGE)
        verb = "PUT" if mode == UpdateMode.REPLACE else "PATCH"
        line, body = f"{verb} {_address(base, entity)} HTTP/1.1", _add_entity_properties(entity)
    text = json.dumps(body) if body is not None else ""
    return (
        "Content-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        + line + "\r\n" + "\r\n".join(headers) + "\r\n\r\n" + text
    )  # fmt: skip


def submit(client: TableClient, ops: list[Any]) -> list[dict[str, Any]]:
    """Run `ops` (one partition, at most 100) as one transaction: all or nothing. Returns each
    operation's `{"etag": ...}` (None for a delete); raises HttpResponseError if any failed."""
    from azure.core.exceptions import HttpResponseError
    from azure.core.rest import HttpRequest

    if not ops:
        return []
    host = f"{client.scheme}://{client._primary_hostname}"  # as the SDK's own `_batch_send`
    base = f"{host}/{client.table_name}"
    batch, changeset = f"batch_{uuid.uuid4()}", f"changeset_{uuid.uuid4()}"
    parts = "".join(f"--{changeset}\r\n{_part(base, op)}\r\n" for op in ops)
    body = (
        f"--{batch}\r\nContent-Type: multipart/mixed; boundary={changeset}\r\n\r\n"
        f"{parts}--{changeset}--\r\n--{batch}--\r\n"
    )
    request = HttpRequest(
        "POST", f"{host}/$batch", content=body.encode("utf-8"),
        headers={"Content-Type": f"multipart/mixed; boundary={batch}", "Accept": "application/json",
                 "DataServiceVersion": "3.0", "MaxDataServiceVersion": "3.0;NetFx",
                 "x-ms-version": client.api_version},
    )  # fmt: skip
    response = client._client.send_request(request, stream=True)  # the client's pipeline: auth, retries
    answer = response.read()
    if response.status_code != 202:
        raise HttpResponseError(message=f"table transaction answered {response.status_code}", response=response)
    statuses = [int(s) for s in _STATUS.findall(answer)]
    if len(statuses) != len(ops) or any(not 200 <= s < 300 for s in statuses):
        raise HttpResponseError(message=f"table transaction failed: {answer[:500]!r}", response=response)
    return [{"etag": _etag(chunk)} for chunk in _STATUS.split(answer)[2::2]]


def _etag(chunk: bytes) -> str | None:
    head = chunk.split(b"\r\n\r\n", 1)[0]
    found = _ETAG.search(head)
    return found.group(1).decode() if found else None
