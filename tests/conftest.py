"""Shared fixtures: one Azurite per test session (real queues and tables, in memory)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from p2c_cli.azurite import Azurite
from p2c_core.state import TABLES
from p2c_core.state.storage import Storage, connect


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite(location=None) as az:
        yield az


@pytest.fixture
def storage(azurite: Azurite) -> Iterator[Storage]:
    """A clean storage account: every p2c table and queue emptied before the test."""
    st = connect({"AzureWebJobsStorage": azurite.connection_string})
    for table in TABLES:
        client = st.tables.get_table_client(table)
        try:
            for e in client.list_entities(select=["PartitionKey", "RowKey"]):
                client.delete_entity(e["PartitionKey"], e["RowKey"])
        except Exception:  # table not created yet
            pass
    for q in st.queues.list_queues():
        st.queues.get_queue_client(q.name).clear_messages()
    yield st
