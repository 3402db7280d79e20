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
    # A Dataverse DateTime column of format DateOnly but UserLocal behaviour (requestdeliveryby):
    # an Edm.DateTimeOffset on the wire; only DateOnly *behaviour* makes an Edm.Date.
    date_only: bool = False
    # A Dataverse choice column's option values: any other value is refused on write.
    options: tuple[int, ...] | None = None


@dataclass
class EntitySchema:
    entity_set: str
    entity_type: str
    keys: tuple[str, ...]
    props: dict[str, Prop]
    alternate_keys: tuple[tuple[str, ...], ...] = ()
    # Dataverse lookups: navigation property -> target entity set; stored in `_<column>_value`
    # where the column is `lookup_columns[nav]` (polymorphic lookups: customerid_account
    # and customerid_contact share _customerid_value) or the navigation property itself.
    lookups: dict[str, str] = field(default_factory=dict)
    lookup_columns: dict[str, str] = field(default_factory=dict)
    # Columns the server numbers on create when the client leaves them out: column -> prefix.
    autonumber: dict[str, str] = field(default_factory=dict)
    # Document lines: the lookup to the header, whose totals (and so version) change
    # whenever a line is written or deleted, as Dataverse recalculates them.
    parent: str | None = None
    # Columns the server maintains; a client may not write them.
    server_columns: frozenset[str] = frozenset()
    defaults: dict[str, object] = field(default_factory=dict)
    track_changes: bool = False
    # Collection-valued navigation properties (one-to-many relationships): name ->
    # (child entity set, the child's single-valued navigation property back to this table).
    collections: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The table's OwnershipType (the reference's `ownership`): UserOwned tables carry ownerid
    # and the owning* columns the server derives from it (p2c_sandbox.ownership).
    ownership: str = "OrganizationOwned"


def _entity_type(entity_set: str) -> str:
    return entity_set[:-3] + "y" if entity_set.endswith("ies") else entity_set.removesuffix("s")


def _dv(
    entity_set: str,
    entity_type: str,
    columns: dict[str, Prop],
    *,
    alt: tuple[tuple[str, ...], ...] = (),
    lookups: dict[str, str | tuple[str, ...]] | None = None,
    defaults: dict[str, object] | None = None,
    autonumber: dict[str, str] | None = None,
    parent: str | None = None,
    ownership: str = "OrganizationOwned",
) -> EntitySchema:
    key = f"{entity_type}id"
    props = {key: Prop("Edm.Guid", nullable=False), **columns}
    navs: dict[str, str] = {}
    nav_columns: dict[str, str] = {}
    for column, targets in (lookups or {}).items():
        props[f"_{column}_value"] = Prop("Edm.Guid")
        if isinstance(targets, str):
            navs[column] = targets
            continue
        for target in targets:  # polymorphic: one navigation property per table
            nav = f"{column}_{_entity_type(target)}"
            navs[nav], nav_columns[nav] = target, column
    server = {key, "createdon", "modifiedon", "versionnumber"}
    if ownership == "UserOwned":
        props["owneridtype"] = Prop("Edm.String")
        for column, target in _OWNED.items():
            props[f"_{column}_value"] = Prop("Edm.Guid")
            navs[column] = target
        # The owning* columns are the server's (not valid for create or update in the
        # reference); a line's owner is its document's.
        server |= {f"_{c}_value" for c in _OWNED if c != "ownerid" or parent is not None}
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
        lookups=navs,
        lookup_columns=nav_columns,
        server_columns=frozenset(server),
        defaults=dict(defaults or {}),
        track_changes=True,
        autonumber=dict(autonumber or {}),
        parent=parent,
        ownership=ownership,
    )


S = Prop  # short alias for the tables below


def _text(n: int) -> Prop:
    return Prop("Edm.String", max_length=n)


def _address(prefix: str, *, county: bool = True) -> dict[str, Prop]:
    cols = {
        f"{prefix}_line1": _text(250),
        f"{prefix}_city": _text(80),
        f"{prefix}_stateorprovince": _text(50),
        f"{prefix}_postalcode": _text(20),
        f"{prefix}_country": _text(80),
    }
    if county:
        cols[f"{prefix}_county"] = _text(50)
    return cols


# Requested delivery date on quotes, orders and their lines: Type DateTime, DateTimeBehavior
# UserLocal, Format DateOnly (the quote, salesorder, quotedetail, salesorderdetail references).
_REQUESTED_DATE = S("Edm.DateTimeOffset", date_only=True)


def _document_header() -> dict[str, Prop]:
    """Columns quotes and orders share."""
    return {
        "requestdeliveryby": _REQUESTED_DATE,
        **_address("shipto", county=False),
        "shipto_line2": _text(250),
        "paymenttermscode": S("Edm.Int32"),
        "shippingmethodcode": S("Edm.Int32"),
        "freighttermscode": S("Edm.Int32"),
        "totalamount": S("Edm.Decimal"),
        "discountamount": S("Edm.Decimal"),
        "totaltax": S("Edm.Decimal"),
        "freightamount": S("Edm.Decimal"),
    }


# The org's application user that requests run as unless they name another (MSCRMCallerID):
# it owns the rows it creates (p2c_sandbox.organization installs it in the root business unit).
ADMIN_USER = "5e1f0000-0000-4000-8000-000000000001"
# User-owned tables' owner columns (the reference's Owner and owning* lookups): navigation
# property -> target set. `ownerid` binds a user or a team (p2c_sandbox.ownership); the
# target here is what `$metadata` and `$expand` use for it.
_OWNED: dict[str, str] = {
    "ownerid": "systemusers",
    "owninguser": "systemusers",
    "owningteam": "teams",
    "owningbusinessunit": "businessunits",
}
USER_OWNED = "UserOwned"

_HEADER_LOOKUPS: dict[str, str | tuple[str, ...]] = {
    "customerid": ("accounts", "contacts"),
    "transactioncurrencyid": "transactioncurrencies",
    "pricelevelid": "pricelevels",
}
_LINE_LOOKUPS: dict[str, str | tuple[str, ...]] = {"productid": "products", "uomid": "uoms"}
_LINE: dict[str, Prop] = {
    "sequencenumber": S("Edm.Int32"),
    "quantity": S("Edm.Decimal"),
    "priceperunit": S("Edm.Decimal"),
    "manualdiscountamount": S("Edm.Decimal"),
    "extendedamount": S("Edm.Decimal"),
    "tax": S("Edm.Decimal"),
    "requestdeliveryby": _REQUESTED_DATE,
    "description": _text(2000),
    # A write-in line: no product, a description instead (Sales' "write-in product").
    "isproductoverridden": S("Edm.Boolean"),
    "productdescription": _text(500),
}

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
            lookups={"transactioncurrencyid": "transactioncurrencies", "primarycontactid": "contacts"},
            defaults={"statecode": 0, "statuscode": 1},
            ownership=USER_OWNED,
        ),
        _dv(
            "systemusers",
            "systemuser",
            {
                "fullname": _text(200),
                "firstname": _text(256),
                "lastname": _text(256),
                "domainname": _text(1024),
                "internalemailaddress": _text(100),
                "isdisabled": S("Edm.Boolean"),
            },
            lookups={"businessunitid": "businessunits"},
            defaults={"isdisabled": False},
            ownership="BusinessOwned",
        ),
        _dv(
            "businessunits",
            "businessunit",
            {"name": _text(160), "divisionname": _text(100), "isdisabled": S("Edm.Boolean")},
            lookups={"parentbusinessunitid": "businessunits"},
            defaults={"isdisabled": False},
            ownership="BusinessOwned",
        ),
        _dv(
            "teams",
            "team",
            {
                "name": _text(160),
                "description": _text(2000),
                "isdefault": S("Edm.Boolean"),
                "teamtype": S("Edm.Int32", options=(0, 1, 2, 3)),
            },
            lookups={"businessunitid": "businessunits", "administratorid": "systemusers"},
            defaults={"teamtype": 0, "isdefault": False},
            ownership="BusinessOwned",
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
        _dv(
            "contacts",
            "contact",
            {
                "firstname": _text(50),
                "middlename": _text(50),
                "lastname": _text(50),
                "fullname": _text(160),
                "jobtitle": _text(100),
                "department": _text(100),
                "emailaddress1": _text(100),
                "telephone1": _text(50),
                "fax": _text(50),
                "websiteurl": _text(200),
                **_address("address1", county=False),
                "description": _text(2000),
                "statecode": S("Edm.Int32", nullable=False),
            },
            lookups={
                "parentcustomerid": ("accounts", "contacts"),
                "transactioncurrencyid": "transactioncurrencies",
            },
            defaults={"statecode": 0},
            ownership=USER_OWNED,
        ),
        _dv("uomschedules", "uomschedule", {"name": _text(200)}),
        _dv(
            "uoms", "uom", {"name": _text(100), "quantity": S("Edm.Decimal")}, lookups={"uomscheduleid": "uomschedules"}
        ),
        _dv(
            "pricelevels",
            "pricelevel",
            {"name": _text(100), "statecode": S("Edm.Int32", nullable=False)},
            lookups={"transactioncurrencyid": "transactioncurrencies"},
            defaults={"statecode": 0},
        ),
        _dv(
            "products",
            "product",
            {
                "productnumber": _text(100),
                "name": _text(100),
                "description": _text(2000),
                "price": S("Edm.Decimal"),
                "currentcost": S("Edm.Decimal"),
                "producttypecode": S("Edm.Int32"),
                "quantitydecimal": S("Edm.Int32"),
                "statecode": S("Edm.Int32", nullable=False),
            },
            alt=(("productnumber",),),
            lookups={
                "defaultuomid": "uoms",
                "defaultuomscheduleid": "uomschedules",
                "transactioncurrencyid": "transactioncurrencies",
                "pricelevelid": "pricelevels",  # Default Price List
            },
            defaults={"statecode": 0},
        ),
        _dv(
            "productpricelevels",
            "productpricelevel",
            {"amount": S("Edm.Decimal")},
            lookups={"pricelevelid": "pricelevels", "productid": "products", "uomid": "uoms"},
        ),
        _dv(
            "quotes",
            "quote",
            {
                "quotenumber": _text(100),
                "name": _text(300),
                **_document_header(),
                "statecode": S("Edm.Int32", nullable=False),
                "statuscode": S("Edm.Int32"),
                # Revise keeps the quote number: each revision is its own row (quote reference,
                # RevisionNumber "Revision ID", Integer, not valid for create or update).
                "revisionnumber": S("Edm.Int32"),
            },
            alt=(("quotenumber", "revisionnumber"),),
            lookups=_HEADER_LOOKUPS,
            defaults={"statecode": 0, "statuscode": 1, "revisionnumber": 0},
            autonumber={"quotenumber": "QUO-"},
            ownership=USER_OWNED,
        ),
        _dv(
            "quotedetails",
            "quotedetail",
            _LINE,
            lookups={"quoteid": "quotes", **_LINE_LOOKUPS},
            parent="quoteid",
            ownership=USER_OWNED,
        ),
        _dv(
            "salesorders",
            "salesorder",
            {
                "ordernumber": _text(100),
                "name": _text(300),
                **_document_header(),
                "statecode": S("Edm.Int32", nullable=False),
            },
            alt=(("ordernumber",),),
            lookups=_HEADER_LOOKUPS,
            defaults={"statecode": 0},
            autonumber={"ordernumber": "ORD-"},
            ownership=USER_OWNED,
        ),
        _dv(
            "salesorderdetails",
            "salesorderdetail",
            _LINE,
            lookups={"salesorderid": "salesorders", **_LINE_LOOKUPS},
            parent="salesorderid",
            ownership=USER_OWNED,
        ),
        _dv(
            "invoices",
            "invoice",
            {
                "invoicenumber": _text(100),
                "name": _text(300),
                "totalamount": S("Edm.Decimal"),
                "totaltax": S("Edm.Decimal"),
                "freightamount": S("Edm.Decimal"),
                "totaldiscountamount": S("Edm.Decimal"),
                **_address("billto", county=False),
                "statecode": S("Edm.Int32", nullable=False),
            },
            alt=(("invoicenumber",),),
            lookups={"salesorderid": "salesorders", **_HEADER_LOOKUPS},
            defaults={"statecode": 0},
            autonumber={"invoicenumber": "INV-"},
            ownership=USER_OWNED,
        ),
        _dv(
            "invoicedetails",
            "invoicedetail",
            _LINE,
            lookups={"invoiceid": "invoices", **_LINE_LOOKUPS},
            parent="invoiceid",
            ownership=USER_OWNED,
        ),
    ]
}

# One-to-many relationships by the names Dataverse gives their collection-valued navigation
# properties (`$expand=quote_details(...)`): parent set -> name -> (child set, child's lookup).
_COLLECTIONS: dict[str, dict[str, tuple[str, str]]] = {
    "accounts": {
        "contact_customer_accounts": ("contacts", "parentcustomerid_account"),
        "quote_customer_accounts": ("quotes", "customerid_account"),
        "order_customer_accounts": ("salesorders", "customerid_account"),
        "invoice_customer_accounts": ("invoices", "customerid_account"),
    },
    "contacts": {
        "contact_customer_contacts": ("contacts", "parentcustomerid_contact"),
        "quote_customer_contacts": ("quotes", "customerid_contact"),
        "order_customer_contacts": ("salesorders", "customerid_contact"),
        "invoice_customer_contacts": ("invoices", "customerid_contact"),
        "account_primary_contact": ("accounts", "primarycontactid"),
    },
    "quotes": {"quote_details": ("quotedetails", "quoteid")},
    "salesorders": {
        "order_details": ("salesorderdetails", "salesorderid"),
        "order_invoices": ("invoices", "salesorderid"),
    },
    "invoices": {"invoice_details": ("invoicedetails", "invoiceid")},
    "products": {"product_price_levels": ("productpricelevels", "productid")},
    "pricelevels": {"price_level_product_price_levels": ("productpricelevels", "pricelevelid")},
}
for _parent, _navs in _COLLECTIONS.items():
    for _child, _back in _navs.values():
        assert DATAVERSE[_child].lookups[_back] == _parent, (_parent, _child, _back)  # a typo fails at import
    DATAVERSE[_parent].collections.update(_navs)

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
