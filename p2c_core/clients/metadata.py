"""Reading a service's `$metadata` (CSDL XML) to check flow mappings against it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"


@dataclass
class EntitySet:
    name: str
    entity_type: str
    properties: dict[str, str] = field(default_factory=dict)  # name -> Edm type
    navigation: set[str] = field(default_factory=set)
    max_lengths: dict[str, int] = field(default_factory=dict)  # string properties that declare one


def parse_csdl(xml: bytes | str) -> dict[str, EntitySet]:
    """Entity sets with their type's properties (base types followed)."""
    root = ET.fromstring(xml)
    types: dict[str, ET.Element] = {}
    for schema in root.iter(f"{EDM}Schema"):
        namespace = schema.get("Namespace", "")
        for et in schema.findall(f"{EDM}EntityType"):
            types[f"{namespace}.{et.get('Name')}"] = et
            types[str(et.get("Name"))] = et

    def collect(type_name: str, out: EntitySet, depth: int = 0) -> None:
        et = types.get(type_name) or types.get(type_name.rsplit(".", 1)[-1])
        if et is None or depth > 10:
            return
        if base := et.get("BaseType"):
            collect(base, out, depth + 1)
        for prop in et.findall(f"{EDM}Property"):
            out.properties[str(prop.get("Name"))] = str(prop.get("Type"))
            if (length := prop.get("MaxLength", "")).isdigit():
                out.max_lengths[str(prop.get("Name"))] = int(length)
        for nav in et.findall(f"{EDM}NavigationProperty"):
            out.navigation.add(str(nav.get("Name")))

    sets: dict[str, EntitySet] = {}
    for container in root.iter(f"{EDM}EntityContainer"):
        for es in container.findall(f"{EDM}EntitySet"):
            entity_set = EntitySet(name=str(es.get("Name")), entity_type=str(es.get("EntityType")))
            collect(entity_set.entity_type, entity_set)
            sets[entity_set.name] = entity_set
    return sets


def parse_enums(xml: bytes | str) -> dict[str, list[str]]:
    """Enum type name (without namespace) -> its member names, as `$metadata` publishes them."""
    root = ET.fromstring(xml)
    return {
        str(enum.get("Name")): [str(m.get("Name")) for m in enum.findall(f"{EDM}Member")]
        for enum in root.iter(f"{EDM}EnumType")
    }
