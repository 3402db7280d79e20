"""`$metadata` (CSDL XML) generated from the same schema the sandbox serves."""

from __future__ import annotations

from xml.sax.saxutils import quoteattr

from p2c_sandbox.enums import fno_enums
from p2c_sandbox.schema import EntitySchema


def _type(t: str, namespace: str) -> str:
    return f"{namespace}.{t[5:]}" if t.startswith("enum:") else t


def build_csdl(namespace: str, schemas: dict[str, EntitySchema], container: str) -> str:
    enums = sorted({p.type[5:] for s in schemas.values() for p in s.props.values() if p.type.startswith("enum:")})
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        '<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">',
        "<edmx:DataServices>",
        f'<Schema Namespace="{namespace}" xmlns="http://docs.oasis-open.org/odata/ns/edm">',
    ]
    for enum in enums:
        members = fno_enums().get(enum) or ()
        out.append(f'<EnumType Name="{enum}">')
        out += [f'<Member Name="{m}" Value="{v}"/>' for m, v in members]
        out.append("</EnumType>")
    for s in schemas.values():
        out.append(f'<EntityType Name="{s.entity_type}">')
        out.append("<Key>" + "".join(f'<PropertyRef Name="{k}"/>' for k in s.keys) + "</Key>")
        for name, prop in s.props.items():
            attrs = f'Name={quoteattr(name)} Type="{_type(prop.type, namespace)}"'
            if not prop.nullable:
                attrs += ' Nullable="false"'
            if prop.max_length:
                attrs += f' MaxLength="{prop.max_length}"'
            out.append(f"<Property {attrs}/>")
        for nav, target in s.lookups.items():
            ref = schemas[target]
            partner = next(
                (n for n, (child, back) in ref.collections.items() if (child, back) == (s.entity_set, nav)), None
            )
            out.append(
                f'<NavigationProperty Name="{nav}" Type="{namespace}.{ref.entity_type}"'
                + (f' Partner="{partner}">' if partner else ">")
                + f'<ReferentialConstraint Property="_{s.lookup_columns.get(nav, nav)}_value" '
                f'ReferencedProperty="{ref.keys[0]}"/></NavigationProperty>'
            )
        for nav, (child, back) in s.collections.items():
            out.append(
                f'<NavigationProperty Name="{nav}" Type="Collection({namespace}.{schemas[child].entity_type})" '
                f'Partner="{back}"/>'
            )
        if s.alternate_keys:
            out.append('<Annotation Term="OData.Community.Keys.V1.AlternateKeys"><Collection>')
            for alt in s.alternate_keys:
                refs = "".join(
                    '<Record Type="OData.Community.Keys.V1.PropertyRef">'
                    f'<PropertyValue Property="Alias" String="{c}"/>'
                    f'<PropertyValue Property="Name" PropertyPath="{c}"/></Record>'
                    for c in alt
                )
                out.append(
                    '<Record Type="OData.Community.Keys.V1.AlternateKey"><PropertyValue Property="Key">'
                    f"<Collection>{refs}</Collection></PropertyValue></Record>"
                )
            out.append("</Collection></Annotation>")
        out.append("</EntityType>")
    out.append(f'<EntityContainer Name="{container}">')
    for s in schemas.values():
        out.append(f'<EntitySet Name="{s.entity_set}" EntityType="{namespace}.{s.entity_type}"/>')
    out += ["</EntityContainer>", "</Schema>", "</edmx:DataServices>", "</edmx:Edmx>"]
    return "\n".join(out)
