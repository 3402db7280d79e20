"""Entity sets as data: keys, properties (type, nullability, max length), lookups.

Dataverse tables are declared here; F&O data entities come from `data/fno-entities.json`,
the keys and properties a real F&O environment publishes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"


@dataclass(frozen=True)
class Prop:
    type: str  # Edm.String, Edm.Int32, Edm.Int64, Edm.Decimal, Edm.Double, Edm.Guid, Edm.Boolean,
    # Edm.DateTimeOffset, Edm.Date, or "enum:<Name>" (F&O enums, strings on the wire)
    nullable: bool = True
    max_length: int | None = None


@dataclass
class EntitySchema:
    entity_set: str
    entity_type: str
    keys: tuple[str, ...]
    props: dict[str, Prop]
    alternate_keys: tuple[tuple[str, ...], ...] = ()
    # Dataverse lookups: navigation property -> target entity set; stored as _<nav>_value.
    lookups: dict[str, str] = field(default_factory=dict)
    # Columns the server maintains; a client may not write them.
    server_columns: frozenset[str] = frozenset()
    defaults: dict[str, object] = field(default_factory=dict)
    track_changes: bool = False


def _dv(
    entity_set: str,
    entity_type: str,
    columns: dict[str, Prop],
    *,
    alt: tuple[tuple[str, ...], ...] = (),
    lookups: dict[str, str] | None = None,
    defaults: dict[str, object] | None = None,
) -> EntitySchema:
    key = f"{entity_type}id"
    props = {key: Prop("Edm.Guid", nullable=False), **columns}
    for nav in lookups or {}:
        props[f"_{nav}_value"] = Prop("Edm.Guid")
    props.update(
        {
            "createdon": Prop("Edm.DateTimeOffset"),
            "modifiedon": Prop("Edm.DateTimeOffset"),
            "versionnumber": Prop("Edm.Int64"),
        }
    )
    return EntitySchema(
        entity_set=entity_set,
        entity_type=entity_type,
        keys=(key,),
        props=props,
        alternate_keys=alt,
        lookups=dict(lookups or {}),
        server_columns=frozenset({key, "createdon", "modifiedon", "versionnumber"}),
        defaults=dict(defaults or {}),
        track_changes=True,
    )


S = Prop  # short alias for the tables below


def _text(n: int) -> Prop:
    return Prop("Edm.String", max_length=n)


DATAVERSE: dict[str, EntitySchema] = {
    s.entity_set: s
    for s in [
        _dv(
            "accounts",
            "account",
            {
                "name": _text(160),
                "accountnumber": _text(20),
                "telephone1": _text(50),
                "fax": _text(50),
                "emailaddress1": _text(100),
                "websiteurl": _text(200),
                "address1_line1": _text(250),
                "address1_city": _text(80),
                "address1_stateorprovince": _text(50),
                "address1_postalcode": _text(20),
                "address1_county": _text(50),
                "address1_country": _text(80),
                "address2_line1": _text(250),
                "address2_city": _text(80),
                "address2_stateorprovince": _text(50),
                "address2_postalcode": _text(20),
                "address2_country": _text(80),
                "creditlimit": S("Edm.Decimal"),
                "numberofemployees": S("Edm.Int32"),
                "description": _text(2000),
                "customertypecode": S("Edm.Int32"),
                "statecode": S("Edm.Int32", nullable=False),
                "statuscode": S("Edm.Int32"),
                "paymenttermscode": S("Edm.Int32"),
                "address1_freighttermscode": S("Edm.Int32"),
                "address1_shippingmethodcode": S("Edm.Int32"),
            },
            alt=(("accountnumber",),),
            lookups={"transactioncurrencyid": "transactioncurrencies"},
            defaults={"statecode": 0, "statuscode": 1},
        ),
        _dv(
            "transactioncurrencies",
            "transactioncurrency",
            {
                "isocurrencycode": _text(5),
                "currencyname": _text(100),
                "currencysymbol": _text(10),
                "exchangerate": S("Edm.Decimal"),
                "statecode": S("Edm.Int32", nullable=False),
            },
            alt=(("isocurrencycode",),),
            defaults={"statecode": 0},
        ),
    ]
}

# Max lengths of F&O string properties the sandbox enforces (extended data types of the
# underlying tables: CustAccount 20, Name 100, ...); others are unbounded here.
FNO_MAX_LENGTHS: dict[str, dict[str, int]] = {
    "CustomersV3": {
        "CustomerAccount": 20,
        "OrganizationName": 100,
        "CustomerGroupId": 10,
        "SalesCurrencyCode": 3,
        "PaymentTerms": 10,
        "LanguageId": 7,
        "PrimaryContactEmail": 255,
        "PrimaryContactPhone": 255,
        "DeliveryAddressCountryRegionISOCode": 10,
        "InvoiceAddressCountryRegionISOCode": 10,
    },
}


@cache
def fno_schema() -> dict[str, EntitySchema]:
    raw = json.loads((DATA / "fno-entities.json").read_text())["entities"]
    out: dict[str, EntitySchema] = {}
    for name, spec in raw.items():
        limits = FNO_MAX_LENGTHS.get(name, {})
        props = {
            prop: Prop(type=t, nullable=bool(nullable), max_length=limits.get(prop))
            for prop, (t, nullable) in spec["properties"].items()
        }
        out[name] = EntitySchema(entity_set=name, entity_type=name, keys=tuple(spec["keys"]), props=props)
    return out
