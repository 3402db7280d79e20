"""Secrets canary (DESIGN invariant 9): a recognisable client secret, bearer token and
message signing key go through succeeding and failing syncs and appear in no log record,
exception, failure entry, run, status report or span."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import httpx
from azure.core.credentials import TokenCredential

from p2c_core import runtime as runtime_module
from p2c_core.errors import SettingsError
from p2c_core.runtime import Runtime
from p2c_core.settings import Settings, load_settings
from p2c_sandbox import FaultConfig, Sandbox
from p2c_sandbox.tls import self_signed

from .conftest import E2E, SPANS

SECRET = "CANARY-SECRET-7f3a9c1e"
TOKEN = "CANARY-TOKEN-b8d24e6f"


@dataclass
class Token:
    token: str
    expires_on: int


class CanaryCredential:
    def get_token(self, *scopes: str, **kw: object) -> Token:
        return Token(TOKEN, int(time.time()) + 3600)


SIGNING_KEY = "CANARY-SIGNING-KEY-5d0c7a91e2b34f68"


def leaks(text: object) -> bool:
    s = str(text)
    return SECRET in s or TOKEN in s or SIGNING_KEY in s


def test_no_secret_or_token_anywhere(e2e: E2E, monkeypatch, caplog, otel, tmp_path):
    caplog.set_level(logging.DEBUG)
    SPANS.clear()
    # A token goes over https only, so this sandbox serves https (issue 21); httpx trusts its certificate.
    tls = self_signed(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.cert))
    with Sandbox(data_dir=None, fno_company="usmf", tls=tls) as sb:
        settings = load_settings(
            dataverse_url=sb.dataverse_url, fno_url=sb.fno_url, auth_mode="azure", tenant_id="t", client_id="c",
            client_secret=SECRET, message_signing_key=SIGNING_KEY,
        )  # fmt: skip
        credential = cast(TokenCredential, CanaryCredential())
        rt = Runtime(settings=settings, storage=e2e.runtime.storage, credential=credential)
        monkeypatch.setattr(runtime_module, "_runtime", rt)
        errors = sync_through_faults(e2e, sb)
        rt.close()
    assert_nothing_leaks(rt, settings, errors, caplog)


def sync_through_faults(e2e: E2E, sb: Sandbox) -> list[BaseException]:
    """A succeeding sync, then failing ones: injected faults, failed records, a bad setting."""
    errors: list[BaseException] = []
    e2e.sync("accounts")
    sb.set_faults(FaultConfig(seed=5, error_rate=0.5, statuses={500: 1.0, 401: 1.0}))
    try:
        with httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/") as dv:  # trusts SSL_CERT_FILE
            dv.patch(
                "accounts(accountnumber='ACC-01000-SHCZXA')", json={"name": "Canary Co"}, headers={"If-Match": "*"}
            )
        e2e.sync("accounts")
    except Exception as exc:  # whatever surfaces, it is checked below
        errors.append(exc)
    sb.set_faults(FaultConfig())
    try:
        load_settings(auth_mode="azure", client_secret=SECRET, message_signing_key=SIGNING_KEY, page_size="lots")
    except SettingsError as exc:
        errors.append(exc)
    return errors


def assert_nothing_leaks(rt: Runtime, settings: Settings, errors: list[BaseException], caplog) -> None:
    assert errors, "a failing path was exercised"
    # the token really was sent
    assert rt.dataverse.odata._http.auth is not None
    for record in caplog.records:
        assert not leaks(record.getMessage()) and not leaks(record.__dict__), record.getMessage()
    for exc in errors:
        assert not leaks(exc) and not leaks(repr(exc))
    for failure in rt.state.failures():
        assert not any(leaks(v) for v in vars(failure).values())
    for run in rt.state.runs("accounts"):
        assert not any(leaks(v) for v in vars(run).values())
    from p2c_core import ops

    assert not leaks(json.dumps(ops.status(rt), default=str))
    spans: list[Any] = list(SPANS.get_finished_spans())
    assert spans
    for span in spans:
        assert not leaks(span.name) and not leaks(dict(span.attributes or {}))
        assert not any(leaks(e.attributes) for e in span.events)
    assert not leaks(repr(settings)) and not leaks(settings.model_dump())
