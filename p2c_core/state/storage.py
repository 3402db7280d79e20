"""Azure Storage clients (queues, tables) from the Functions host's own storage setting.

A connection string locally (Azurite); identity-based in Azure, with the same
`AzureWebJobsStorage__*` settings the host uses, so p2c needs no key of its own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from p2c_core.errors import SettingsError
from p2c_core.settings import STORAGE, storage_settings

if TYPE_CHECKING:
    from azure.data.tables import TableClient, TableServiceClient
    from azure.storage.queue import QueueClient, QueueServiceClient


# What `UseDevelopmentStorage=true` means: Azurite on its default ports, with the
# well-known development account (its key is public and works only against Azurite).
DEVELOPMENT_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;"
)


# A table's client of policies of its own, from the table's name.
TableClientFactory = Callable[[str], "TableClient"]


@dataclass
class Storage:
    """The queue and table clients of one storage account, and what this instance created.

    A queue or table is created on its first use through this instance (`queue`, and
    `p2c_core.state.tables.table`) and remembered here, so later uses cost no round trip.
    A table's client is made once and reused.
    """

    queues: QueueServiceClient
    tables: TableServiceClient
    # Not `tables.get_table_client` (its fallback, once a table): that builds each client's
    # pipeline from the service client's own policy objects and re-links them, while other
    # tables' requests run through them; such a request then fails ("'_SansIOHTTPPolicyRunner'
    # object has no attribute 'next'", azure-data-tables 12.7), and its message waits 30 s.
    # Out of the repr: it may hold the connection string, key and all.
    new_table_client: TableClientFactory | None = field(default=None, repr=False)
    _created: set[str] = field(default_factory=set)  # queues
    created_tables: set[str] = field(default_factory=set)
    _table_clients: dict[str, TableClient] = field(default_factory=dict, repr=False)
    _making: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def queue(self, name: str) -> QueueClient:
        """A queue client speaking the host's base64 encoding; the queue exists after this."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy

        client = self.queues.get_queue_client(
            name,
            message_encode_policy=BinaryBase64EncodePolicy(),
            message_decode_policy=BinaryBase64DecodePolicy(),
        )
        if name not in self._created:
            with contextlib.suppress(ResourceExistsError):
                client.create_queue()
            self._created.add(name)
        return client

    def delete_queue(self, name: str) -> None:
        """Delete a queue (if it exists) and forget it was created: a next `queue` creates it."""
        from azure.core.exceptions import ResourceNotFoundError

        self._created.discard(name)
        with contextlib.suppress(ResourceNotFoundError):
            self.queues.delete_queue(name)

    def table(self, name: str) -> TableClient:
        """A table's client (the same each time); `p2c_core.state.tables.table` also creates
        the table on first use."""
        client = self._table_clients.get(name)
        if client is None:
            with self._making:
                client = self._table_clients.get(name)
                if client is None:
                    make = self.new_table_client or self.tables.get_table_client
                    client = self._table_clients[name] = make(name)
        return client


def connect(values: dict[str, str] | None = None) -> Storage:
    """The storage account of `AzureWebJobsStorage` (a connection string) or of its
    identity-based `AzureWebJobsStorage__*` settings; defaults to the process settings."""
    from azure.data.tables import TableClient, TableServiceClient
    from azure.storage.queue import QueueServiceClient

    values = values if values is not None else storage_settings()
    conn = values.get(STORAGE)
    if conn and conn.replace(" ", "").lower() == "usedevelopmentstorage=true":
        conn = DEVELOPMENT_STORAGE
    if conn and "=" in conn:
        return Storage(
            queues=QueueServiceClient.from_connection_string(conn),
            tables=TableServiceClient.from_connection_string(conn),
            new_table_client=partial(TableClient.from_connection_string, conn),
        )
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    account = values.get("accountName") or conn
    queue_uri = values.get("queueServiceUri") or (account and f"https://{account}.queue.core.windows.net")
    table_uri = values.get("tableServiceUri") or (account and f"https://{account}.table.core.windows.net")
    if not queue_uri or not table_uri:
        raise SettingsError(f"{STORAGE}__accountName (or __queueServiceUri and __tableServiceUri) is required")
    credential = (
        ManagedIdentityCredential(client_id=values.get("clientId"))
        if values.get("credential") == "managedidentity"
        else DefaultAzureCredential()
    )
    return Storage(
        queues=QueueServiceClient(queue_uri, credential=credential),
        tables=TableServiceClient(endpoint=table_uri, credential=credential),
        new_table_client=partial(TableClient, table_uri, credential=credential),
    )
