"""A whole local environment: Azurite + the sandbox + the registered functions."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from p2c_cli.azurite import Azurite

if TYPE_CHECKING:
    from p2c_cli.host import FlowProgress, LocalHost
    from p2c_core.runtime import Runtime
    from p2c_sandbox import Sandbox

COMPANY = "usmf"
# The demo's two legal entities, recognised by the business unit that owns a Sales row
# (P2C_COMPANIES, docs/companies.md); the sandbox seeds both (`Sandbox(companies=...)`).
TWO_COMPANIES = {"usmf": {"business_unit": "Contoso US"}, "demf": {"business_unit": "Contoso DE"}}


# The sandbox's F&O codes for the Sales choices its demo data uses (as in local.settings.sample.json).
DEMO_VALUE_MAPS = {
    "P2C_VALUE_MAPS__PAYMENT_TERMS": '{"1": "Net30", "2": "Net10", "3": "Net45", "4": "Net60"}',
    "P2C_VALUE_MAPS__FREIGHT_TERMS": '{"1": "FOB", "2": "NoCharge"}',
    "P2C_VALUE_MAPS__UNIT": '{"ea": "Primary Unit", "hr": "Hour"}',
    "P2C_VALUE_MAPS__SHIPPING_METHOD": (
        '{"1": "Air", "2": "DHL", "3": "FedEx", "4": "UPS", "5": "Postal", "6": "Truck", "7": "WillCall"}'
    ),
}


def sandbox_env(
    connection_string: str,
    dataverse_url: str,
    fno_url: str,
    signing_key: str | None = None,
    *,
    companies: dict[str, dict[str, str]] | None = None,
) -> dict[str, str]:
    """Settings that point the app at a local sandbox and Azurite (a new signing key if none);
    `companies`: P2C_COMPANIES too (without it: the one company, P2C_FNO_COMPANY)."""
    return {
        "AzureWebJobsStorage": connection_string,
        "P2C_DATAVERSE_URL": dataverse_url,
        "P2C_FNO_URL": fno_url,
        "P2C_FNO_COMPANY": COMPANY,
        **({} if companies is None else {"P2C_COMPANIES": json.dumps(companies)}),
        "P2C_AUTH_MODE": "none",
        "P2C_MESSAGE_SIGNING_KEY": signing_key or secrets.token_urlsafe(32),
        **DEMO_VALUE_MAPS,
    }


def signing_key(state_dir: Path | None) -> str | None:
    """The local environment's message signing key, kept in its state directory (0600), so
    messages queued by one run verify in the next; None (a new key) for an in-memory one."""
    if state_dir is None:
        return None
    path = state_dir / "signing.key"
    if not path.exists():
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


@dataclass
class FlowSummary:
    read: int = 0
    written: int = 0
    skipped: int = 0
    failed: int = 0


@dataclass
class Waiting:
    """A record left in its queue: it goes on in a later run, once what it waits for is there."""

    flow: str
    key: str
    waiting_for: str


@dataclass
class Summary:
    flows: dict[str, FlowSummary] = field(default_factory=dict)
    elapsed_s: float = 0.0
    waiting: list[Waiting] = field(default_factory=list)
    # Messages still queued at the end (the waiting records, or retries not due yet).
    queued: int = 0

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.flows.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "flows": {name: vars(s) for name, s in self.flows.items()},
            "elapsed_s": round(self.elapsed_s, 3),
            "waiting": [vars(w) for w in self.waiting],
            "queued": self.queued,
        }


@dataclass
class LocalEnvironment:
    azurite: Azurite
    sandbox: Sandbox
    host: LocalHost
    runtime: Runtime

    def sync(self, flow_names: list[str]) -> Summary:
        return sync(self.host, self.runtime, flow_names)


def sync(
    host: LocalHost,
    runtime: Runtime,
    flow_names: list[str],
    progress: FlowProgress | None = None,
    *,
    timeout: float = 600.0,
    settle: float = 30.0,
) -> Summary:
    """Poll and drain each flow through the registered functions; count what happened.

    Never waits for what cannot come in this run: it stops when every record left waits
    for another flow's record (or for its paused flow), and names them; `timeout` bounds
    each drain, `settle` how long it waits for a delayed message to come due (both leave
    what is not done queued, for a later run).
    """
    from p2c_core.waiting import watching

    started = datetime.now(UTC)
    t0 = time.monotonic()
    with watching() as watch:
        queued = host.run_flows(flow_names, progress, timeout=timeout, watch=watch, settle=settle)
        parked = watch.parked()
    summary = Summary(elapsed_s=time.monotonic() - t0, queued=queued)
    summary.waiting = [Waiting(p.flow, p.key, p.waiting_for) for p in sorted(parked, key=lambda p: (p.flow, p.key))]
    for name in flow_names:
        s = summary.flows[name] = FlowSummary()
        for run in runtime.state.runs(name, since=started):
            s.read += run.counts.get("read", 0)
            s.written += run.counts.get("written", 0)
            s.skipped += run.counts.get("skipped", 0)
            s.failed += run.counts.get("failed", 0)
    return summary


@contextmanager
def local_environment(
    state_dir: Path | None, *, lease_seconds: float = 60.0, companies: dict[str, dict[str, str]] | None = None
) -> Iterator[LocalEnvironment]:
    """Start Azurite and the sandbox (persisted under state_dir, or in memory), wire the app.
    `companies`: several legal entities (TWO_COMPANIES), the sandbox seeded with the Sales
    rows of each business unit; without it, one company as always."""
    from p2c_cli.host import LocalHost
    from p2c_core.runtime import get_runtime, reset_runtime
    from p2c_sandbox import Sandbox
    from p2c_sandbox.seed_options import Companies

    azurite = Azurite(state_dir / "azurite" if state_dir else None)
    seeded = Companies.ONE if companies is None else Companies.BUSINESS_UNITS
    sandbox = Sandbox(data_dir=state_dir / "sandbox" if state_dir else None, fno_company=COMPANY, companies=seeded)
    saved = dict(os.environ)
    azurite.start()
    try:
        sandbox.start()
        try:
            key = signing_key(state_dir)
            urls = (azurite.connection_string, sandbox.dataverse_url, sandbox.fno_url)
            os.environ.update(sandbox_env(*urls, key, companies=companies))
            reset_runtime()
            import function_app

            runtime = get_runtime()
            host = LocalHost(function_app.app, runtime.storage, lease_seconds=lease_seconds)
            try:
                yield LocalEnvironment(azurite, sandbox, host, runtime)
            finally:
                host.close()
                reset_runtime()
        finally:
            sandbox.stop()
    finally:
        azurite.stop()
        os.environ.clear()
        os.environ.update(saved)
