"""Dataverse's metadata API (`EntityDefinitions`), generated from the tables the sandbox serves.

Client libraries read it before they read or write rows: the entity set and primary key
of a table (`EntityDefinitions?$filter=LogicalName eq 'account'`), its alternate keys
(`EntityDefinitions(LogicalName='account')/Keys`), its columns (`/Attributes`, typed
casts such as `/Attributes/Microsoft.Dynamics.CRM.PicklistAttributeMetadata` with
`$expand=OptionSet`), to turn choice labels into numbers and to name keys in URLs.

Read only: the sandbox's tables are fixed, so creating tables, columns or keys is refused.
MetadataIds are stable (derived from the logical names) so a client may cache them.
Attribute SchemaNames are the logical names with each word after `_` capitalised: right
for `Address1_City`, not for `AccountNumber`; clients address columns by LogicalName.
"""

from __future__ import annotations

import re
import uuid
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from p2c_sandbox import reference, solution
from p2c_sandbox.query import QueryError, parse_filter, parse_key
from p2c_sandbox.schema import EntitySchema, Prop
from p2c_sandbox.service import ServiceError

NS = "Microsoft.Dynamics.CRM"
LANGUAGE = 1033
_IDS = uuid.UUID("6f1c54a8-3d1b-4b0e-9d3a-0c2b5e7d9a10")  # namespace of the derived MetadataIds

# Schema names and object type codes of the tables, as a Sales org publishes them.
_TABLES: dict[str, tuple[str, int]] = {
    "account": ("Account", 1),
    "systemuser": ("SystemUser", 8),
    "businessunit": ("BusinessUnit", 10),
    "team": ("Team", 9),
    "contact": ("Contact", 2),
    "transactioncurrency": ("TransactionCurrency", 9105),
    "uomschedule": ("UoMSchedule", 1056),
    "uom": ("UoM", 1055),
    "pricelevel": ("PriceLevel", 1022),
    "product": ("Product", 1024),
    "productpricelevel": ("ProductPriceLevel", 1026),
    "quote": ("Quote", 1084),
    "quotedetail": ("QuoteDetail", 1085),
    "salesorder": ("SalesOrder", 1088),
    "salesorderdetail": ("SalesOrderDetail", 1089),
    "invoice": ("Invoice", 1090),
    "invoicedetail": ("InvoiceDetail", 1091),
    solution.AUTONUMBER_TABLE: ("msdynce_P2CAutoNumber", 10_001),  # a solution's table: a custom type code
}
_PRIMARY_NAME = {"contact": "fullname", "transactioncurrency": "currencyname", "systemuser": "fullname"}

# Choice columns and their options (value, label); docs/APIS.md and a Sales org's defaults.
_CHOICES: dict[str, list[tuple[int, str]]] = {
    "customertypecode": [
        (1, "Competitor"), (2, "Consultant"), (3, "Customer"), (4, "Investor"), (5, "Partner"), (6, "Influencer"),
        (7, "Press"), (8, "Prospect"), (9, "Reseller"), (10, "Supplier"), (11, "Vendor"), (12, "Other"),
    ],
    "paymenttermscode": [(1, "Net 30"), (2, "2% 10, Net 30"), (3, "Net 45"), (4, "Net 60")],
    "address1_freighttermscode": [(1, "FOB"), (2, "No Charge")],
    "freighttermscode": [(1, "FOB"), (2, "No Charge")],
    "address1_shippingmethodcode": [
        (1, "Airborne"), (2, "DHL"), (3, "FedEx"), (4, "UPS"), (5, "Postal Mail"), (6, "Full Load"), (7, "Will Call"),
    ],
    "shippingmethodcode": [
        (1, "Airborne"), (2, "DHL"), (3, "FedEx"), (4, "UPS"), (5, "Postal Mail"), (6, "Full Load"), (7, "Will Call"),
    ],
    "statecode": [(0, "Active"), (1, "Inactive")],
    "statuscode": [(1, "Active"), (2, "Inactive")],
    **solution.choices(),  # msdynce_processingstatus; only on tables with the solution's columns
}  # fmt: skip
_MONEYLESS_DECIMALS = {"quantity", "exchangerate"}  # Decimal columns; the others are currency (Money)
_PATH = re.compile(
    r"EntityDefinitions(?:\((?P<entity>[^)]*)\))?"
    r"(?:/(?P<nav>Attributes|Keys)(?:\((?P<item>[^)]*)\))?(?:/(?P<cast>Microsoft\.Dynamics\.CRM\.\w+))?)?/?"
)


def _id(*parts: str) -> str:
    return str(uuid.uuid5(_IDS, "/".join(parts)))


def _label(text: str) -> dict[str, Any]:
    localized = {"Label": text, "LanguageCode": LANGUAGE, "IsManaged": True, "MetadataId": _id("label", text)}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}


def _schema_name(logical: str) -> str:
    return "_".join(part[:1].upper() + part[1:] for part in logical.split("_"))


def _bad(message: str) -> ServiceError:
    return ServiceError(400, "0x80060888", message)


def _not_found(what: str) -> ServiceError:
    return ServiceError(404, "0x80040217", f"Could not find {what}.")


class Metadata:
    """The metadata documents of every table, built once from the sandbox's schemas."""

    def __init__(self, schemas: dict[str, EntitySchema]) -> None:
        self.entities: list[dict[str, Any]] = []
        self.attributes: dict[str, list[dict[str, Any]]] = {}
        self.keys: dict[str, list[dict[str, Any]]] = {}
        for schema in schemas.values():
            logical = schema.entity_type
            self.entities.append(self.entity(schema))
            self.attributes[logical] = self.columns(schema, schemas)
            self.keys[logical] = [
                {
                    "@odata.type": f"#{NS}.EntityKeyMetadata",
                    "MetadataId": _id(logical, "key", *cols),
                    "LogicalName": f"p2c_{'_'.join(cols)}",
                    "SchemaName": f"p2c_{'_'.join(cols)}",
                    "EntityLogicalName": logical,
                    "KeyAttributes": list(cols),
                    "EntityKeyIndexStatus": "Active",
                    "IsManaged": True,
                    "DisplayName": _label(" ".join(cols)),
                }
                for cols in schema.alternate_keys
            ]

    @staticmethod
    def entity(schema: EntitySchema) -> dict[str, Any]:
        logical = schema.entity_type
        schema_name, type_code = _TABLES.get(logical, (_schema_name(logical), 10_000))
        primary_name = _PRIMARY_NAME.get(logical, "name" if "name" in schema.props else None)
        return {
            "@odata.type": f"#{NS}.EntityMetadata",
            "MetadataId": _id(logical),
            "LogicalName": logical,
            "SchemaName": schema_name,
            "EntitySetName": schema.entity_set,
            "LogicalCollectionName": schema.entity_set,
            "CollectionSchemaName": schema_name + "s",
            "ObjectTypeCode": type_code,
            "PrimaryIdAttribute": schema.keys[0],
            "PrimaryNameAttribute": primary_name,
            "ChangeTrackingEnabled": schema.track_changes,
            # A BooleanManagedProperty (EntityMetadata.CanChangeTrackingBeEnabled): discovery
            # clients read it to offer incremental reads.
            "CanChangeTrackingBeEnabled": {"Value": True, "CanBeChanged": False,
                                           "ManagedPropertyLogicalName": "canchangetrackingbeenabled"},
            "IsCustomEntity": False,
            "IsManaged": True,
            "IsActivity": False,
            # The reference's OwnershipType, else the table's (schema.py: UserOwned tables carry ownerid).
            "OwnershipType": reference.tables().get(logical, {}).get("ownership") or schema.ownership,
            "DisplayName": _label(schema_name),
            "DisplayCollectionName": _label(schema_name + "s"),
            "Description": _label(""),
        }  # fmt: skip

    @staticmethod
    def columns(schema: EntitySchema, schemas: dict[str, EntitySchema]) -> list[dict[str, Any]]:
        logical = schema.entity_type
        lookups: dict[str, list[str]] = {}
        for nav, target in schema.lookups.items():
            lookups.setdefault(schema.lookup_columns.get(nav, nav), []).append(schemas[target].entity_type)
        primary_name = Metadata.entity(schema)["PrimaryNameAttribute"]
        out: list[dict[str, Any]] = []
        for name, prop in schema.props.items():
            column = name[1:-6] if name.startswith("_") and name.endswith("_value") else name
            doc: dict[str, Any] = {
                "MetadataId": _id(logical, "attribute", column),
                "LogicalName": column,
                "SchemaName": _schema_name(column),
                "EntityLogicalName": logical,
                "IsPrimaryId": name == schema.keys[0],
                "IsPrimaryName": column == primary_name,
                "IsCustomAttribute": column.startswith(("msdyn_", "msdynce_", "p2c_")),
                "IsValidForCreate": name not in schema.server_columns,
                "IsValidForUpdate": name not in schema.server_columns,
                "IsValidForRead": True,
                "RequiredLevel": {"Value": "SystemRequired" if not prop.nullable else "None", "CanBeChanged": False},
                "DisplayName": _label(column),
                "Description": _label(""),
            }
            spec = reference.column(logical, column)
            if spec is not None:  # what Microsoft's table reference says of a standard column
                doc["IsValidForCreate"] = spec["valid_for_create"] and name not in schema.server_columns
                doc["IsValidForUpdate"] = spec["valid_for_update"] and name not in schema.server_columns
                doc["RequiredLevel"]["Value"] = spec["required_level"]
            kind, extra = _kind(column, prop, lookups.get(column)) if spec is None else _kind_of(column, spec)
            doc["@odata.type"] = f"#{NS}.{_METADATA_TYPES.get(kind, kind)}AttributeMetadata"
            doc["AttributeType"] = kind
            doc["AttributeTypeName"] = {"Value": f"{kind}Type"}
            out.append({"@odata.type": doc.pop("@odata.type"), **doc, **extra})
        return out


def _kind(column: str, prop: Prop, targets: list[str] | None) -> tuple[str, dict[str, Any]]:
    """The AttributeType of a column and the properties its metadata type adds."""
    if targets is not None:
        return ("Customer" if len(targets) > 1 else "Lookup"), {"Targets": targets}
    t = prop.type
    if t == "Edm.Guid":
        return "Uniqueidentifier", {}
    if t == "Edm.String":
        memo = (prop.max_length or 0) >= 2000
        return ("Memo" if memo else "String"), {"MaxLength": prop.max_length, "Format": "TextArea" if memo else "Text"}
    if t == "Edm.Int32" and (column in _CHOICES or column.endswith("code")):
        kind = {"statecode": "State", "statuscode": "Status"}.get(column, "Picklist")
        options = [{"Value": v, "Label": _label(text)} for v, text in _CHOICES.get(column, [])]
        option_set = {"MetadataId": _id("optionset", column), "Name": column, "OptionSetType": kind, "Options": options}
        return kind, {"DefaultFormValue": -1, "OptionSet": option_set}
    if t == "Edm.Int32":
        return "Integer", {"MinValue": -(2**31), "MaxValue": 2**31 - 1, "Format": "None"}
    if t == "Edm.Int64":
        return "BigInt", {"MinValue": -(2**63), "MaxValue": 2**63 - 1}
    if t in ("Edm.Decimal", "Edm.Double"):
        if column in _MONEYLESS_DECIMALS:
            return "Decimal", {"Precision": 10, "MinValue": -100_000_000_000.0, "MaxValue": 100_000_000_000.0}
        return "Money", {"Precision": 2, "PrecisionSource": 2, "MinValue": -922337203685477.0,
                         "MaxValue": 922337203685477.0}  # fmt: skip
    if t == "Edm.Boolean":
        options = {
            "TrueOption": {"Value": 1, "Label": _label("Yes")},
            "FalseOption": {"Value": 0, "Label": _label("No")},
        }
        return "Boolean", {"DefaultValue": False, "OptionSet": options}
    if t in ("Edm.DateTimeOffset", "Edm.Date"):
        return "DateTime", {"Format": "DateOnly" if t == "Edm.Date" or prop.date_only else "DateAndTime",
                            "DateTimeBehavior": {"Value": "DateOnly" if t == "Edm.Date" else "UserLocal"}}  # fmt: skip
    return "Virtual", {}


def _kind_of(column: str, spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The AttributeType and type properties of a column the table reference describes."""
    kind = spec["type"]
    extra: dict[str, Any] = {}
    if "targets" in spec:
        extra["Targets"] = spec["targets"]
    if "max_length" in spec:
        extra["MaxLength"] = spec["max_length"]
        extra["Format"] = "TextArea" if kind == "Memo" else "Text"
    for fact, name in (("min", "MinValue"), ("max", "MaxValue"), ("precision", "Precision")):
        if fact in spec:
            extra[name] = spec[fact]
    if kind == "Money":
        # The reference's convention: a Money column's `<name>_base` sibling is in the base currency.
        extra["IsBaseCurrency"] = bool(spec.get("is_base_currency", column.endswith("_base")))
    if kind == "DateTime":
        extra["Format"] = spec.get("format", "DateAndTime")
        extra["DateTimeBehavior"] = {"Value": spec.get("datetime_behavior", "UserLocal")}
    options = spec.get("options") or {}
    if kind == "Boolean":
        extra["DefaultValue"] = spec.get("default", False)
        extra["OptionSet"] = {
            "TrueOption": {"Value": 1, "Label": _label(str(options.get("1", "Yes")))},
            "FalseOption": {"Value": 0, "Label": _label(str(options.get("0", "No")))},
        }
    elif kind in ("Picklist", "State", "Status"):
        listed = []
        for value, label in options.items():
            option: dict[str, Any] = {"Value": int(value)}
            if isinstance(label, dict):
                option["Label"] = _label(label["label"])
                if "default_status" in label:
                    option["DefaultStatus"] = label["default_status"]
                if "state" in label:
                    option["State"] = label["state"]
            else:
                option["Label"] = _label(str(label))
            listed.append(option)
        extra["DefaultFormValue"] = spec.get("default", -1)
        extra["OptionSet"] = {"MetadataId": _id("optionset", column), "Name": column, "OptionSetType": kind,
                              "Options": listed}  # fmt: skip
    return kind, extra


# AttributeType -> its metadata type's name where they differ (Customer and Owner columns
# are LookupAttributeMetadata; "Use the Web API with table definitions").
_METADATA_TYPES = {"Uniqueidentifier": "UniqueIdentifier", "Customer": "Lookup", "Owner": "Lookup"}
_BUILT: dict[int, Metadata] = {}


def answer(schemas: dict[str, EntitySchema], request: Request, path: str, root: str) -> Response | None:
    """Answer a metadata API request, or None when `path` is not one (then it is an entity set)."""
    path = unquote(path.split("?", 1)[0])
    if not path.startswith("EntityDefinitions"):
        return None
    metadata = _BUILT.get(id(schemas)) or _BUILT.setdefault(id(schemas), Metadata(schemas))
    match = _PATH.fullmatch(path)
    if match is None:
        raise ServiceError(404, "0x8006088a", f"Resource not found for the segment '{path}'.")
    if request.method != "GET":
        raise ServiceError(405, "0x80060888", "The sandbox's tables are fixed: its metadata is read only.")
    params = dict(request.query_params)
    context = f"{root}$metadata#EntityDefinitions"
    if match["entity"] is None:
        if match["nav"]:
            raise ServiceError(404, "0x8006088a", "Resource not found for the segment 'EntityDefinitions'.")
        return _collection(metadata.entities, params, context, metadata)
    entity = _find(metadata.entities, match["entity"], "an entity")
    logical = entity["LogicalName"]
    context += f"({entity['MetadataId']})"
    if match["nav"] is None:
        return JSONResponse({"@odata.context": context + "/$entity", **_shape(entity, params, metadata)})
    docs = metadata.attributes[logical] if match["nav"] == "Attributes" else metadata.keys[logical]
    context += "/" + match["nav"]
    if match["cast"]:
        wanted = "#" + match["cast"]
        if match["nav"] != "Attributes" or not wanted.endswith("AttributeMetadata"):
            raise _bad(f"The type '{match['cast']}' is not a type of {match['nav']}.")
        docs = [d for d in docs if d["@odata.type"] == wanted]
        context += "/" + match["cast"]
    if match["item"] is None:
        return _collection(docs, params, context, metadata)
    doc = _find(docs, match["item"], f"a {match['nav'][:-1].lower()} of {logical}")
    return JSONResponse({"@odata.context": context + "/$entity", **_shape(doc, params, metadata)})


def _find(docs: list[dict[str, Any]], key_text: str, what: str) -> dict[str, Any]:
    try:
        key = parse_key(key_text)
    except QueryError as exc:
        raise _bad(str(exc)) from None
    if isinstance(key, dict) and set(key) not in ({"LogicalName"}, {"MetadataId"}):
        raise _bad(f"The key {', '.join(key)} is not a key of the metadata type.")
    wanted = ("MetadataId", str(key).lower()) if isinstance(key, str) else next(iter(key.items()))
    for doc in docs:
        if str(doc[wanted[0]]).lower() == str(wanted[1]).lower():
            return doc
    raise _not_found(f"{what} with {wanted[0]} = {wanted[1]}")


def _collection(docs: list[dict[str, Any]], params: dict[str, str], context: str, metadata: Metadata) -> Response:
    # The metadata API does not page: every match comes back at once.
    value = [_shape(d, params, metadata) for d in _filtered(docs, params)]
    return JSONResponse({"@odata.context": context, "value": value})


def _filtered(docs: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    if "$filter" not in params:
        return docs
    try:
        predicate = parse_filter(params["$filter"])
        return [d for d in docs if predicate(d)]
    except QueryError as exc:
        raise _bad(str(exc)) from None


def _shape(doc: dict[str, Any], params: dict[str, str], metadata: Metadata) -> dict[str, Any]:
    """`$select` (the key always comes back) and `$expand` of Attributes, Keys or OptionSet."""
    out = dict(doc)
    if params.get("$select"):
        cols = [c.strip() for c in params["$select"].split(",") if c.strip()]
        for c in cols:
            if c not in doc:
                raise _bad(f"Could not find a property named '{c}' on type '{doc['@odata.type'][1:]}'.")
        out = {k: v for k, v in doc.items() if k in ("@odata.type", "MetadataId", *cols)}
    for name, inner in _expand_items(params.get("$expand", "")):
        nested = _expanded(doc, name, metadata)
        if isinstance(nested, list):
            out[name] = [_shape(d, inner, metadata) for d in _filtered(nested, inner)]
        else:
            out[name] = _shape(nested, inner, metadata)
    return out


def _expand_items(text: str) -> list[tuple[str, dict[str, str]]]:
    """`Attributes($select=LogicalName;$filter=...),Keys` -> [(name, its options)]."""
    items: list[tuple[str, dict[str, str]]] = []
    depth, start = 0, 0
    for i, ch in enumerate(text + ","):
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if ch != "," or depth:
            continue
        item, start = text[start:i].strip(), i + 1
        if not item:
            continue
        match = re.fullmatch(r"(\w+)(?:\((.*)\))?", item)
        if match is None:
            raise _bad(f"Syntax error in $expand at '{item}'")
        options = dict(part.split("=", 1) for part in (match[2] or "").split(";") if "=" in part)
        items.append((match[1], {k.strip(): v.strip() for k, v in options.items()}))
    if depth:
        raise _bad(f"Syntax error in $expand: unbalanced parentheses in '{text}'")
    return items


def _expanded(doc: dict[str, Any], name: str, metadata: Metadata) -> Any:
    if doc["@odata.type"] == f"#{NS}.EntityMetadata" and name in ("Attributes", "Keys"):
        return (metadata.attributes if name == "Attributes" else metadata.keys)[doc["LogicalName"]]
    if name == "OptionSet" and isinstance(doc.get("OptionSet"), dict):
        return {"@odata.type": f"#{NS}.OptionSetMetadata", **doc["OptionSet"]}
    raise _bad(f"Could not find a property named '{name}' on type '{doc['@odata.type'][1:]}'.")
