"""p2c_sandbox: local Dataverse and F&O servers with seeded demo data (not deployed).

with Sandbox() as sb:            # free loopback ports, in-memory data
    sb.dataverse_url, sb.fno_url
with Sandbox(tls=self_signed(tmp)) as sb:   # the same over HTTPS (p2c_sandbox.tls)
with Sandbox(p2c_solution=False) as sb:      # an org without Microsoft's P2C solution (p2c_sandbox.solution)
with Sandbox(companies=Companies.BUSINESS_UNITS) as sb:  # German Sales rows of Contoso DE too (seed_sales_companies)
with Sandbox(companies=Companies.DUAL_WRITE) as sb:      # and dual-write's cdm_company table and msdyn_company
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

from p2c_sandbox import organization
from p2c_sandbox.dataverse import DataverseService
from p2c_sandbox.faults import FaultConfig
from p2c_sandbox.fno import FnoService
from p2c_sandbox.seed_options import Companies
from p2c_sandbox.server import BackgroundServer
from p2c_sandbox.store import Store
from p2c_sandbox.tls import TlsFiles

__all__ = ["Companies", "FaultConfig", "Sandbox", "TlsFiles", "serve"]


class _Rows:
    def __init__(self, store: Store) -> None:
        self.store = store

    def rows(self, entity_set: str) -> list[dict[str, Any]]:
        """Every stored row of an entity set (all companies), for tests."""
        return [row for _, row in self.store.scan(entity_set)]


class Sandbox:
    def __init__(
        self,
        data_dir: Path | None = None,
        *,
        seed: bool = True,
        dataverse_port: int = 0,
        fno_port: int = 0,
        fno_company: str = "usmf",
        fno_page_size: int = 10_000,
        delta_retention_days: float = 30.0,
        tls: TlsFiles | None = None,
        p2c_solution: bool = True,
        companies: Companies = Companies.ONE,
    ) -> None:
        self.data_dir = data_dir
        self.dataverse_store = Store(data_dir / "dataverse.sqlite" if data_dir else None)
        self.fno_store = Store(data_dir / "fno.sqlite" if data_dir else None)
        self.dataverse_service = DataverseService(
            self.dataverse_store,
            delta_retention_days=delta_retention_days,
            p2c_solution=p2c_solution,
            dual_write=companies == Companies.DUAL_WRITE,
        )
        self.fno_service = FnoService(self.fno_store, company=fno_company, page_size=fno_page_size)
        fresh = self.dataverse_store.is_empty() and self.fno_store.is_empty()
        if next(self.dataverse_store.scan("businessunits"), None) is None:
            # An org's root business unit and its user, seeded or not (also into a data dir of before).
            organization.install(self.dataverse_service)
        if seed and fresh:
            from p2c_sandbox.seed import seed as seed_demo

            seed_demo(self.dataverse_service, self.fno_service, companies=companies)
        self.dataverse = _Rows(self.dataverse_store)
        self.fno = _Rows(self.fno_store)
        self._servers = (
            BackgroundServer(self.dataverse_service.app(), dataverse_port, tls=tls),
            BackgroundServer(self.fno_service.app(), fno_port, tls=tls),
        )

    @property
    def dataverse_url(self) -> str:
        return self._servers[0].url

    @property
    def fno_url(self) -> str:
        return self._servers[1].url

    def set_faults(self, config: FaultConfig) -> None:
        """Inject faults into both services (F&O draws from seed + 1, so they differ)."""
        self.dataverse_service.faults.configure(config)
        self.fno_service.faults.configure(dataclasses.replace(config, seed=config.seed + 1))

    def start(self) -> Sandbox:
        for server in self._servers:
            server.start()
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.stop()
        self.dataverse_service.push.sender.stop()
        self.fno_service.push.sender.stop()
        self.dataverse_service.plugins.close()
        self.dataverse_store.close()
        self.fno_store.close()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object | TracebackType) -> None:
        self.stop()


def serve(
    dataverse_port: int = 0,
    fno_port: int = 0,
    data_dir: Path | None = None,
    accounts: int = 0,
    products: int = 0,
    companies: Companies = Companies.ONE,
) -> None:
    """Serve both services until Ctrl-C (or SIGTERM), printing their URLs."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sandbox = Sandbox(data_dir, dataverse_port=dataverse_port, fno_port=fno_port, companies=companies)
    if accounts:
        from p2c_sandbox.volume import generate_accounts

        print(f"Adding {accounts:,} accounts ...", flush=True)
        generate_accounts(sandbox.dataverse_service, accounts)
    if products:
        from p2c_sandbox.volume import generate_products

        print(f"Adding {products:,} released products ...", flush=True)
        generate_products(sandbox.fno_service, products)
    with sandbox as sb:
        # The roots, as the settings take them: pasting an OData URL would address /data/data.
        print(f"P2C_DATAVERSE_URL={sb.dataverse_url}  (Web API under /api/data/v9.2/)", flush=True)
        print(f"P2C_FNO_URL={sb.fno_url}  (OData under /data/)", flush=True)
        print("Ctrl-C to stop.", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
