"""Drives Airbyte's Dataverse source (airbyte-source-microsoft-dataverse) against a sandbox.

Run by tests/sandbox/test_elt_connector.py in a venv of its own (the connector pins pydantic 1;
the project uses pydantic 2): `python airbyte_dataverse.py '<command as JSON>'`, one JSON answer
on stdout. Commands: {"check": url}, {"discover": url}, {"read": url, "stream": name,
"incremental": bool, "state": {...} | null}.

The connector gets its token from Entra ID (client credentials); the sandbox takes any bearer
token, so the one network call that would leave the machine is replaced by a fixed token.
"""
# pyright: reportMissingImports=false

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import source_microsoft_dataverse.dataverse as dataverse
import source_microsoft_dataverse.source as source_module
from airbyte_cdk.models import (
    AirbyteStateMessage,
    ConfiguredAirbyteCatalog,
    ConfiguredAirbyteStream,
    DestinationSyncMode,
    SyncMode,
    Type,
)
from airbyte_cdk.sources.streams.http.requests_native_auth import TokenAuthenticator
from source_microsoft_dataverse import SourceMicrosoftDataverse


def _fixed_token(config: Any) -> TokenAuthenticator:
    return TokenAuthenticator(token="sandbox-token")


dataverse.get_auth = _fixed_token
source_module.get_auth = _fixed_token
LOG = logging.getLogger("airbyte")


def _config(url: str) -> dict[str, Any]:
    # tenant, client and secret are never sent anywhere (the token is fixed above).
    return {"url": url, "tenant_id": "sandbox", "client_id": "sandbox", "client_secret_value": "unused",
            "odata_maxpagesize": 7}  # fmt: skip


def main(command: dict[str, Any]) -> dict[str, Any]:
    src = SourceMicrosoftDataverse()
    if "check" in command:
        status = src.check(LOG, _config(command["check"]))
        return {"status": status.status.name, "message": status.message}
    if "discover" in command:
        catalog = src.discover(LOG, _config(command["discover"]))
        return {"streams": [json.loads(s.json(exclude_unset=True)) for s in catalog.streams]}
    config = _config(command["read"])
    stream = next(s for s in src.discover(LOG, config).streams if s.name == command["stream"])
    incremental = command["incremental"]
    configured = ConfiguredAirbyteStream(
        stream=stream,
        sync_mode=SyncMode.incremental if incremental else SyncMode.full_refresh,
        destination_sync_mode=DestinationSyncMode.append,
        cursor_field=["modifiedon"] if incremental else None,
        primary_key=stream.source_defined_primary_key,
    )
    state = [AirbyteStateMessage.parse_obj(command["state"])] if command.get("state") else []
    records, states = [], []
    for message in src.read(LOG, config, ConfiguredAirbyteCatalog(streams=[configured]), state):
        if message.type == Type.RECORD:
            records.append(message.record.data)
        elif message.type == Type.STATE:
            states.append(json.loads(message.state.json(exclude_unset=True)))
    return {"records": records, "state": states[-1] if states else None}


if __name__ == "__main__":
    print(json.dumps(main(json.loads(sys.argv[1])), default=str))
