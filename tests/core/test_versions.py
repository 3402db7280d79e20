"""Version bounds: the poll's record first, the service's answer only above it, cached."""

from __future__ import annotations

import time

import pytest

from p2c_core.clients.dataverse import PROFILE, DataverseClient
from p2c_core.clients.odata import ODataClient
from p2c_core.envelope import Record
from p2c_core.flows import get_flow
from p2c_core.versions import FNO_SKEW_MS, VersionBounds, VersionOutOfRange
from tests.security.servers import LoopbackServer

ACCOUNTS = get_flow("accounts")


def bounds(storage, service: LoopbackServer) -> VersionBounds:
    client = DataverseClient(ODataClient(PROFILE, service.url))
    return VersionBounds(storage, lambda: client)


def test_a_version_the_poll_recorded_needs_no_request(storage):
    with LoopbackServer() as service:
        bounds(storage, service).note(ACCOUNTS, [10, 40])
        fresh = bounds(storage, service)  # another worker: reads the recorded bound
        fresh.check(ACCOUNTS, Record(key="A", version=40))
        assert service.requests == []


def test_above_the_record_the_service_is_asked_once(storage):
    with LoopbackServer(lambda m, p: (200, {}, {"value": [{"accountid": "x"}]})) as service:
        b = bounds(storage, service)
        b.check(ACCOUNTS, Record(key="A", version=1000))
        b.check(ACCOUNTS, Record(key="B", version=900))
        assert len(service.requests) == 1 and "versionnumber+ge+1000" in service.requests[0][1]


def test_a_version_no_row_has_reached_is_refused(storage):
    with LoopbackServer() as service, pytest.raises(VersionOutOfRange, match="above any accounts row version"):
        bounds(storage, service).check(ACCOUNTS, Record(key="A", version=2**63 - 1))


def test_an_f_and_o_poll_time_later_than_now_plus_skew_is_refused(storage):
    with LoopbackServer() as service:
        b, products = bounds(storage, service), get_flow("products")
        b.check(products, Record(key="P", version=int(time.time() * 1000)))
        with pytest.raises(VersionOutOfRange, match="later than now"):
            b.check(products, Record(key="P", version=int(time.time() * 1000) + 2 * FNO_SKEW_MS))
        assert service.requests == []
