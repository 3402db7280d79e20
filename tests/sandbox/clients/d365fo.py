"""Drives d365fo-client (an F&O client library and MCP server) against a sandbox's F&O side.

Run by tests/sandbox/test_fno_client.py in a venv of its own (client_venv.py):
`python d365fo.py '{"url": ...}'`, one JSON answer on stdout: what the library saw of the
metadata service, and a create / read / update / delete round trip by composite key in a
company other than the default one. The library sends a fixed token to a loopback address.
"""
# pyright: reportMissingImports=false

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from typing import Any

from d365fo_client import FOClient, FOClientConfig, QueryOptions


async def main(url: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as cache:
        config = FOClientConfig(base_url=url, metadata_cache_dir=cache, enable_metadata_cache=False,
                                use_label_cache=False, enable_request_tracing=False)  # fmt: skip
        async with FOClient(config) as client:
            out["connection"] = await client.test_connection()
            out["metadata_connection"] = await client.test_metadata_connection()
            found = await client.metadata_api_ops.search_data_entities("customer")
            out["data_entities"] = [[e.name, e.public_entity_name, e.public_collection_name] for e in found]
            entity = await client.metadata_api_ops.get_public_entity_info("CustomerV3", resolve_labels=False)
            out["entity"] = {
                "set": entity.entity_set_name,
                "keys": [p.name for p in entity.properties if p.is_key],
                "properties": len(entity.properties),
            }
            enum = await client.metadata_api_ops.get_public_enumeration_info(
                "SalesOrderProcessingStatus", resolve_labels=False
            )
            out["enum"] = [[m.name, m.value] for m in enum.members]
            key = {"dataAreaId": "demf", "CustomerAccount": "DE-700"}
            created = await client.create_entity(
                "CustomersV3", {**key, "OrganizationName": "Leipziger Lager", "SalesCurrencyCode": "EUR"},
                skip_validation=False,
            )  # fmt: skip
            out["created"] = {k: created.get(k) for k in ("dataAreaId", "CustomerAccount", "PartyNumber")}
            out["read"] = (await client.get_entity("CustomersV3", key, skip_validation=False))["OrganizationName"]
            await client.update_entity("CustomersV3", key, {"OrganizationName": "Leipziger Lager AG"},
                                       skip_validation=False)  # fmt: skip
            out["updated"] = (await client.get_entity("CustomersV3", key, skip_validation=False))["OrganizationName"]
            listed = await client.get_entities(
                "CustomersV3", QueryOptions(filter="dataAreaId eq 'demf'", select=["CustomerAccount"]),
                skip_validation=False,
            )  # fmt: skip
            out["demf"] = sorted(r["CustomerAccount"] for r in listed["value"])
            out["deleted"] = await client.delete_entity("CustomersV3", key, skip_validation=False)
            out["after_delete"] = await client.get_entity_by_key("CustomersV3", key) is None
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])["url"])), default=str))
