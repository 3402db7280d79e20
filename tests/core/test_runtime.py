"""Per-process wiring: clients built once, a reader and a writer per service, settings passed on, close."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from p2c_core.flows import get_flow
from p2c_core.runtime import Runtime, get_runtime, reset_runtime
from p2c_core.settings import Settings, setting_names
from p2c_core.sources import DataverseChanges, FnoChanges
from p2c_core.state.storage import Storage
from p2c_core.targets import DataverseWriter, FnoWriter
from p2c_sandbox import Sandbox


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


def runtime(storage: Storage, sb: Sandbox, **settings: object) -> Runtime:
    s = Settings(dataverse_url=sb.dataverse_url, fno_url=sb.fno_url, fno_company="usmf", auth_mode="none",
                 page_size=7, **settings)  # type: ignore[arg-type]  # fmt: skip
    return Runtime(settings=s, storage=storage)


def test_clients_and_helpers_are_built_once(storage: Storage, sb: Sandbox):
    rt = runtime(storage, sb)
    try:
        assert rt.dataverse is rt.dataverse and rt.fno is rt.fno
        assert rt.state is rt.state and rt.mapper is rt.mapper and rt.references is rt.references
        assert rt.lookups is rt.lookups
        assert rt.references.dataverse is rt.dataverse and rt.references.fno is rt.fno
        assert (rt.dataverse.page_size, rt.fno.company) == (7, "usmf")  # from the settings
    finally:
        rt.close()


def test_reader_and_writer_follow_the_flows_services(storage: Storage, sb: Sandbox):
    rt = runtime(storage, sb)
    try:
        accounts, products = get_flow("accounts"), get_flow("products")  # Sales -> F&O, F&O -> Sales
        reader, writer = rt.reader(accounts), rt.writer(accounts)
        assert isinstance(reader, DataverseChanges) and reader.client is rt.dataverse and reader.lookups is rt.lookups
        assert isinstance(writer, FnoWriter) and writer.client is rt.fno and writer.flow is accounts
        reader, writer = rt.reader(products), rt.writer(products)
        assert isinstance(reader, FnoChanges) and reader.client is rt.fno and reader.state is rt.state
        assert isinstance(writer, DataverseWriter) and writer.client is rt.dataverse and writer.flow is products
    finally:
        rt.close()


def test_references_read_the_configured_price_list_map(storage: Storage, sb: Sandbox):
    rt = runtime(storage, sb, value_maps={"price_list": {"USD": "Retail USA"}})
    try:
        (retail,) = [r["pricelevelid"] for r in sb.dataverse.rows("pricelevels") if r["name"] == "Retail USA"]
        assert rt.references.price_list("USD") == retail  # not the built-in "CRM Service USA (sample)"
    finally:
        rt.close()


def test_close_closes_the_clients_built_and_builds_none(storage: Storage, sb: Sandbox):
    rt = runtime(storage, sb)
    rt.close()  # nothing built yet: nothing to close, nothing built by closing
    assert "dataverse" not in rt.__dict__ and "fno" not in rt.__dict__
    assert rt.fno.get("CustomersV3", rt.fno.key(CustomerAccount="US-001"), select=["CustomerAccount"]) is not None
    rt.close()
    with pytest.raises(RuntimeError, match="closed"):
        rt.fno.get("CustomersV3", rt.fno.key(CustomerAccount="US-001"))


def test_get_runtime_is_one_per_process_until_reset(azurite, storage: Storage, sb: Sandbox, monkeypatch):
    from p2c_cli.local import sandbox_env

    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in sandbox_env(azurite.connection_string, sb.dataverse_url, sb.fno_url).items():
        monkeypatch.setenv(name, value)
    reset_runtime()
    try:
        first = get_runtime()
        assert get_runtime() is first and first.settings.fno_url == sb.fno_url
        fno = first.fno
        reset_runtime()
        with pytest.raises(RuntimeError, match="closed"):  # the old clients are closed
            fno.get("CustomersV3", fno.key(CustomerAccount="US-001"))
        monkeypatch.setenv("P2C_FNO_COMPANY", "demf")
        second = get_runtime()
        assert second is not first and second.settings.fno_company == "demf"  # settings read again
    finally:
        reset_runtime()
