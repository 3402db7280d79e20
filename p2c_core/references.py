"""Resolving references before a write: customers, products, units, currencies, price lists.

The mapper leaves each reference as a `Reference` (a natural key); its rule decides what the
target takes (`rules.Ref.resolve`, ...). This is the `Resolver` the rules look things up
with: the key maps of other flows, F&O records by key, Sales rows by a column, price lists.
A reference not there yet raises DependencyMissing from the rule: the record waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cachetools import TTLCache

from p2c_core.clients.dataverse import DataverseClient
from p2c_core.clients.fno import FnoClient
from p2c_core.clients.keys import id_column, literal
from p2c_core.company_refs import scoped_row_id
from p2c_core.errors import DependencyMissing, MappingError
from p2c_core.flights import SingleFlight
from p2c_core.flow import Dataverse, Endpoint, FinOps, Flow
from p2c_core.rules import Reference, Resolver
from p2c_core.shared_refs import SharedRefs
from p2c_core.state import KeyMapEntry

# Found references are remembered this long (per process, and in the shared table of
# shared_refs.py for reference data); missing ones never are.
TTL_SECONDS = 900.0
MAX_REMEMBERED = 100_000


@dataclass(frozen=True)
class CompanyScope:
    """Where one company's references are found (P2C_COMPANIES): its F&O client, the key
    its records have in the key maps, and its price list map (docs/companies.md)."""

    company: str
    fno: FnoClient
    stored_key: Callable[[str], str]
    price_lists: Callable[[], Mapping[str, str] | None]
    # The default company (P2C_FNO_COMPANY): key map entries without a company are its own.
    default: bool = False


class References:
    """Resolves a payload's references; the narrow dependencies are given, not a runtime."""

    def __init__(
        self,
        *,
        dataverse: DataverseClient,
        fno: FnoClient,
        entry: Callable[[str, str], KeyMapEntry | None],
        flow: Callable[[str], Flow],
        price_lists: Callable[[], Mapping[str, str] | None],
        ttl_seconds: float = TTL_SECONDS,
        scope: Callable[[str], CompanyScope] | None = None,
        shared: SharedRefs | None = None,
    ) -> None:
        self.dataverse = dataverse
        self.fno = fno
        self._entry = entry
        self._flow = flow
        self._price_lists = price_lists
        self._scope = scope
        self._ttl = ttl_seconds
        # key -> (what was found, until when: wall clock, as the shared table's times)
        self._found = TTLCache[tuple[str, ...], tuple[Any, float]](maxsize=MAX_REMEMBERED, ttl=ttl_seconds)
        self._lock = threading.Lock()
        self._flights = SingleFlight()
        self._shared = shared
        self._reference_data: dict[str, bool] = {}

    def resolve(self, flow: Flow, payload: Mapping[str, Any], company: str | None = None) -> dict[str, Any]:
        """The payload with every Reference replaced by what the target takes, looked up
        within the record's company (None: the default company)."""
        out: dict[str, Any] = {}
        service = flow.target.service
        resolver = self.within(company)
        for name, value in payload.items():
            if isinstance(value, Reference):
                out.update(value.rule.resolve(name, value.value, resolver, service))
            else:
                out[name] = value
        return out

    def within(self, company: str | None) -> Resolver:
        """The Resolver of one company's records (None: the default company's, as with one)."""
        return self if company is None or self._scope is None else _Scoped(self, self._scope(company))

    def _cached(self, key: tuple[str, ...], find: Callable[[], Any], *, shared: bool = False) -> Any:
        """`find()` once per TTL, once for concurrent callers of one key (flights.py); a None
        (not there) is asked again next time. `shared`: a Sales id other instances may have
        found (shared_refs.py)."""
        hit = self._remembered(key)
        if hit is not None:
            return hit[0]

        def once() -> Any:
            hit = self._remembered(key)  # found by a flight that ended just before this one
            if hit is not None:
                return hit[0]
            if shared and self._shared is not None:
                found = self._shared.lookup(key, find)
                value, at = found.id, found.at
            else:
                value, at = find(), time.time()
            if value is not None:
                with self._lock:
                    self._found[key] = (value, at + self._ttl)
            return value

        return self._flights.run(key, once)

    def _remembered(self, key: tuple[str, ...]) -> tuple[Any] | None:
        with self._lock:
            hit = self._found.get(key)
        return (hit[0],) if hit is not None and hit[1] > time.time() else None

    def forget_id(self, guid: str) -> None:
        """A Sales id a write found missing (a bound row deleted in Sales, targets.py): the
        references that led to it are looked up afresh, here and in the shared table."""
        wanted = guid.lower()
        with self._lock:
            keys = [k for k, (v, _) in self._found.items() if isinstance(v, str) and v.lower() == wanted]
            for key in keys:
                self._found.pop(key, None)
        for key in keys:
            if self._shared is not None:
                self._shared.forget(key)

    def is_reference_data(self, entity_set: str) -> bool:
        """Rows no flow reads or writes (currencies, units, unit groups, price lists): the
        org's, not per record, so shared by every instance (shared_refs.py)."""
        known = self._reference_data.get(entity_set)
        if known is None:
            from p2c_core.flows import all_flows

            synced = {e.entity_set for f in all_flows() for e in (f.source, f.target) if isinstance(e, Dataverse)}
            known = self._reference_data[entity_set] = entity_set not in synced
        return known

    # --- the Resolver protocol (p2c_core.rules) -------------------------------------

    def fno_record(self, flows: Sequence[str], key: str, returns: str | None) -> tuple[bool, Any]:
        return self.fno_record_in(self.fno, lambda k: k, flows, key, returns)

    def fno_record_in(
        self, fno: FnoClient, stored_key: Callable[[str], str], flows: Sequence[str], key: str, returns: str | None
    ) -> tuple[bool, Any]:
        """`fno_record` in one company: its client, and its records' key map keys."""
        found = self._cached(
            ("fno", fno.company, *flows, str(returns), key),
            lambda: self._fno_record(fno, stored_key, flows, key, returns),
        )
        return (True, found[0]) if found is not None else (False, None)

    def _fno_record(
        self, fno: FnoClient, stored_key: Callable[[str], str], flows: Sequence[str], key: str, returns: str | None
    ) -> tuple[Any] | None:
        if returns is None:
            for name in flows:
                entry = self._entry(name, stored_key(key))
                if entry is not None and entry.version >= 0:
                    return (key,)
        for endpoint in _endpoints([self._flow(n) for n in flows], "fno"):
            assert isinstance(endpoint, FinOps)
            select = [endpoint.key] + ([returns] if returns else [])
            row = fno.get(endpoint.entity_set, fno.key(**{endpoint.key: key}), select=select)
            if row is not None:
                return (row.get(returns) if returns else key,)
        return None

    def entry(self, flow: str, key: str) -> KeyMapEntry | None:
        return self._entry(flow, key)

    def dataverse_tables(self, flows: Sequence[str]) -> list[tuple[str, str]]:
        return [(ep.entity_set, ep.key) for ep in _endpoints([self._flow(n) for n in flows], "dataverse")]

    def row_id(self, entity_set: str, column: str, value: Any) -> str | None:
        return self._cached(
            ("dataverse", entity_set, column, str(value)),
            lambda: self._row_id(entity_set, column, value),
            shared=self.is_reference_data(entity_set),
        )

    def _row_id(self, entity_set: str, column: str, value: Any) -> str | None:
        pk = id_column(entity_set)
        for page in self.dataverse.query(entity_set, select=[pk], filter=f"{column} eq {literal(value)}"):
            for row in page.rows:
                return row[pk]
        return None

    def price_list(self, currency: str) -> str:
        return self.price_list_in(self._price_lists(), currency)

    def price_list_in(self, price_lists: Mapping[str, str] | None, currency: str) -> str:
        """The `price_list` map's price list for the currency, else the first active one in it by name."""
        name = (price_lists or {}).get(currency)
        if name is not None:
            guid = self.row_id("pricelevels", "name", name)
            if guid is None:
                raise DependencyMissing(f"price list {name!r} (price_list map, currency {currency}) is not in Sales")
            return guid
        guid = self._cached(("pricelist", currency), lambda: self._first_price_list(currency), shared=True)
        if guid is None:
            # Price lists are set up by people, not synced: waiting would not bring one (FLOWS.md).
            raise MappingError(
                f"no active price list in currency {currency} in Sales (or set P2C_VALUE_MAPS__PRICE_LIST)"
            )
        return guid

    def _first_price_list(self, currency: str) -> str | None:
        currency_id = self.row_id("transactioncurrencies", "isocurrencycode", currency)
        if currency_id is None:
            return None
        where = f"_transactioncurrencyid_value eq {currency_id} and statecode eq 0"
        pages = self.dataverse.query("pricelevels", select=["pricelevelid", "name"], filter=where)
        rows = [r for page in pages for r in page.rows]
        return min(rows, key=lambda r: str(r.get("name") or ""))["pricelevelid"] if rows else None


@dataclass(frozen=True)
class _Scoped:
    """The Resolver of one company's records: F&O records and price lists of that company."""

    refs: References
    scope: CompanyScope

    def fno_record(self, flows: Sequence[str], key: str, returns: str | None) -> tuple[bool, Any]:
        return self.refs.fno_record_in(self.scope.fno, self.scope.stored_key, flows, key, returns)

    def dataverse_tables(self, flows: Sequence[str]) -> list[tuple[str, str]]:
        return self.refs.dataverse_tables(flows)

    def row_id(self, entity_set: str, column: str, value: Any) -> str | None:
        # A customer within the record's company (company_refs.py); reference data as before.
        scope = self.scope
        return scoped_row_id(
            self.refs.entry, scope.stored_key, scope.default, self.refs.row_id, entity_set, column, value
        )

    def price_list(self, currency: str) -> str:
        return self.refs.price_list_in(self.scope.price_lists(), currency)


def _endpoints(flows: list[Flow], service: str) -> list[Endpoint]:
    """Where the referenced flows' records live in `service`: each flow's target or source there."""
    out: dict[str, Endpoint] = {}
    for f in flows:
        for endpoint in (f.target, f.source):
            if endpoint.service == service:
                out.setdefault(endpoint.entity_set, endpoint)
                break
    return list(out.values())
