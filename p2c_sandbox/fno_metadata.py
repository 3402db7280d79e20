"""F&O's metadata service (`/Metadata/...`), generated from the entities and enums the sandbox serves.

F&O client libraries read it to discover entities and enums before they touch `/data/`:
`DataEntities` (one row per data entity: its AOT name, public entity and collection names,
whether OData and data management serve it), `PublicEntities` (a public entity with its
properties, keys and navigation properties), `PublicEnumerations` (an enum with its members).
Each answers a collection (`value`) or one item by name (`PublicEntities('CustomerV3')`),
with `$filter`, `$select` and `$top`. Read only.

The data entities' AOT names are `<public name>Entity` except where DATA_ENTITY_NAMES says
otherwise; labels are the property names (docs/fidelity.md).
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from p2c_sandbox.enums import fno_enums
from p2c_sandbox.query import QueryError, parse_filter
from p2c_sandbox.schema import EntitySchema
from p2c_sandbox.service import ServiceError

ROOT = "/Metadata/"
NS = "Microsoft.Dynamics.Metadata"
# Public entity names (singular) of the collections, where dropping a trailing "s" is wrong.
PUBLIC_NAMES = {"CustomersV3": "CustomerV3", "LegalEntities": "LegalEntity"}
# AOT names of the data entities that a public page names ("Customers V3": CustCustomerV3Entity).
DATA_ENTITY_NAMES = {"CustomersV3": "CustCustomerV3Entity", "LegalEntities": "OMLegalEntity"}
CATEGORIES = {"CustomersV3": "Master", "CDSContactPersons": "Master", "CDSReleasedDistinctProducts": "Master",
              "LegalEntities": "Reference"}  # fmt: skip
_ITEM = re.compile(r"(?P<set>DataEntities|PublicEntities|PublicEnumerations)(?:\('(?P<name>(?:[^']|'')*)'\))?/?")
_ENUM_LITERAL = re.compile(rf"{re.escape(NS)}\.\w+('(?:[^']|'')*')")
# The X++ data types behind the OData types, as the service's DataType says them.
_DATA_TYPES = {
    "Edm.String": "String", "Edm.Int32": "Integer", "Edm.Int64": "Int64", "Edm.Decimal": "Real",
    "Edm.Double": "Real", "Edm.Boolean": "Enum", "Edm.Guid": "Guid", "Edm.DateTimeOffset": "UtcDateTime",
    "Edm.Date": "Date",
}  # fmt: skip


def _bad(message: str) -> ServiceError:
    return ServiceError(400, "", message)


def public_name(entity_set: str) -> str:
    return PUBLIC_NAMES.get(entity_set, entity_set.removesuffix("s"))


def _property(schema: EntitySchema, name: str) -> dict[str, Any]:
    prop = schema.props[name]
    enum = prop.type[5:] if prop.type.startswith("enum:") else None
    return {
        "Name": name,
        "TypeName": enum or prop.type,
        "DataType": "Enum" if enum else _DATA_TYPES.get(prop.type, "String"),
        "LabelId": name,
        "IsKey": name in schema.keys,
        "IsMandatory": name in schema.keys or not prop.nullable,
        "ConfigurationEnabled": True,
        # A key is set on create and never changed (a PATCH of one is refused).
        "AllowEdit": name not in schema.keys,
        "AllowEditOnCreate": True,
        "IsDimension": False,
    }


_BUILT: dict[int, dict[str, list[dict[str, Any]]]] = {}


def _documents(schemas: dict[str, EntitySchema]) -> dict[str, list[dict[str, Any]]]:
    if id(schemas) not in _BUILT:
        _BUILT[id(schemas)] = _build(list(schemas.values()))
    return _BUILT[id(schemas)]


def _build(schemas: list[EntitySchema]) -> dict[str, list[dict[str, Any]]]:
    data_entities: list[dict[str, Any]] = []
    public_entities: list[dict[str, Any]] = []
    for schema in schemas:
        name = public_name(schema.entity_set)
        data_entities.append({
            "Name": DATA_ENTITY_NAMES.get(schema.entity_set, f"{name}Entity"),
            "PublicEntityName": name,
            "PublicCollectionName": schema.entity_set,
            "LabelId": name,
            "DataServiceEnabled": True,
            "DataManagementEnabled": True,
            "EntityCategory": CATEGORIES.get(schema.entity_set, "Document"),
            "IsReadOnly": False,
        })  # fmt: skip
        public_entities.append({
            "Name": name,
            "EntitySetName": schema.entity_set,
            "LabelId": name,
            "IsReadOnly": False,
            "ConfigurationEnabled": True,
            "Properties": [_property(schema, p) for p in schema.props],
            "NavigationProperties": [],  # the P2C entities define none (fno-entities.json)
            "PropertyGroups": [],
            "Actions": [],
        })  # fmt: skip
    used = {p.type[5:] for s in schemas for p in s.props.values() if p.type.startswith("enum:")}
    enumerations = [
        {
            "Name": enum,
            "LabelId": enum,
            "Members": [
                {"Name": m, "Value": v, "LabelId": m, "ConfigurationEnabled": True} for m, v in (members or ())
            ],
        }
        for enum, members in sorted(fno_enums().items())
        if enum in used
    ]
    return {"DataEntities": data_entities, "PublicEntities": public_entities, "PublicEnumerations": enumerations}


def answer(schemas: dict[str, EntitySchema], request: Request, path: str, base: str) -> Response:
    """One metadata service request (`path` after /Metadata/)."""
    if request.method != "GET":
        raise ServiceError(405, "", "The metadata service is read only.")
    match = _ITEM.fullmatch(unquote(path))
    if match is None:
        raise ServiceError(404, "", "No resource was found matching the request URL.")
    docs = _documents(schemas)[match["set"]]
    context = f"{base}{ROOT}$metadata#{match['set']}"
    params = dict(request.query_params)
    if match["name"] is not None:
        name = match["name"].replace("''", "'")
        found = next((d for d in docs if d["Name"].casefold() == name.casefold()), None)
        if found is None:
            raise ServiceError(404, "", "No resource was found matching the request URL.")
        return JSONResponse({"@odata.context": context + "/$entity", **_select(found, params)})
    rows = _filtered(docs, params.get("$filter"))
    if "$top" in params:
        try:
            rows = rows[: int(params["$top"])]
        except ValueError:
            raise _bad("$top must be a whole number") from None
    return JSONResponse({"@odata.context": context, "value": [_select(d, params) for d in rows]})


def _filtered(docs: list[dict[str, Any]], expr: str | None) -> list[dict[str, Any]]:
    if not expr:
        return docs
    # Enum literals of the metadata namespace (EntityCategory'Master') compare as their names.
    expr = _ENUM_LITERAL.sub(lambda m: m.group(1), expr)
    try:
        predicate = parse_filter(expr)
        return [d for d in docs if predicate(d)]
    except QueryError as exc:
        raise _bad(str(exc)) from None


def _select(doc: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
    if not params.get("$select"):
        return doc
    cols = [c.strip() for c in params["$select"].split(",") if c.strip()]
    unknown = [c for c in cols if c not in doc]
    if unknown:
        raise _bad(f"Could not find a property named '{unknown[0]}'.")
    return {c: doc[c] for c in cols}
