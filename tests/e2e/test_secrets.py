"""Secrets canary (DESIGN invariant 9): a recognisable client secret and bearer token go
through succeeding and failing syncs and appear in no log record, exception, failure entry
or span."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, cast

from azure.core.credentials import TokenCredential

from p2c_core import runtime as runtime_module
from p2c_core.errors import SettingsError
from p2c_core.runtime import Runtime
from p2c_core.settings import load_settings
from p2c_sandbox import FaultConfig

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


def leaks(text: object) -> bool:
    s = str(text)
    return SECRET in s or TOKEN in s


def test_no_secret_or_token_anywhere(e2e: E2E, monkeypatch, caplog, otel):
    caplog.set_level(logging.DEBUG)
    SPANS.clear()
    settings = load_settings(auth_mode="azure", tenant_id="t", client_id="c", client_secret=SECRET)
    rt = Runtime(settings=settings, storage=e2e.runtime.storage, credential=cast(TokenCredential, CanaryCredential()))
    monkeypatch.setattr(runtime_module, "_runtime", rt)
    errors: list[BaseException] = []
    # a succeeding sync, then failing ones: injected faults, failed records, a bad setting
    e2e.sync("accounts")
    e2e.sandbox.set_faults(FaultConfig(seed=5, error_rate=0.5, statuses={500: 1.0, 401: 1.0}))
    try:
        with e2e.dataverse() as dv:
            dv.patch(
                "accounts(accountnumber='ACC-01000-SHCZXA')", json={"name": "Canary Co"}, headers={"If-Match": "*"}
            )
        e2e.sync("accounts")
    except Exception as exc:  # whatever surfaces, it is checked below
        errors.append(exc)
    e2e.sandbox.set_faults(FaultConfig())
    try:
        load_settings(auth_mode="azure", client_secret=SECRET, page_size="lots")
    except SettingsError as exc:
        errors.append(exc)
    assert errors, "a failing path was exercised"
    # the token really was sent
    assert rt.dataverse.odata._http.auth is not None
    for record in caplog.records:
        assert not leaks(record.getMessage()) and not leaks(record.__dict__), record.getMessage()
    for exc in errors:
        assert not leaks(exc) and not leaks(repr(exc))
    for failure in rt.state.failures():
        assert not any(leaks(v) for v in vars(failure).values())
    spans: list[Any] = list(SPANS.get_finished_spans())
    assert spans
    for span in spans:
        assert not leaks(span.name) and not leaks(dict(span.attributes or {}))
        assert not any(leaks(e.attributes) for e in span.events)
    assert not leaks(repr(settings)) and not leaks(settings.model_dump())
