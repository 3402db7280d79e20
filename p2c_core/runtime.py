"""Per-process wiring: settings, storage, clients; built once, on first use.

The Functions host keeps a worker process warm between invocations, so clients and
their connection pools and token caches are reused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from azure.core.credentials import TokenCredential

from p2c_core import memory
from p2c_core.clients import auth
from p2c_core.clients.dataverse import PROFILE as DATAVERSE
from p2c_core.clients.dataverse import DataverseClient
from p2c_core.clients.fno import PROFILE as FNO
from p2c_core.clients.fno import FnoClient
from p2c_core.clients.odata import ODataClient, RetryPolicy
from p2c_core.companies import Companies
from p2c_core.flow import Flow
from p2c_core.mapping import Mapper
from p2c_core.owners import OwnerTeams
from p2c_core.references import CompanyScope, References
from p2c_core.settings import Settings, get_settings
from p2c_core.shared_refs import TABLE as REFS_TABLE
from p2c_core.shared_refs import SharedRefs
from p2c_core.sources import ChangeReader, DataverseChanges, FnoChanges, LookupResolver
from p2c_core.state import StateStore
from p2c_core.state.storage import Storage, connect
from p2c_core.state.tables import table
from p2c_core.targets import DataverseWriter, FnoWriter, TargetWriter

if TYPE_CHECKING:
    from p2c_core.versions import VersionBounds


@dataclass
class Runtime:
    settings: Settings
    storage: Storage
    credential: TokenCredential | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _fno_clients: dict[str, FnoClient] = field(default_factory=dict)

    def _odata(self, profile: object, url: str) -> ODataClient:
        from p2c_core.clients.odata import ServiceProfile

        assert isinstance(profile, ServiceProfile)
        made = auth.make_auth(self.settings, url, self.credential)
        identities = None
        if profile.name == DATAVERSE.name:  # paced by its budgets, shared with other instances
            from p2c_core.clients.pool import dataverse_identities

            identities = dataverse_identities(self.settings, url, made, self._lease_table)
        return ODataClient(
            profile,
            url,
            auth=made,
            timeout=self.settings.http_timeout_seconds,
            retry=RetryPolicy(max_retries=self.settings.http_max_retries),
            identities=identities,
        )

    def _lease_table(self) -> Any:
        """The pacing lease table (clients/peers.py), created on first use."""
        from p2c_core.clients.peers import TABLE

        return table(self.storage, TABLE)

    @cached_property
    def state(self) -> StateStore:
        return StateStore(self.storage)

    @cached_property
    def dataverse(self) -> DataverseClient:
        return DataverseClient(self._odata(DATAVERSE, self.settings.dataverse_url), page_size=self.settings.page_size)

    @cached_property
    def fno(self) -> FnoClient:
        """The default company's client (P2C_FNO_COMPANY)."""
        return self.fno_for(None)

    @cached_property
    def companies(self) -> Companies:
        return self.settings.company_map()

    def fno_for(self, company: str | None) -> FnoClient:
        """The F&O client of one legal entity (None: the default company). One HTTP client
        (its pool, its token) serves every company; only `dataAreaId` differs."""
        name = (company or self.settings.fno_company).lower()
        with self._lock:
            client = self._fno_clients.get(name)
            if client is None:
                shared = next(iter(self._fno_clients.values()), None)
                odata = shared.odata if shared is not None else self._odata(FNO, self.settings.fno_url)
                client = self._fno_clients[name] = FnoClient(odata, company=name)
        return client

    @cached_property
    def signing_key(self) -> bytes:
        from p2c_core import signing

        return signing.key_bytes(self.settings.message_signing_key)

    @cached_property
    def versions(self) -> VersionBounds:
        from p2c_core.versions import VersionBounds

        return VersionBounds(self.storage, lambda: self.dataverse)

    @cached_property
    def lookups(self) -> LookupResolver:
        return LookupResolver(self.dataverse)

    @cached_property
    def owners(self) -> OwnerTeams:
        return OwnerTeams(self.dataverse, self.companies)

    @cached_property
    def mapper(self) -> Mapper:
        return Mapper(self.settings)

    @cached_property
    def references(self) -> References:
        return References(
            dataverse=self.dataverse,
            fno=self.fno,
            entry=self.state.get_entry,
            flow=self.flow,
            price_lists=lambda: self.mapper.table("price_list"),
            scope=self.company_scope,
            shared=self.shared_refs,
        )

    @cached_property
    def shared_refs(self) -> SharedRefs:
        """Reference ids found in Sales, shared with the other instances (shared_refs.py)."""
        return SharedRefs(lambda: table(self.storage, REFS_TABLE), self.settings.dataverse_url)

    def company_scope(self, company: str) -> CompanyScope:
        """Where references of one company's records are found (references.py)."""
        return CompanyScope(
            company=company,
            fno=self.fno_for(company),
            stored_key=lambda key: self.companies.qualified(company, key),
            price_lists=lambda: self.mapper.table("price_list", company),
            default=company == self.settings.fno_company,
        )

    def flow(self, name: str) -> Flow:
        """A registered flow as this deployment runs it: with its mapping overlay applied."""
        from p2c_core import routing
        from p2c_core.flows import get_flow

        return routing.reading(self.settings.overlay().apply(get_flow(name)), self.companies)

    def company_flow(self, flow: Flow, company: str | None) -> Flow:
        """The flow as one company's records are mapped: with the overlay's changes for
        that company (None: the default company)."""
        return self.settings.overlay().apply_for(flow, company or self.settings.fno_company)

    def company_columns(self, flow: Flow) -> list[str]:
        """Source columns that only some company's overlay changes read (one read serves all)."""
        overlay = self.settings.overlay()
        base = set(flow.source_columns())
        extra = [c for company in overlay.companies for c in self.company_flow(flow, company).source_columns()]
        return [c for c in dict.fromkeys(extra) if c not in base]

    def reader(self, flow: Flow) -> ChangeReader:
        if flow.source.service == "dataverse":
            return DataverseChanges(self.dataverse, flow, self.lookups, extra=self.company_columns(flow))
        gone = self.settings.flow(flow.name).on_delete == "deactivate"
        return FnoChanges(self.fno, flow, self.state, find_gone=gone, window=self.settings.fno_scan_window)

    def writer(self, flow: Flow, company: str | None = None) -> TargetWriter:
        """The flow's writer; F&O targets in `company` (None: the default company)."""
        if flow.target.service == "fno":
            return FnoWriter(self.fno_for(company), flow)
        return DataverseWriter(self.dataverse, flow, gone=self.references.forget_id)

    def close(self) -> None:
        client = self.__dict__.get("dataverse")
        if client is not None:
            client.odata.close()
        for fno in self._fno_clients.values():
            fno.odata.close()  # one shared client: closing it twice is harmless


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            # Before the first page is read: see memory.py for why peak RSS needs it.
            memory.return_big_buffers()
            _runtime = Runtime(settings=get_settings(), storage=connect())
        return _runtime


def reset_runtime() -> None:
    """Forget settings and clients (tests, the demo between environments)."""
    global _runtime
    with _runtime_lock:
        if _runtime is not None:
            _runtime.close()
        _runtime = None
    get_settings.cache_clear()
