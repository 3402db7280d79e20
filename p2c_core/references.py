"""Resolving references before a write: customers, products, units, currencies, price lists.

The mapper leaves each reference as a `Reference` (a natural key). Here it becomes what
the target takes: for F&O the key itself, once the record is known to be there (or a
property of it, such as a customer's PartyNumber); for Dataverse an `@odata.bind` to the
row's GUID. A reference not there yet raises DependencyMissing: the record waits and,
after its retries, fails naming it (DESIGN invariant 5).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from p2c_core.clients.keys import literal
from p2c_core.errors import DependencyMissing, MappingError
from p2c_core.flow import Bind, Endpoint, FinOps, Flow, PriceList, Ref, id_column
from p2c_core.mapping import Mapper, Reference

if TYPE_CHECKING:
    from p2c_core.runtime import Runtime

SERVICE_NAMES = {"dataverse": "Sales", "fno": "F&O"}


def _entity_type(entity_set: str) -> str:
    return id_column(entity_set).removesuffix("id")


class References:
    """Per process: found references are remembered for a while; missing ones never are."""

    def __init__(self, rt: Runtime, ttl_seconds: float = 900.0) -> None:
        self.rt = rt
        self.ttl = ttl_seconds
        self._found: dict[tuple[str, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def _cached(self, key: tuple[str, ...]) -> tuple[bool, Any]:
        hit = self._found.get(key)
        if hit is None or time.monotonic() - hit[0] > self.ttl:
            return False, None
        return True, hit[1]

    def _remember(self, key: tuple[str, ...], value: Any) -> Any:
        with self._lock:
            if len(self._found) > 100_000:
                self._found.clear()
            self._found[key] = (time.monotonic(), value)
        return value

    def resolve(self, flow: Flow, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The payload with every Reference replaced by what the target takes."""
        out: dict[str, Any] = {}
        dataverse = flow.target.service == "dataverse"
        for name, value in payload.items():
            rule = value.rule if isinstance(value, Reference) else None
            if rule is None:
                out[name] = value
            elif dataverse:
                nav, path = self._bind(name, value)
                out[f"{nav}@odata.bind"] = path
            else:
                assert isinstance(rule, Ref), f"{flow.name}.{name}: only Ref rules reach F&O"
                out[name] = self._fno(rule, value.value)
        return out

    # --- F&O targets ----------------------------------------------------------------

    def _fno(self, rule: Ref, key: str) -> Any:
        from p2c_core.flows import get_flow

        cache_key = ("fno", *rule.flows, str(rule.returns), str(key))
        known, value = self._cached(cache_key)
        if known:
            return value
        if rule.returns is None:
            for name in rule.flows:
                entry = self.rt.state.get_entry(name, str(key))
                if entry is not None and entry.version >= 0:
                    return self._remember(cache_key, key)
        for endpoint in _endpoints([get_flow(n) for n in rule.flows], "fno"):
            assert isinstance(endpoint, FinOps)
            select = [endpoint.key] + ([rule.returns] if rule.returns else [])
            row = self.rt.fno.get(endpoint.entity_set, self.rt.fno.key(**{endpoint.key: key}), select=select)
            if row is not None:
                return self._remember(cache_key, row.get(rule.returns) if rule.returns else key)
        raise DependencyMissing(f"{rule.what} {key!r} is not in F&O yet (from flow {' or '.join(rule.flows)})")

    # --- Dataverse targets ------------------------------------------------------------

    def _bind(self, name: str, ref: Reference) -> tuple[str, str]:
        from p2c_core.flows import get_flow

        rule, value = ref.rule, ref.value
        if isinstance(rule, Ref):
            candidates = [(ep.entity_set, ep.key) for ep in _endpoints([get_flow(n) for n in rule.flows], "dataverse")]
            for entity_set, column in candidates:
                guid = self._guid(entity_set, column, value)
                if guid is not None:
                    nav = name if len(candidates) == 1 else f"{name}_{_entity_type(entity_set)}"
                    return nav, f"/{entity_set}({guid})"
            raise DependencyMissing(f"{rule.what} {value!r} is not in Sales yet (from flow {' or '.join(rule.flows)})")
        if isinstance(rule, Bind):
            guid = self._guid(rule.entity_set, rule.column, value)
            if guid is None:
                raise DependencyMissing(f"{rule.entity_set} has no row with {rule.column} {value!r} (for {name})")
            return name, f"/{rule.entity_set}({guid})"
        assert isinstance(rule, PriceList)
        return name, f"/pricelevels({self._price_list(str(value))})"

    def _guid(self, entity_set: str, column: str, value: Any) -> str | None:
        cache_key = ("dataverse", entity_set, column, str(value))
        known, guid = self._cached(cache_key)
        if known:
            return guid
        pk = id_column(entity_set)
        where = f"{column} eq {literal(value)}"
        for page in self.rt.dataverse.query(entity_set, select=[pk], filter=where):
            for row in page.rows:
                return self._remember(cache_key, row[pk])
        return None

    def _price_list(self, currency: str) -> str:
        """The `price_list` map's price list for the currency, else the first active one in it by name."""
        cache_key = ("pricelist", currency)
        known, guid = self._cached(cache_key)
        if known:
            return guid
        name = (Mapper(self.rt.settings).table("price_list") or {}).get(currency)
        if name is not None:
            guid = self._guid("pricelevels", "name", name)
            if guid is None:
                raise DependencyMissing(f"price list {name!r} (price_list map, currency {currency}) is not in Sales")
            return self._remember(cache_key, guid)
        currency_id = self._guid("transactioncurrencies", "isocurrencycode", currency)
        if currency_id is not None:
            where = f"_transactioncurrencyid_value eq {currency_id} and statecode eq 0"
            rows = [
                r
                for page in self.rt.dataverse.query("pricelevels", select=["pricelevelid", "name"], filter=where)
                for r in page.rows
            ]
            if rows:
                first = min(rows, key=lambda r: str(r.get("name") or ""))
                return self._remember(cache_key, first["pricelevelid"])
        # Price lists are set up by people, not synced: waiting would not bring one (FLOWS.md).
        raise MappingError(f"no active price list in currency {currency} in Sales (or set P2C_VALUE_MAPS__PRICE_LIST)")


def _endpoints(flows: list[Flow], service: str) -> list[Endpoint]:
    """Where the referenced flows' records live in `service`: each flow's target or source there."""
    out: dict[str, Endpoint] = {}
    for f in flows:
        for endpoint in (f.target, f.source):
            if endpoint.service == service:
                out.setdefault(endpoint.entity_set, endpoint)
                break
    return list(out.values())
