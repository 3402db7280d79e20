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
from p2c_core.flow import Flow
from p2c_core.mapping import Mapper
from p2c_core.references import References
from p2c_core.settings import Settings, get_settings
from p2c_core.sources import ChangeReader, DataverseChanges, FnoChanges, LookupResolver
from p2c_core.state import StateStore
from p2c_core.state.storage import Storage, connect
from p2c_core.targets import DataverseWriter, FnoWriter, TargetWriter

if TYPE_CHECKING:
    from p2c_core.versions import VersionBounds


@dataclass
class Runtime:
    settings: Settings
    storage: Storage
    credential: TokenCredential | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

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

        if TABLE not in self.storage.created_tables:
            self.storage.tables.create_table_if_not_exists(TABLE)
            self.storage.created_tables.add(TABLE)
        return self.storage.table(TABLE)

    @cached_property
    def state(self) -> StateStore:
        return StateStore(self.storage)

    @cached_property
    def dataverse(self) -> DataverseClient:
        return DataverseClient(self._odata(DATAVERSE, self.settings.dataverse_url), page_size=self.settings.page_size)

    @cached_property
    def fno(self) -> FnoClient:
        return FnoClient(self._odata(FNO, self.settings.fno_url), company=self.settings.fno_company)

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
        )

    def flow(self, name: str) -> Flow:
        """A registered flow as this deployment runs it: with its mapping overlay applied."""
        from p2c_core.flows import get_flow

        return self.settings.overlay().apply(get_flow(name))

    def reader(self, flow: Flow) -> ChangeReader:
        if flow.source.service == "dataverse":
            return DataverseChanges(self.dataverse, flow, self.lookups)
        gone = self.settings.flow(flow.name).on_delete == "deactivate"
        return FnoChanges(self.fno, flow, self.state, find_gone=gone)

    def writer(self, flow: Flow) -> TargetWriter:
        if flow.target.service == "fno":
            return FnoWriter(self.fno, flow)
        return DataverseWriter(self.dataverse, flow)

    def close(self) -> None:
        for name in ("dataverse", "fno"):
            client = self.__dict__.get(name)
            if client is not None:
                client.odata.close()


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
