"""Shared fixtures: one Azurite per test session (real queues and tables, in memory)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from p2c_cli.azurite import Azurite
from p2c_core.shared_refs import TABLE as REFS_TABLE
from p2c_core.state import TABLES
from p2c_core.state.storage import Storage, connect


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    with Azurite(location=None) as az:
        yield az


@pytest.fixture
def storage(azurite: Azurite) -> Iterator[Storage]:
    """A clean storage account: every p2c table emptied and every queue deleted before the test,
    so a test that needs a queue must create it (as the code under test does), whatever ran before."""
    st = connect({"AzureWebJobsStorage": azurite.connection_string})
    for table in (*TABLES, REFS_TABLE):  # found ids of another test's sandbox would be wrong in this one
        client = st.tables.get_table_client(table)
        try:
            for e in client.list_entities(select=["PartitionKey", "RowKey"]):
                client.delete_entity(e["PartitionKey"], e["RowKey"])
        except Exception:  # table not created yet
            pass
    for q in list(st.queues.list_queues()):
        st.delete_queue(q.name)
    yield st


@pytest.fixture
def table(storage: Storage, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A table of the test module's own (named after it), created before each test and
    removed after: for modules that test one table's protocol on real Table Storage."""
    name = "t" + re.sub(r"[^a-z0-9]", "", request.module.__name__.rsplit(".", 1)[-1].lower())[:40]
    storage.tables.create_table_if_not_exists(name)
    yield storage.table(name)
    storage.tables.delete_table(name)
