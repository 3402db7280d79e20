"""How much of the several-companies demo data the seed holds (`p2c sandbox --companies`)."""

from __future__ import annotations

from enum import StrEnum


class Companies(StrEnum):
    # The business units, teams and users of both companies and demf's F&O data, but every
    # Sales row in Contoso US: one-company p2c sees exactly what it always saw.
    ONE = "one"
    # Also Sales rows of Contoso DE (accounts, contacts, quotes, orders owned by its team).
    BUSINESS_UNITS = "business-units"
    # Also dual-write's company model: cdm_companies and the msdyn_company lookups, every
    # Sales row stamped with its company, one account number in both companies.
    DUAL_WRITE = "dual-write"
