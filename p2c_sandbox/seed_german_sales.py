"""Contoso DE's Sales rows (`Companies.BUSINESS_UNITS` and `DUAL_WRITE`), created as its
salesperson so Contoso DE owns them: four German customer accounts in EUR, a contact at each,
two quotes and two active orders of products released in demf, and F&O-born orders in demf
of two of those customers. With dual-write's company model every Sales row also gets its
company (msdyn_company: USMF for Contoso US's rows and the products, DEMF for Contoso DE's),
and one account number exists in both companies.

Off by default: one-company p2c (and its tests) read every Sales row of the org.
"""

from __future__ import annotations

import uuid
from typing import Any

from p2c_sandbox.dataverse import DataverseService
from p2c_sandbox.dual_write import COMPANY_COLUMN, COMPANY_SET, STRIPED
from p2c_sandbox.fno import FnoService
from p2c_sandbox.seed_companies import seed_german_orders
from p2c_sandbox.seed_documents import ACTIVE
from p2c_sandbox.seed_sales_companies import CONTOSO_DE, DE_USER, US_USER, acting_as

Row = dict[str, Any]
_IDS = uuid.UUID("3c7d9e1a-8b2f-4d6e-a5c4-0f1e2d3c4b5a")  # namespace of the German rows' ids
# (name, street, city, state, postcode)
ACCOUNTS = [
    ("Bayerische Audiotechnik GmbH", "Leopoldstraße 12", "München", "BY", "80331"),
    ("Hamburger Klangwerk AG", "Mönckebergstraße 7", "Hamburg", "HH", "20095"),
    ("Kölner Heimkino KG", "Hohe Straße 41", "Köln", "NW", "50667"),
    ("Berliner Tonstudio GmbH", "Invalidenstraße 3", "Berlin", "BE", "10115"),
]
ACCOUNT_NUMBERS = [f"ACC-0900{i}-DE" for i in range(1, len(ACCOUNTS) + 1)]
CONTACTS = [("Anna", "Schneider"), ("Lukas", "Fischer"), ("Marie", "Weber"), ("Felix", "Wagner")]
# Products released in demf (seed_companies.PRODUCTS) that Sales has: number -> unit name.
LINE_PRODUCTS = {"D0001": "Primary Unit", "S0001": "Hour"}
# Dual-write's companies (cdm_company), their codes as F&O's legal entities are named.
CDM_USMF = "5e1f0000-0000-4000-8000-0000000000c1"
CDM_DEMF = "5e1f0000-0000-4000-8000-0000000000c2"
CDM_COMPANIES = {"USMF": (CDM_USMF, "Contoso Entertainment System USA"),
                 "DEMF": (CDM_DEMF, "Contoso Entertainment System Germany")}  # fmt: skip
# One account number in both companies (dual-write only): a US and a German account.
SHARED_NUMBER = "ACC-09100-FABRIK"


def _id(*parts: object) -> str:
    return str(uuid.uuid5(_IDS, "/".join(str(p) for p in parts)))


def seed_german_sales(dataverse: DataverseService, fno: FnoService) -> None:
    with acting_as(DE_USER):
        _german_rows(dataverse)
    seed_german_orders(fno, ACCOUNT_NUMBERS[:2])
    if dataverse.dual_write:
        seed_dual_write(dataverse)


def _save(dataverse: DataverseService, entity_set: str, row: Row) -> Row:
    schema = dataverse.schemas[entity_set]
    row = {k: v for k, v in row.items() if k in schema.props}  # an org without the P2C solution
    return dataverse.save(schema, {**schema.defaults, **row}, created=True)


def _find(dataverse: DataverseService, entity_set: str, **key: object) -> Row:
    return dataverse.store.find_by(entity_set, key)[0]


def _german_rows(dataverse: DataverseService) -> None:
    eur = _find(dataverse, "transactioncurrencies", isocurrencycode="EUR")["transactioncurrencyid"]
    prices = _find(dataverse, "pricelevels", name="Europe Wholesale")["pricelevelid"]
    accounts = []
    for i, (name, street, city, state, postcode) in enumerate(ACCOUNTS):
        accounts.append(_save(dataverse, "accounts", {
            "accountid": _id("account", i), "accountnumber": ACCOUNT_NUMBERS[i], "name": name,
            "telephone1": f"+49 89 5550 {100 + i}", "emailaddress1": f"einkauf{i + 1}@example.de",
            "address1_line1": street, "address1_city": city, "address1_stateorprovince": state,
            "address1_postalcode": postcode, "address1_country": "Germany", "customertypecode": 3,
            "paymenttermscode": 1, "_transactioncurrencyid_value": eur,
        }))  # fmt: skip
        first, last = CONTACTS[i]
        _save(dataverse, "contacts", {
            "contactid": _id("contact", i), "msdynce_contactnumber": f"CON-0900{i + 1}-DE", "firstname": first,
            "lastname": last, "fullname": f"{first} {last}", "emailaddress1": f"{first.lower()}@example.de",
            "address1_line1": street, "address1_city": city, "address1_postalcode": postcode,
            "address1_country": "Germany", "_parentcustomerid_value": accounts[-1]["accountid"],
            "msdynce_iscompanyanaccount": True, "_transactioncurrencyid_value": eur,
        })  # fmt: skip
    for n, account in enumerate(accounts):
        quote = n < 2  # two quotes (won: active), two active orders
        header = {
            "_customerid_value": account["accountid"], "_transactioncurrencyid_value": eur,
            "_pricelevelid_value": prices, "requestdeliveryby": f"2026-12-{10 + n:02d}",
            "shipto_line1": account["address1_line1"], "shipto_city": account["address1_city"],
            "shipto_postalcode": account["address1_postalcode"], "shipto_country": "Germany",
            "paymenttermscode": 1, "msdynce_hasexternallymaintainedproductsonly": True,
        }  # fmt: skip
        if quote:
            doc = _save(dataverse, "quotes", {"quoteid": _id("quote", n), "name": f"Angebot {account['name']}",
                                              "statecode": 1, "statuscode": 2, **header})  # fmt: skip
        else:
            doc = _save(dataverse, "salesorders", {"salesorderid": _id("order", n),
                                                   "name": f"Auftrag {account['name']}",
                                                   "msdynce_processingstatus": ACTIVE, **header})  # fmt: skip
        _lines(dataverse, "quotedetails" if quote else "salesorderdetails", "quoteid" if quote else "salesorderid",
               doc["quoteid" if quote else "salesorderid"])  # fmt: skip


def _lines(dataverse: DataverseService, entity_set: str, parent: str, parent_id: str) -> None:
    for seq, (number, unit) in enumerate(LINE_PRODUCTS.items(), start=1):
        product = _find(dataverse, "products", productnumber=number)
        price = {"D0001": 189.0, "S0001": 75.0}[number]
        _save(dataverse, entity_set, {
            f"{entity_set[:-1]}id": _id(entity_set, parent_id, seq), f"_{parent}_value": parent_id,
            "_productid_value": product["productid"], "_uomid_value": _find(dataverse, "uoms", name=unit)["uomid"],
            "sequencenumber": seq, "quantity": float(seq * 2), "priceperunit": price, "manualdiscountamount": 0.0,
            "extendedamount": round(seq * 2 * price, 2),
        })  # fmt: skip


def seed_dual_write(dataverse: DataverseService) -> None:
    """The companies, every striped Sales row's company, and one account number in both."""
    companies = dataverse.schemas[COMPANY_SET]
    for code, (company_id, name) in CDM_COMPANIES.items():
        dataverse.save(
            companies, {"cdm_companyid": company_id, "cdm_companycode": code, "cdm_name": name}, created=True
        )
    for entity_set in STRIPED:
        schema = dataverse.schemas[entity_set]
        for _, row in list(dataverse.store.scan(entity_set)):
            german = row.get("_owningbusinessunit_value") == CONTOSO_DE
            dataverse.save(schema, {**row, COMPANY_COLUMN: CDM_DEMF if german else CDM_USMF}, created=False)
    for user, company, name in (
        (US_USER, CDM_USMF, "Fabrikam Holdings"),
        (DE_USER, CDM_DEMF, "Fabrikam Holdings GmbH"),
    ):
        with acting_as(user):
            _save(dataverse, "accounts", {
                "accountid": _id("shared", company), "accountnumber": SHARED_NUMBER, "name": name,
                "customertypecode": 3, COMPANY_COLUMN: company,
            })  # fmt: skip
