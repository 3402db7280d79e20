"""Microsoft's Dataverse SDK (powerplatform-dataverse-client) on the columns p2c does not map:
every column of data/dataverse-entities.json is read back, and written where Microsoft's table
reference says it is valid for create or update, through the SDK against the sandbox."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.config import DataverseConfig
from PowerPlatform.Dataverse.core.errors import HttpError

from p2c_sandbox import Sandbox, reference
from p2c_sandbox.tls import self_signed
from tests.sandbox.test_clients import StaticToken

TABLES = sorted(reference.tables())


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    tls = self_signed(tmp_path_factory.mktemp("tls"))
    with pytest.MonkeyPatch.context() as env, Sandbox(tls=tls) as sandbox:
        env.setenv("REQUESTS_CA_BUNDLE", str(tls.cert))
        yield sandbox


@pytest.fixture
def sdk(sb: Sandbox) -> Iterator[DataverseClient]:
    with DataverseClient(sb.dataverse_url, StaticToken(), DataverseConfig()) as client:
        yield client


def _value(spec: dict[str, Any], turn: int) -> Any:
    """A value the column's type and range take; `turn` makes the update's differ."""
    kind = spec["type"]
    if kind in ("String", "Memo"):
        return f"v{turn}-{uuid.uuid4().hex}"[: spec.get("max_length", 100)]
    if kind in ("Picklist", "State", "Status"):
        options = sorted(int(v) for v in spec.get("options") or {"1": ""})
        return options[min(turn, len(options) - 1)]
    if kind in ("Integer", "BigInt"):
        return max(int(spec.get("min", 0)), 0) + turn + 1
    if kind in ("Money", "Decimal", "Double"):
        return round(max(float(spec.get("min", 0)), 0.0) + turn + 1.25, 2)
    if kind == "Boolean":
        return turn % 2 == 0
    if kind == "DateTime":
        return f"2026-0{turn + 1}-02" if spec.get("format") == "DateOnly" else f"2026-0{turn + 1}-02T03:04:05Z"
    if kind == "Uniqueidentifier":
        return str(uuid.uuid4())
    if kind == "Image":
        return base64.b64encode(bytes([turn]) * 8).decode()
    if kind == "EntityName":  # owneridtype: the server's, from ownerid (here the calling user)
        return "systemuser"
    raise AssertionError(f"no sample value for {kind}")


def _writable(logical: str, flag: str, pk: str) -> dict[str, dict[str, Any]]:
    return {
        name: spec
        for name, spec in reference.tables()[logical]["properties"].items()
        if spec[flag] and name != pk and spec["type"] not in reference.LOOKUPS
    }


@pytest.mark.parametrize("logical", TABLES)
def test_every_reference_column_reads_and_writes_where_valid(sb: Sandbox, sdk: DataverseClient, logical: str):
    table = reference.tables()[logical]
    pk = table["primary_id"]
    on_create = {name: _value(spec, 0) for name, spec in _writable(logical, "valid_for_create", pk).items()}
    new_id = sdk.records.create(logical, on_create)
    got = sdk.records.retrieve(logical, new_id)
    assert got is not None
    read_as = {name: f"_{name}_value" if spec["type"] in reference.LOOKUPS else name
               for name, spec in table["properties"].items()}  # fmt: skip
    assert set(read_as.values()) <= set(got.keys()), sorted(set(read_as.values()) - set(got.keys()))
    assert {n: got[n] for n in on_create} == on_create

    on_update = {name: _value(spec, 1) for name, spec in _writable(logical, "valid_for_update", pk).items()}
    sdk.records.update(logical, new_id, on_update)
    again = sdk.records.retrieve(logical, new_id)
    assert again is not None and {n: again[n] for n in on_update} == on_update


def _schema(sb: Sandbox, logical: str) -> Any:
    return next(s for s in sb.dataverse_service.schemas.values() if s.entity_type == logical)


@pytest.mark.parametrize("logical", TABLES)
def test_read_only_columns_are_refused(sb: Sandbox, sdk: DataverseClient, logical: str):
    table = reference.tables()[logical]
    props = table["properties"]
    read_only = sorted(n for n in reference.not_writable(_schema(sb, logical), creating=True) if n in props)
    assert read_only, logical  # every table has some (createdon, versionnumber, ...)
    for name in read_only[:3]:
        with pytest.raises(HttpError) as refused:
            sdk.records.create(logical, {name: _value(props[name], 0)})
        assert refused.value.status_code == 400, name


def test_money_base_columns_and_exchange_rate_follow_the_currency(sb: Sandbox, sdk: DataverseClient):
    eur = next(r for r in sb.dataverse.rows("transactioncurrencies") if r["isocurrencycode"] == "EUR")
    sdk.records.update("transactioncurrency", eur["transactioncurrencyid"], {"exchangerate": 0.8})
    new_id = sdk.records.create("account", {
        "name": "Money Matters", "revenue": 1000.5, "creditlimit": 20,
        "transactioncurrencyid@odata.bind": f"/transactioncurrencies({eur['transactioncurrencyid']})",
    })  # fmt: skip
    got = sdk.records.retrieve(
        "account", new_id, select=["revenue", "revenue_base", "creditlimit_base", "exchangerate"]
    )
    assert got is not None
    # base = amount / the record's exchange rate (the currency's, copied on save), to 4 places.
    assert (got["exchangerate"], got["revenue_base"], got["creditlimit_base"]) == (0.8, 1250.625, 25.0)
    sdk.records.update("account", new_id, {"revenue": 8})
    assert sdk.records.retrieve("account", new_id, select=["revenue_base"])["revenue_base"] == 10.0  # type: ignore[index]
