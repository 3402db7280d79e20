"""An ELT connector's Dataverse source against the sandbox: Airbyte's
airbyte-source-microsoft-dataverse, run in a venv of its own (client_venv.py), as a data team
would point it at an org: connection check (the service document), discovery through the
metadata API (`EntityDefinitions` with `$expand=Attributes`, DateTime behaviours in a `$batch`),
a full read, and incremental reads with change tracking (delta links, deleted rows)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from p2c_sandbox import Sandbox
from tests.sandbox import client_venv


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def airbyte(command: dict[str, Any]) -> dict[str, Any]:
    return client_venv.run("airbyte", "airbyte_dataverse.py", command)


def test_connection_check_and_discovery(sb: Sandbox):
    assert airbyte({"check": sb.dataverse_url})["status"] == "SUCCEEDED"
    streams = {s["name"]: s for s in airbyte({"discover": sb.dataverse_url})["streams"]}
    assert set(streams) == {schema.entity_type for schema in sb.dataverse_service.schemas.values()}
    account = streams["account"]
    assert account["supported_sync_modes"] == ["full_refresh", "incremental"]
    assert account["source_defined_primary_key"] == [["accountid"]]
    assert account["default_cursor_field"] == ["modifiedon"]
    props = account["json_schema"]["properties"]
    # Standard columns p2c does not map are discovered with their types (dataverse-entities.json).
    assert props["revenue"]["type"] == ["null", "number"] and props["revenue_base"]["type"] == ["null", "number"]
    assert props["numberofemployees"]["type"] == ["null", "integer"]
    assert props["_parentaccountid_value"]["type"] == ["null", "string"]  # lookups as _<name>_value
    assert props["createdon"]["format"] == "date-time"


def test_full_read_returns_every_row(sb: Sandbox):
    got = airbyte({"read": sb.dataverse_url, "stream": "contact", "incremental": False})
    assert sorted(r["contactid"] for r in got["records"]) == sorted(
        r["contactid"] for r in sb.dataverse.rows("contacts")
    )
    assert "$deltatoken" not in got["state"]["stream"]["stream_state"]  # a full refresh has no delta link


def test_incremental_reads_follow_change_tracking(sb: Sandbox):
    first = airbyte({"read": sb.dataverse_url, "stream": "account", "incremental": True})
    assert len(first["records"]) == len(sb.dataverse.rows("accounts"))
    assert first["state"]["stream"]["stream_state"]["$deltatoken"]
    with httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/") as dv:
        changed, gone = first["records"][0]["accountid"], first["records"][1]["accountid"]
        assert dv.patch(f"accounts({changed})", json={"revenue": 1234.5}).status_code == 204
        assert dv.delete(f"accounts({gone})").status_code == 204
        created = dv.post("accounts", json={"name": "Arrived Since"}).headers["OData-EntityId"]
    second = airbyte({"read": sb.dataverse_url, "stream": "account", "incremental": True, "state": first["state"]})
    by_id = {r["accountid"]: r for r in second["records"]}
    assert set(by_id) == {changed, gone, created.rsplit("(", 1)[1].rstrip(")")}
    assert by_id[changed]["revenue"] == 1234.5 and by_id[changed].get("_ab_cdc_deleted_at") is None
    assert by_id[gone]["_ab_cdc_deleted_at"]
    assert (
        second["state"]["stream"]["stream_state"]["$deltatoken"]
        != first["state"]["stream"]["stream_state"]["$deltatoken"]
    )
    third = airbyte({"read": sb.dataverse_url, "stream": "account", "incremental": True, "state": second["state"]})
    assert third["records"] == []
