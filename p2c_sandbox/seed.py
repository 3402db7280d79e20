"""Realistic demo data, the same on every run (a fixed random seed).

Sales: currencies and ~60 accounts: customers across the US, Canada, the UK and Germany,
plus competitors, partners, prospects and inactive customers the accounts flow must not
carry, and a few awkward ones (quotes, slashes, %, #, &, +, non-Latin letters, a missing
account number, an over-long name). F&O: company usmf with ten customers of its own, and a
second company (demf, seed_companies.py) for clients that read across companies.
"""

from __future__ import annotations

import random
import string
import uuid

from p2c_sandbox import solution
from p2c_sandbox.dataverse import DataverseService
from p2c_sandbox.fno import FnoService, row_pk
from p2c_sandbox.plugins import autonumber_rows
from p2c_sandbox.seed_companies import seed_second_company
from p2c_sandbox.seed_documents import seed_documents
from p2c_sandbox.seed_german_sales import seed_german_sales
from p2c_sandbox.seed_options import Companies
from p2c_sandbox.seed_sales_companies import US_TEAM, US_USER, acting_as, seed_business_units
from p2c_sandbox.store import Row

CURRENCIES = [
    ("USD", "US Dollar", "$"),
    ("EUR", "Euro", "€"),
    ("GBP", "Pound Sterling", "£"),
    ("CAD", "Canadian Dollar", "CA$"),
]

COMPANIES = [
    "Fourth Coffee",
    "Litware, Inc.",
    "Adventure Works Cycles",
    "Fabrikam Residences",
    "Contoso Pharmaceuticals",
    "Alpine Ski House",
    "A. Datum Corporation",
    "Coho Winery",
    "Blue Yonder Airlines",
    "City Power & Light",
    "Humongous Insurance",
    "Lucerne Publishing",
    "Margie's Travel",
    "Northwind Traders",
    "Proseware, Inc.",
    "Southridge Video",
    "Tailspin Toys",
    "Trey Research",
    "Wide World Importers",
    "Woodgrove Bank",
    "Wingtip Toys",
    "Graphic Design Institute",
    "Best For You Organics",
    "Relecloud",
    "VanArsdel, Ltd.",
    "Lamna Healthcare",
    "Munson's Pickles and Preserves",
    "Nod Publishers",
    "School of Fine Art",
    "Consolidated Messenger",
    "First Up Consultants",
    "Bellows College",
    "Olympia Grocers",
    "Phoenix Plumbing",
    "Sunset Dental",
    "Harbor Freight Partners",
    "Redwood Logistics",
    "Granite State Mills",
    "Prairie Wind Energy",
    "Lakeside Clinics",
]

PLACES = [
    ("United States", "Redmond", "WA", "98052", "King"),
    ("USA", "Seattle", "WA", "98101", "King"),
    ("United States", "Chicago", "IL", "60601", "Cook"),
    ("U.S.", "Austin", "TX", "78701", "Travis"),
    ("United States", "Boston", "MA", "02108", "Suffolk"),
    ("", "Denver", "CO", "80202", "Denver"),
    ("Canada", "Toronto", "ON", "M5H 2N2", None),
    ("Canada", "Vancouver", "BC", "V6B 1A1", None),
    ("United Kingdom", "London", None, "EC1A 1BB", None),
    ("UK", "Manchester", None, "M1 1AE", None),
    ("Germany", "München", "BY", "80331", None),
    ("Deutschland", "Berlin", "BE", "10115", None),
]
STREETS = ["Main Street", "Oak Avenue", "Pine Road", "Market Street", "Harbour Way", "King's Road", "Hauptstraße"]
CURRENCY_BY_COUNTRY = {"Canada": "CAD", "United Kingdom": "GBP", "UK": "GBP", "Germany": "EUR", "Deutschland": "EUR"}


def _suffix(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_uppercase) for _ in range(6))


def _account(rng: random.Random, n: int, name: str, currencies: dict[str, str], **overrides: object) -> Row:
    country, city, state, postcode, county = rng.choice(PLACES)
    domain = "".join(ch for ch in name.lower() if ch.isalnum())[:20] or "example"
    row: Row = {
        "accountid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "accountnumber": f"ACC-{n:05d}-{_suffix(rng)}",
        "name": name,
        "telephone1": f"+1 425 555 {rng.randint(100, 9999):04d}",
        "fax": f"+1 425 555 {rng.randint(100, 9999):04d}" if rng.random() < 0.4 else None,
        "emailaddress1": f"orders@{domain}.example.com",
        "websiteurl": f"https://www.{domain}.example.com",
        "address1_line1": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}",
        "address1_city": city,
        "address1_stateorprovince": state,
        "address1_postalcode": postcode,
        "address1_county": county,
        "address1_country": country,
        "address2_line1": f"PO Box {rng.randint(100, 9999)}" if rng.random() < 0.5 else None,
        "address2_city": city if rng.random() < 0.5 else None,
        "address2_stateorprovince": None,
        "address2_postalcode": None,
        "address2_country": country if rng.random() < 0.5 else None,
        "creditlimit": float(rng.choice([0, 5000, 10000, 25000, 50000, 100000])) if rng.random() < 0.8 else None,
        "numberofemployees": rng.choice([5, 12, 40, 120, 850, 4200]) if rng.random() < 0.8 else None,
        "description": rng.choice([None, "Key account", "Prefers delivery on Mondays", "Net terms agreed in 2024"]),
        "customertypecode": 3,
        "statecode": 0,
        "statuscode": 1,
        "paymenttermscode": rng.choice([1, 2, 3, 4, None]),
        "address1_freighttermscode": rng.choice([1, 2, None]),
        "address1_shippingmethodcode": rng.choice([1, 2, 3, 4, 5, 6, 7, None]),
        "_transactioncurrencyid_value": currencies[CURRENCY_BY_COUNTRY.get(country, "USD")],
    }
    row.update(overrides)
    return row


def seed(dataverse: DataverseService, fno: FnoService, *, companies: Companies = Companies.ONE) -> None:
    """The demo data; `companies` adds the German Sales rows and dual-write's company model
    (seed_options.Companies). The org's root business unit and user are there already."""
    seed_business_units(dataverse)  # no random draws: the rows below are as they always were
    with acting_as(US_USER):  # the demo's Sales rows are Contoso US's
        _seed(dataverse, fno)
    if companies != Companies.ONE:
        seed_german_sales(dataverse, fno)


def _seed(dataverse: DataverseService, fno: FnoService) -> None:
    rng = random.Random(20261124)
    if dataverse.p2c_solution:  # the solution's numbering settings, as it installs them
        numbers = dataverse.schemas[solution.AUTONUMBER_SET]
        for row in autonumber_rows():
            dataverse.save(numbers, row, created=True)
    currencies: dict[str, str] = {}
    cur = dataverse.schemas["transactioncurrencies"]
    for code, name, symbol in CURRENCIES:
        guid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        currencies[code] = guid
        dataverse.save(
            cur,
            {
                "transactioncurrencyid": guid,
                "isocurrencycode": code,
                "currencyname": name,
                "currencysymbol": symbol,
                "exchangerate": 1.0,
                "statecode": 0,
            },
            created=True,
        )
    accounts = dataverse.schemas["accounts"]
    rows: list[Row] = []
    n = 1000
    for name in COMPANIES:
        rows.append(_account(rng, n, name, currencies))
        n += 1
    for name in [
        "O'Brien & Sons",
        "100% Natural Foods",
        "A/B Testing Partners",
        "#1 Office Supply",
        "Smith + Wesson Legal",
        "Müller Maschinenbau GmbH",
        "東京商事株式会社",
    ]:
        rows.append(_account(rng, n, name, currencies))
        n += 1
    rows.append(_account(rng, n, "D'Arcy/Partners #2", currencies, accountnumber=f"ACC-{n:05d}-O'B/2"))
    rows.append(_account(rng, n + 1, "Unnumbered Holdings", currencies, accountnumber=None))
    rows.append(
        _account(
            rng,
            n + 2,
            "The Extraordinarily Long-Named International Consolidated Holding Company "
            "of Greater Metropolitan Areas Ltd",
            currencies,
        )
    )
    n += 3
    for name, code in [
        ("Contoso Competitor Corp", 1),
        ("Fabrikam Consulting (partner)", 5),
        ("Adatum Prospects", 11),
        ("Litware Vendor Services", 10),
        ("Northwind Reseller", 6),
    ]:
        rows.append(_account(rng, n, name, currencies, customertypecode=code))
        n += 1
    for name in ["Closed Shop Ltd", "Dormant Trading Co", "Retired Ventures"]:
        rows.append(_account(rng, n, name, currencies, statecode=1, statuscode=2))
        n += 1
    for i, row in enumerate(rows):
        if i % 4 == 3:  # assigned to the unit's team rather than kept by its salesperson
            row = {**row, "_ownerid_value": US_TEAM, "owneridtype": "team"}
        dataverse.save(accounts, row, created=True)
    carried = [r for r in rows if r["accountnumber"] and r["customertypecode"] == 3 and r["statecode"] == 0]
    seed_documents(dataverse, fno, rng, currencies, carried[:40])
    customers = fno.schemas["CustomersV3"]
    fno_names = [
        "Forest Wholesales",
        "Grand Hotel Supplies",
        "Jupiter Retail",
        "Sparrow Engineering",
        "Cave Wholesales",
        "Desert Wholesales",
        "Owl Wholesales",
        "Lion Wholesales",
        "Turtle Wholesales",
        "Orchid Shopping",
    ]
    for i, name in enumerate(fno_names, start=1):
        row: Row = {p: None for p in customers.props}
        row.update(
            {
                "dataAreaId": fno.company,
                "CustomerAccount": f"US-{i:03d}",
                "OrganizationName": name,
                "CustomerGroupId": "30",
                "SalesCurrencyCode": "USD",
                "PartyType": "Organization",
                "IsExternallyMaintained": "No",
                "PartyNumber": f"{fno.store.next('PartyNumber', 2000):09d}",
                "CreditLimit": 0,
                "OrganizationNumberOfEmployees": 0,
            }
        )
        fno.store.put("CustomersV3", row_pk(customers, row), row)
    seed_second_company(fno)  # last: the first company's rows and numbers stay as they were
