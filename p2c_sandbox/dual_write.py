"""Dual-write's company model on the sandbox's Dataverse tables (`Companies.DUAL_WRITE`).

"Company concept in Dataverse" (dual-write, learn.microsoft.com/dynamics365/fin-ops-core/
dev-itpro/data-entities/dual-write/company-data): Dataverse has no company, so dual-write adds
the table cdm_Company, one row per F&O legal entity, and company-specific tables get a lookup
to it (`msdyn_company`, read as `_msdyn_company_value`, bound by `msdyn_company@odata.bind`);
rows are keyed by number *and* company: the account map's integration key is
`accountnumber` + `msdyn_company.cdm_companycode` ("Party and global address book
troubleshooting", integration keys). So in this mode the account number is unique per
company (alternate key accountnumber + msdyn_company) instead of across the org, as
Microsoft's P2C solution keeps it (schema.py's key on accountnumber alone).
"""

from __future__ import annotations

import dataclasses

from p2c_sandbox.schema import EntitySchema, Prop, _dv

COMPANY_SET = "cdm_companies"
COMPANY_TABLE = "cdm_company"
# Company-specific tables that carry the lookup (the sandbox's; dual-write stripes more).
STRIPED = ("accounts", "contacts", "quotes", "salesorders", "invoices", "products")
COMPANY_COLUMN = "_msdyn_company_value"


def company_table() -> EntitySchema:
    # Column lengths are not in the sources read: unbounded here (docs/fidelity.md).
    return _dv(
        COMPANY_SET, COMPANY_TABLE, {"cdm_companycode": Prop("Edm.String"), "cdm_name": Prop("Edm.String")},
        alt=(("cdm_companycode",),),
    )  # fmt: skip


def _striped(schema: EntitySchema) -> EntitySchema:
    props = {**schema.props, COMPANY_COLUMN: Prop("Edm.Guid")}
    lookups = {**schema.lookups, "msdyn_company": COMPANY_SET}
    alt = schema.alternate_keys
    if schema.entity_set == "accounts":  # one account number per company
        alt = tuple((*key, COMPANY_COLUMN) if key == ("accountnumber",) else key for key in alt)
    return dataclasses.replace(schema, props=props, lookups=lookups, alternate_keys=alt)


def layer(schemas: dict[str, EntitySchema]) -> dict[str, EntitySchema]:
    """The tables with dual-write's company model: cdm_companies and the msdyn_company lookups."""
    out = {name: _striped(schema) if name in STRIPED else schema for name, schema in schemas.items()}
    out[COMPANY_SET] = company_table()
    return out
