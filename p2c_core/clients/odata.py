"""One OData v4 client on httpx for both services: paging, typed errors, bounded retries.

Dataverse and F&O differ only in root path, headers and request-id header; their thin
layers live in `dataverse.py` and `fno.py`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from p2c_core import telemetry
from p2c_core.clients import batch
from p2c_core.clients.concurrency import AdaptiveLimit
from p2c_core.clients.identities import Identities, Identity
from p2c_core.clients.origin import ForeignOriginError, Origin, is_absolute
from p2c_core.clients.retry import Backoff, parse_retry_after
from p2c_core.errors import (
    ConflictError,
    NotFoundError,
    ODataError,
    PermanentError,
    PreconditionFailedError,
    ThrottledError,
    TransientError,
)

log = logging.getLogger("p2c.odata")

Row = dict[str, Any]


@dataclass
class Page:
    rows: list[Row]
    next_link: str | None = None
    delta_link: str | None = None


@dataclass
class ServiceProfile:
    """What differs between the two services at the HTTP level."""

    name: str
    root_path: str
    headers: Mapping[str, str]
    request_id_headers: tuple[str, ...]
    # Requests in flight at most, per worker process (the service's own cap).
    max_concurrency: int = 32


@dataclass
class RetryPolicy:
    max_retries: int = 3
    backoff: Backoff = field(default_factory=Backoff)
    # Longer waits are not slept in-process: the error goes up and the engine
    # re-enqueues the record with that delay instead of holding a worker.
    max_inline_wait: float = 30.0


class ODataClient:
    def __init__(
        self,
        profile: ServiceProfile,
        base_url: str,
        *,
        auth: httpx.Auth | None = None,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        identities: Identities | None = None,
    ) -> None:
        self.profile = profile
        self.root = base_url.rstrip("/") + profile.root_path
        # Every request, and every link followed, must be of this origin (origin.py).
        self.origin = Origin.of(self.root)
        self.retry = retry or RetryPolicy()
        # Who requests go as (one, or a pool used in turn), each with its slots and pace.
        self.identities = identities or Identities([Identity("default", None, AdaptiveLimit(profile.max_concurrency))])
        self.limit = self.identities.members[0].limit
        self._sleep = sleep
        self._http = httpx.Client(
            base_url=self.root,
            auth=auth,
            timeout=timeout,
            transport=transport,
            headers=dict(profile.headers),
        )

    def close(self) -> None:
        self._http.close()

    def relative(self, link: str, *, what: str = "link") -> str:
        """A service link (nextLink, deltaLink, a stored cursor) relative to the service root.

        Cursors outlive URLs: the same org may be reached under another host name (or
        the sandbox on another port), so a stored link must not carry the host. A link of
        another origin is refused (ForeignOriginError), never kept.
        """
        if not is_absolute(link):
            return link
        self.origin.check(link, service=self.profile.name, what=what)
        parts = urlsplit(link)
        _head, sep, tail = parts.path.partition(self.profile.root_path)
        if not sep:
            return link
        return tail + (f"?{parts.query}" if parts.query else "")

    # --- requests -------------------------------------------------------------

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
    ) -> httpx.Response:
        """Send with bounded retries for transient errors; raise typed errors."""
        attempt = 0
        while True:
            attributes = {
                "http.request.method": method,
                "url.path": _path(url),
                "p2c.service": self.profile.name,
                "p2c.attempt": attempt + 1,
            }
            with telemetry.span(f"{self.profile.name} {method}", **attributes) as span:
                response, error = self._send(method, url, params, json_body, headers, content)
                if response is not None:
                    span.set_attribute("http.response.status_code", response.status_code)
                    if request_id := self.request_id(response):
                        span.set_attribute("p2c.request_id", request_id)
            if error is None:
                assert response is not None
                return response
            if isinstance(error, ThrottledError):
                telemetry.instruments().throttles.add(1, {"service": self.profile.name})
            attempt += 1
            if not error.transient or attempt > self.retry.max_retries:
                raise error
            retry_after = error.retry_after if isinstance(error, ThrottledError) else None
            if retry_after is not None and len(self.identities.members) > 1 and self.identities.held() == 0:
                retry_after = None  # Retry-After holds the member that was refused; another may go now
            delay = self.retry.backoff.delay(attempt, retry_after)
            if delay > self.retry.max_inline_wait:
                raise error
            log.info("retrying %s %s after %.2fs (%s)", method, _path(url), delay, error.error_class)
            self._sleep(delay)

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        json_body: Any,
        headers: Mapping[str, str] | None,
        content: bytes | None = None,
    ) -> tuple[httpx.Response | None, ODataError | None]:
        """One HTTP exchange: the response when it succeeded, else the typed error."""
        if (held := self.identities.held()) > self.retry.max_inline_wait:
            # Throttled for long: give the record back to its queue rather than hold a worker.
            message = f"throttled for another {held:.0f}s (Retry-After) before {method} {_path(url)}"
            return None, ThrottledError(message, retry_after=held, service=self.profile.name, status=429)
        request = self._http.build_request(method, url, params=params, json=json_body, content=content, headers=headers)
        try:
            self.origin.check(request.url, service=self.profile.name)  # before the token is added
        except ForeignOriginError as exc:
            return None, exc
        operations = _operations(content)
        try:
            with self.identities.acquire(operations) as identity:
                started = time.monotonic()
                response = self._send_as(identity, request)
                took = time.monotonic() - started
        except httpx.TimeoutException as exc:
            message = f"timed out ({type(exc).__name__}) on {method} {_path(url)}"
            return None, TransientError(message, service=self.profile.name)
        except httpx.TransportError as exc:
            message = f"connection failed ({type(exc).__name__}) on {method} {_path(url)}"
            return None, TransientError(message, service=self.profile.name)
        limit = identity.limit
        limit.answered(*_budget_left(response), took, operations)
        if response.status_code == 429:
            limit.throttled(parse_retry_after(response.headers.get("Retry-After")))
        elif response.status_code < 300:
            limit.succeeded()
            return response, None
        return response, self.error_from(response)

    def _send_as(self, identity: Identity, request: httpx.Request) -> httpx.Response:
        if identity.auth is None:
            return self._http.send(request)
        return self._http.send(request, auth=identity.auth)

    def batch(self, requests: list[batch.BatchRequest]) -> list[httpx.Response | ODataError]:
        """Send requests as one `$batch`: each answer is a response or that request's typed error.

        The batch as a whole is retried like any request (its writes are idempotent:
        upserts, and creates that turn into updates); a failure of the whole batch raises.
        """
        if not requests:
            return []
        grouped, response = self._send_batch(list(requests))
        answers = [a for answer in grouped for a in (answer if isinstance(answer, list) else [answer])]
        out: list[httpx.Response | ODataError] = []
        for i in range(len(requests)):
            if i >= len(answers):  # the service stopped early: not an answer, try again later
                out.append(TransientError("no answer in the batch response", service=self.profile.name))
                continue
            out.append(self._answer(answers[i], response))
        return out

    def changesets(self, groups: list[list[batch.BatchRequest]]) -> list[list[httpx.Response] | ODataError]:
        """Send each group as one changeset of one `$batch` (atomic: all its writes or none).

        Each group answers alone: its responses in order, or the typed error of the one
        request that rolled it back. The caller keeps the batch within MAX_BATCH_REQUESTS.
        """
        if not groups:
            return []
        answers, response = self._send_batch([batch.ChangeSet(g) for g in groups])
        out: list[list[httpx.Response] | ODataError] = []
        for i, group in enumerate(groups):
            answer = answers[i] if i < len(answers) else None
            if answer is None:
                out.append(TransientError("no answer in the batch response", service=self.profile.name))
            elif isinstance(answer, list) and len(answer) == len(group):
                for part in answer:  # all succeeded (2xx each): only the request ids to add
                    self._answer(part, response)
                out.append(answer)
            else:
                failure = answer if isinstance(answer, httpx.Response) else None
                if failure is None or failure.status_code < 300:  # a part of a changeset is no answer
                    out.append(PermanentError("a changeset answered in part", service=self.profile.name))
                    continue
                error = self._answer(failure, response)
                assert isinstance(error, ODataError)
                out.append(error)
        return out

    def _send_batch(
        self, items: list[batch.BatchRequest | batch.ChangeSet]
    ) -> tuple[list[httpx.Response | list[httpx.Response]], httpx.Response]:
        for item in items:  # parts are addressed to the root: say so, as for any request
            for part in item.requests if isinstance(item, batch.ChangeSet) else [item]:
                self.origin.check(self.root + part.url, service=self.profile.name, what="batch part")
        content_type, body = batch.encode(self.root, items)
        headers = {"Content-Type": content_type, "Prefer": "odata.continue-on-error", "Accept": "multipart/mixed"}
        response = self.request("POST", "$batch", content=body, headers=headers)
        try:
            return batch.decode_grouped(response.headers.get("content-type", ""), response.content), response
        except batch.BatchFormatError as exc:
            raise PermanentError(
                str(exc), service=self.profile.name, status=response.status_code, request_id=self.request_id(response)
            ) from None

    def _answer(self, answer: httpx.Response, batch_response: httpx.Response) -> httpx.Response | ODataError:
        if not answer.headers.get(self.profile.request_id_headers[0]) and (rid := self.request_id(batch_response)):
            answer.headers[self.profile.request_id_headers[0]] = rid  # the batch's id, to find it in logs
        if answer.status_code == 429:
            self.limit.throttled(parse_retry_after(answer.headers.get("Retry-After")))
        return answer if answer.status_code < 300 else self.error_from(answer)

    def get_json(
        self, url: str, *, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> Row:
        response = self.request("GET", url, params=params, headers=headers)
        return self.json_of(response)

    def pages(
        self, url: str, *, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[Page]:
        """Follow `@odata.nextLink` to the end; a link seen twice is an error, not a loop."""
        seen: set[str] = set()
        next_url: str | None = url
        next_params = params
        while next_url is not None:
            body = self.get_json(next_url, params=next_params, headers=headers)
            page = Page(
                rows=list(body.get("value", [])),
                next_link=body.get("@odata.nextLink"),
                delta_link=body.get("@odata.deltaLink"),
            )
            yield page
            next_link = page.next_link
            del body, page  # before the next page is read: one page in memory, not two
            if next_link is not None and next_link in seen:
                raise PermanentError(
                    "server paging loops: the same @odata.nextLink came back twice",
                    service=self.profile.name,
                )
            if next_link is not None:
                seen.add(next_link)
            next_url, next_params = next_link, None

    # --- responses ------------------------------------------------------------

    def request_id(self, response: httpx.Response) -> str | None:
        for name in self.profile.request_id_headers:
            if value := response.headers.get(name):
                return value
        return None

    def json_of(self, response: httpx.Response) -> Row:
        try:
            body = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            ctype = response.headers.get("content-type", "no content type")
            raise PermanentError(
                f"expected a JSON body, got {ctype} (HTTP {response.status_code})",
                service=self.profile.name,
                status=response.status_code,
                request_id=self.request_id(response),
            ) from None
        if not isinstance(body, dict):
            raise PermanentError("expected a JSON object", service=self.profile.name, status=response.status_code)
        return body

    def error_from(self, response: httpx.Response) -> ODataError:
        status = response.status_code
        code, message = _error_body(response)
        if 300 <= status < 400:
            # Not followed (httpx follows none by default), and not a success either: a
            # redirected write was not written, a redirected read was not read.
            message = f"HTTP {status} redirect is not followed ({message})"

        kw: dict[str, Any] = {
            "service": self.profile.name,
            "status": status,
            "code": code,
            "request_id": self.request_id(response),
        }
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        if status == 429 or (status == 503 and retry_after is not None):
            return ThrottledError(message, retry_after=retry_after or 0.0, **kw)
        if status in (408,) or status >= 500:
            return TransientError(message, **kw)
        if status == 404:
            return NotFoundError(message, **kw)
        if status == 412:
            return PreconditionFailedError(message, **kw)
        if status == 409:
            return ConflictError(message, **kw)
        return PermanentError(message, **kw)


def _error_body(response: httpx.Response) -> tuple[str | None, str]:
    """(code, message) from an OData error body, or a short description of a non-OData one."""
    try:
        body = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        ctype = response.headers.get("content-type", "no content type").split(";")[0]
        return None, f"HTTP {response.status_code} with a non-JSON body ({ctype})"
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        message = str(err.get("message") or "").strip()
        inner = err.get("innererror")
        # F&O puts the useful text in innererror ("Write failed ... already exists") under a
        # generic "An error has occurred."; its stack trace is left out.
        if isinstance(inner, dict) and inner.get("message"):
            message = str(inner["message"]).strip()
        return (str(err["code"]) if err.get("code") else None), message or "no message"
    return None, f"HTTP {response.status_code} without an OData error body"


def _budget_left(response: httpx.Response) -> tuple[float | None, int | None]:
    """Dataverse's remaining service-protection budgets (`1,199.84` seconds; requests)."""

    def number(name: str) -> float | None:
        value = response.headers.get(name)
        try:
            return float(value.replace(",", "")) if value else None
        except ValueError:
            return None

    requests = number("x-ms-ratelimit-burst-remaining-xrm-requests")
    return number("x-ms-ratelimit-time-remaining-xrm-requests"), None if requests is None else int(requests)


def _operations(content: bytes | None) -> int:
    """Requests inside a `$batch` body (what it spends of an execution-time budget); 1 otherwise."""
    if not content:
        return 1
    return max(1, content.count(b"\r\nContent-Type: application/http"))


def _path(url: str) -> str:
    """The URL without its query: enough to say what failed, nothing sensitive."""
    return url.split("?", 1)[0]
