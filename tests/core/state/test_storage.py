"""Storage clients from the host's own setting: a connection string, Azurite, or an identity.

Identity-based: `AzureWebJobsStorage__accountName` (or `__queueServiceUri` and
`__tableServiceUri`), `__credential=managedidentity` and `__clientId` for a user-assigned
identity, as the Functions host reads them
(https://learn.microsoft.com/azure/azure-functions/functions-reference#connecting-to-host-storage-with-an-identity).
"""

from __future__ import annotations

import threading

import pytest

from p2c_core.errors import SettingsError
from p2c_core.state.storage import connect


def test_a_connection_string_reaches_azurite(azurite):
    storage = connect({"AzureWebJobsStorage": azurite.connection_string})
    storage.queue("p2c-storage-test").send_message(b"hello")
    [message] = storage.queue("p2c-storage-test").receive_messages()
    assert message.content == b"hello"  # base64 on the wire, bytes here
    storage.delete_queue("p2c-storage-test")


def test_use_development_storage_means_azurite_on_its_default_ports():
    storage = connect({"AzureWebJobsStorage": "UseDevelopmentStorage=true"})
    assert storage.queues.url == "http://127.0.0.1:10001/devstoreaccount1/"
    assert storage.tables.url.rstrip("/") == "http://127.0.0.1:10002/devstoreaccount1"


def test_an_account_name_means_its_public_endpoints_and_the_default_credential():
    storage = connect({"accountName": "p2cprod"})
    assert storage.queues.url == "https://p2cprod.queue.core.windows.net/"
    assert storage.tables.url.rstrip("/") == "https://p2cprod.table.core.windows.net"
    assert type(storage.queues.credential).__name__ == "DefaultAzureCredential"


def test_a_user_assigned_managed_identity_and_explicit_service_uris():
    storage = connect({"queueServiceUri": "https://q.example/", "tableServiceUri": "https://t.example",
                       "credential": "managedidentity", "clientId": "0000-client"})  # fmt: skip
    assert storage.queues.url.startswith("https://q.example") and storage.tables.url.startswith("https://t.example")
    assert type(storage.queues.credential).__name__ == "ManagedIdentityCredential"
    assert type(storage.tables.credential).__name__ == "ManagedIdentityCredential"


def test_an_identity_setting_without_an_account_is_refused():
    with pytest.raises(SettingsError, match="accountName"):
        connect({"credential": "managedidentity"})


def test_a_deleted_queue_is_created_again_on_next_use(storage):
    storage.queue("p2c-storage-test").send_message(b"one")
    storage.delete_queue("p2c-storage-test")
    assert "p2c-storage-test" not in {q.name for q in storage.queues.list_queues()}
    storage.queue("p2c-storage-test").send_message(b"two")  # the cache does not claim it still exists
    assert [m.content for m in storage.queue("p2c-storage-test").receive_messages()] == [b"two"]
    storage.delete_queue("p2c-storage-test")
    storage.delete_queue("p2c-storage-test")  # deleting a queue that is gone is no error


def test_a_table_client_is_made_once_and_reused(azurite):
    storage = connect({"AzureWebJobsStorage": azurite.connection_string})
    assert storage.table("p2cstoragetest") is storage.table("p2cstoragetest")
    assert storage.table("p2cstoragetest") is not storage.table("p2cstoragetest2")


def test_a_storage_never_shows_its_connection_string_or_key(azurite):
    storage = connect({"AzureWebJobsStorage": azurite.connection_string})
    storage.table("p2cstoragetest")
    key = dict(part.split("=", 1) for part in azurite.connection_string.split(";") if part)["AccountKey"]
    assert key not in repr(storage) and key not in str(storage)


def test_an_identity_storage_makes_its_table_clients_on_its_endpoint_and_credential():
    storage = connect({"tableServiceUri": "https://t.example", "queueServiceUri": "https://q.example",
                       "credential": "managedidentity", "clientId": "0000-client"})  # fmt: skip
    client = storage.table("p2ckeymap")
    assert client.url.startswith("https://t.example") and client.table_name == "p2ckeymap"
    assert client.credential is storage.tables.credential


def test_new_table_clients_made_while_other_tables_answer_never_break_those_requests(azurite):
    # The SDK's get_table_client re-links the policies every table client shares: a request
    # running meanwhile failed ("'_SansIOHTTPPolicyRunner' object has no attribute 'next'"),
    # here about once in 4,000 clients made (a sync asked for one per table use, about 400
    # a run of 5,000 accounts). Tables asked for 30,000 times while eight threads read.
    storage = connect({"AzureWebJobsStorage": azurite.connection_string})
    storage.tables.create_table_if_not_exists("p2cstoragerace")
    reading = storage.table("p2cstoragerace")
    errors: list[BaseException] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            try:
                list(reading.query_entities("PartitionKey eq 'none'"))
            except Exception as exc:
                errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(8)]
    for thread in readers:
        thread.start()
    try:
        for n in range(30_000):
            storage.table(f"p2cstoragerace{n % 20}")
    finally:
        stop.set()
        for thread in readers:
            thread.join()
    assert errors == []
