"""p2c's own clients on a fresh sandbox (in memory, free loopback ports), and its request counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from p2c_core.clients.dataverse import PROFILE as DATAVERSE
from p2c_core.clients.dataverse import DataverseClient
from p2c_core.clients.fno import PROFILE as FNO
from p2c_core.clients.fno import FnoClient
from p2c_core.clients.odata import ODataClient
from p2c_sandbox import Sandbox


@dataclass
class Services:
    sandbox: Sandbox
    dataverse: DataverseClient
    fno: FnoClient

    def reset_counts(self) -> None:
        for base in (self.sandbox.dataverse_url, self.sandbox.fno_url):
            httpx.post(base + "/_sandbox/reset-stats").raise_for_status()

    def requests(self, service: str = "dataverse") -> list[tuple[str, str]]:
        """(method, entity set) of each request since the last reset, one entry per request."""
        base = self.sandbox.dataverse_url if service == "dataverse" else self.sandbox.fno_url
        snapshot = httpx.get(base + "/_sandbox/stats").json()
        return sorted((r["method"], r["entity_set"]) for r in snapshot["requests"] for _ in range(r["count"]))

    def operations(self, service: str = "dataverse") -> list[tuple[str, str]]:
        """(method, entity set) of each request inside a `$batch` since the last reset."""
        base = self.sandbox.dataverse_url if service == "dataverse" else self.sandbox.fno_url
        snapshot = httpx.get(base + "/_sandbox/stats").json()
        return sorted((r["method"], r["entity_set"]) for r in snapshot["operations"] for _ in range(r["count"]))

    def row(self, entity_set: str, **where: object) -> dict:
        """The one stored Sales row whose columns equal `where` (read beside the API, for checks)."""
        (found,) = [r for r in self.sandbox.dataverse.rows(entity_set) if all(r.get(k) == v for k, v in where.items())]
        return found


@contextmanager
def services(**sandbox_options: object) -> Iterator[Services]:
    """A seeded sandbox and p2c's clients on it; both stopped when the block ends."""
    with Sandbox(**sandbox_options) as sb:  # type: ignore[arg-type]
        dataverse = DataverseClient(ODataClient(DATAVERSE, sb.dataverse_url), page_size=50)
        fno = FnoClient(ODataClient(FNO, sb.fno_url), company="usmf")
        try:
            yield Services(sb, dataverse, fno)
        finally:
            dataverse.odata.close()
            fno.odata.close()
