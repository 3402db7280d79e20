"""An F&O client library written elsewhere against the sandbox: d365fo-client, in a venv of its
own (client_venv.py). It tests the connection (`/data`, `/Metadata/PublicEntities`), searches
the metadata service's data entities, reads a public entity's schema and an enum's members, and
creates, reads, updates, lists and deletes a customer by its composite key in a company other
than the default one (it adds cross-company=true itself when a key or filter names dataAreaId)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from p2c_sandbox import Sandbox
from tests.sandbox import client_venv


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def test_d365fo_client_metadata_service_and_crud_across_companies(sb: Sandbox):
    seen = client_venv.run("d365fo", "d365fo.py", {"url": sb.fno_url})
    assert seen["connection"] is True and seen["metadata_connection"] is True
    assert ["CustCustomerV3Entity", "CustomerV3", "CustomersV3"] in seen["data_entities"]
    schema = sb.fno_service.schemas["CustomersV3"]
    assert seen["entity"] == {"set": "CustomersV3", "keys": list(schema.keys), "properties": len(schema.props)}
    assert seen["enum"][:2] == [["Active", 0], ["Confirmed", 1]] and ["Canceled", 7] in seen["enum"]
    assert seen["created"]["dataAreaId"] == "demf" and seen["created"]["PartyNumber"]
    assert (seen["read"], seen["updated"]) == ("Leipziger Lager", "Leipziger Lager AG")
    assert seen["demf"] == ["DE-001", "DE-002", "DE-003", "DE-004", "DE-700"]
    assert seen["deleted"] is True and seen["after_delete"] is True
    assert not [r for r in sb.fno.rows("CustomersV3") if r["CustomerAccount"] == "DE-700"]
