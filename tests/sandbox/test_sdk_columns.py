"""Microsoft's Dataverse SDK (powerplatform-dataverse-client) on the columns p2c does not map:
every column of data/dataverse-entities.json is read back, and written where Microsoft's table
reference says it is valid for create or update, through the SDK against the sandbox."""

from __future__ import annotations

import base64
import itertools
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.config import DataverseConfig
from PowerPlatform.Dataverse.core.errors import HttpError

from p2c_sandbox import Sandbox, reference
from p2c_sandbox.schema import EntitySchema
from p2c_sandbox.tls import self_signed
from tests.sandbox.test_clients import StaticToken

TABLES = sorted(reference.tables())


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    tls = self_signed(tmp_path_factory.mktemp("tls"))
    # An org without the P2C solution: its plug-ins set columns of their own (an invoice's
    # owner follows its order's), and these tests are about the standard columns alone.
    with pytest.MonkeyPatch.context() as env, Sandbox(tls=tls, p2c_solution=False) as sandbox:
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


def _schema(sb: Sandbox, logical: str) -> EntitySchema:
    return next(s for s in sb.dataverse_service.schemas.values() if s.entity_type == logical)


def _navigation(schema: EntitySchema, column: str, spec: dict[str, Any]) -> str | None:
    """The single-valued navigation property a write binds the lookup column through: the one
    the reference names (QuoteDetailId, customerid_account), else the one the table declares."""
    navs = [nav for nav in spec.get("navigation_properties") or [] if nav in schema.lookups]
    navs += [nav for nav in schema.lookups if schema.lookup_columns.get(nav, nav) == column]
    return navs[0] if navs else None


def _row_ids(sb: Sandbox, sdk: DataverseClient, entity_set: str) -> list[str]:
    """Ids of two rows of a served table, made through the SDK when the seed has none."""
    target = sb.dataverse_service.schemas[entity_set]
    pk = target.keys[0]
    ids = [row[pk] for row in itertools.islice(sb.dataverse.rows(entity_set), 2)]
    logical = target.entity_type
    while len(ids) < 2:
        known = logical in reference.tables()
        body = {n: _value(s, 0) for n, s in _writable(logical, "valid_for_create", pk).items()} if known else {}
        ids.append(sdk.records.create(logical, body))
    return ids


def _lookups(sb: Sandbox, sdk: DataverseClient, logical: str, flag: str, turn: int) -> dict[str, tuple[str, str]]:
    """Writable lookup column -> (its @odata.bind key, the id bound), for every lookup whose
    target the sandbox serves; `turn` picks another target row for the update."""
    schema = _schema(sb, logical)
    out = {}
    for name, spec in reference.tables()[logical]["properties"].items():
        nav = _navigation(schema, name, spec) if spec["type"] in reference.LOOKUPS and spec[flag] else None
        if nav is not None:
            out[name] = (f"{nav}@odata.bind", _row_ids(sb, sdk, schema.lookups[nav])[turn])
    return out


def _write_body(sb: Sandbox, sdk: DataverseClient, logical: str, flag: str, turn: int):
    pk = reference.tables()[logical]["primary_id"]
    values = {name: _value(spec, turn) for name, spec in _writable(logical, flag, pk).items()}
    binds = _lookups(sb, sdk, logical, flag, turn)
    target_sets = {name: _schema(sb, logical).lookups[key.split("@")[0]] for name, (key, _) in binds.items()}
    body = {**values, **{key: f"/{target_sets[name]}({ref})" for name, (key, ref) in binds.items()}}
    return body, values, {f"_{name}_value": ref for name, (_, ref) in binds.items()}


@pytest.mark.parametrize("logical", TABLES)
def test_every_reference_column_reads_and_writes_where_valid(sb: Sandbox, sdk: DataverseClient, logical: str):
    table = reference.tables()[logical]
    body, on_create, bound = _write_body(sb, sdk, logical, "valid_for_create", 0)
    new_id = sdk.records.create(logical, body)
    got = sdk.records.retrieve(logical, new_id)
    assert got is not None
    read_as = {name: f"_{name}_value" if spec["type"] in reference.LOOKUPS else name
               for name, spec in table["properties"].items()}  # fmt: skip
    assert set(read_as.values()) <= set(got.keys()), sorted(set(read_as.values()) - set(got.keys()))
    assert {n: got[n] for n in on_create} == on_create
    assert {n: got[n] for n in bound} == bound

    body, on_update, bound = _write_body(sb, sdk, logical, "valid_for_update", 1)
    sdk.records.update(logical, new_id, body)
    again = sdk.records.retrieve(logical, new_id)
    assert again is not None and {n: again[n] for n in on_update} == on_update
    assert {n: again[n] for n in bound} == bound


@pytest.mark.parametrize("logical", TABLES)
def test_every_writable_lookup_to_a_served_table_can_be_bound(sb: Sandbox, logical: str):
    # A lookup whose target table the sandbox serves is bindable by @odata.bind; the others
    # (sla, businessunit, ... until served) are read as their _<column>_value only.
    schema = _schema(sb, logical)
    served = {s.entity_type for s in sb.dataverse_service.schemas.values()}
    for name, spec in reference.tables()[logical]["properties"].items():
        writable = spec["type"] in reference.LOOKUPS and (spec["valid_for_create"] or spec["valid_for_update"])
        if writable and set(spec.get("targets") or []) & served:
            assert _navigation(schema, name, spec) is not None, name


@pytest.mark.parametrize("logical", TABLES)
def test_columns_not_valid_for_a_write_are_refused(sb: Sandbox, sdk: DataverseClient, logical: str):
    props = reference.tables()[logical]["properties"]
    schema = _schema(sb, logical)
    read_only = sorted(n for n in reference.not_writable(schema, creating=True) if n in props)
    assert read_only, logical  # every table has some (createdon, versionnumber, ...)
    for name in read_only:
        with pytest.raises(HttpError) as refused:
            sdk.records.create(logical, {name: _value(props[name], 0)})
        assert refused.value.status_code == 400, name
    # Valid for create only (overriddencreatedon, importsequencenumber on older pages): set
    # on create, refused on update.
    create_only = sorted(n for n, s in props.items() if s["valid_for_create"] and not s["valid_for_update"]
                         and s["type"] not in reference.LOOKUPS and n != schema.keys[0])  # fmt: skip
    if create_only:
        new_id = sdk.records.create(logical, {n: _value(props[n], 0) for n in create_only})
        for name in create_only:
            with pytest.raises(HttpError) as refused:
                sdk.records.update(logical, new_id, {name: _value(props[name], 1)})
            assert refused.value.status_code == 400, name
    # A read-only lookup the table declares (createdby): its binding is refused too.
    for name, spec in props.items():
        nav = _navigation(schema, name, spec) if spec["type"] in reference.LOOKUPS else None
        if nav is not None and not spec["valid_for_create"]:
            ref = _row_ids(sb, sdk, schema.lookups[nav])[0]
            with pytest.raises(HttpError) as refused:
                sdk.records.create(logical, {f"{nav}@odata.bind": f"/{schema.lookups[nav]}({ref})"})
            assert refused.value.status_code == 400, name


def test_contact_fullname_is_computed_from_first_and_last_name(sdk: DataverseClient):
    # fullname is read-only in the contact reference ("Combines and shows the contact's first
    # and last names"): a create sets the names, the service the full name.
    new_id = sdk.records.create("contact", {"firstname": "Ada", "lastname": "Lovelace"})
    assert sdk.records.retrieve("contact", new_id, select=["fullname"])["fullname"] == "Ada Lovelace"  # type: ignore[index]
    sdk.records.update("contact", new_id, {"firstname": "Augusta"})
    assert sdk.records.retrieve("contact", new_id, select=["fullname"])["fullname"] == "Augusta Lovelace"  # type: ignore[index]


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
