"""Large volumes for benchmarks: `p2c sandbox --accounts 200000 --products 10000`.

Accounts are written straight into the store in one transaction (a request each would
take longer than the benchmark), with the versions, timestamps and numbers the service
would have given them. The same seed gives the same rows. One in ten is not a customer
(a competitor, a partner, an inactive one), so the accounts flow's filter has work to do.
"""

from __future__ import annotations

import json
import random
import uuid

from p2c_sandbox.dataverse import VERSION, DataverseService
from p2c_sandbox.fno import FnoService, row_pk
from p2c_sandbox.seed import COMPANIES, PLACES, STREETS
from p2c_sandbox.seed_documents import released_product
from p2c_sandbox.service import now_iso


def generate_accounts(dataverse: DataverseService, count: int, seed: int = 7) -> None:
    """Add `count` accounts (numbered `VOL-0000001`...) to a seeded Sales sandbox."""
    if count <= 0:
        return
    store = dataverse.store
    rng = random.Random(seed)
    currencies = [r["transactioncurrencyid"] for _, r in store.scan("transactioncurrencies")]
    if not currencies:
        raise ValueError("the sandbox has no currencies: generate accounts into a seeded sandbox")
    stamp = now_iso()
    with store.transaction():
        first = store.current(VERSION) + 1
        store.db.execute("INSERT OR REPLACE INTO counters VALUES (?, ?)", (VERSION, first + count - 1))
        batch: list[tuple[str, str, int, str]] = []
        for n in range(count):
            country, city, state, postcode, county = rng.choice(PLACES)
            customer = rng.random() >= 0.1
            # Those the flow leaves out: a competitor, a partner, a vendor, or a customer no longer active.
            kind = 3 if customer else rng.choice([1, 5, 11, 3])
            row = {
                "accountid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "accountnumber": f"VOL-{n + 1:07d}",
                "name": f"{rng.choice(COMPANIES)} {n + 1}",
                "telephone1": f"+1 425 555 {rng.randint(1000, 9999)}",
                "emailaddress1": f"orders{n + 1}@volume.example.com",
                "address1_line1": f"{rng.randint(1, 9999)} {rng.choice(STREETS)}",
                "address1_city": city,
                "address1_stateorprovince": state,
                "address1_postalcode": postcode,
                "address1_county": county,
                "address1_country": country,
                "creditlimit": float(rng.choice([0, 5000, 10000, 25000])),
                "numberofemployees": rng.choice([5, 12, 40, 120, 850]),
                "customertypecode": kind,
                "statecode": 0 if customer or kind != 3 else 1,
                "statuscode": 1 if customer or kind != 3 else 2,
                "paymenttermscode": rng.choice([1, 2, 3, None]),
                "_transactioncurrencyid_value": rng.choice(currencies),
                "createdon": stamp,
                "modifiedon": stamp,
                "versionnumber": first + n,
            }
            batch.append(("accounts", row["accountid"], first + n, json.dumps(row)))
            if len(batch) >= 10_000:
                store.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", batch)
                batch.clear()
        store.db.executemany("INSERT INTO rows VALUES (?, ?, ?, ?)", batch)


def generate_products(fno: FnoService, count: int, seed: int = 7) -> None:
    """Add `count` sellable released products (numbered `VOL-P000001`...) to a seeded F&O
    sandbox, in the currencies Sales has price lists for and the units its unit map knows."""
    if count <= 0:
        return
    schema = fno.schemas["CDSReleasedDistinctProducts"]
    rng = random.Random(seed)
    kinds = [("ea", "Item"), ("ea", "Item"), ("ea", "Item"), ("hr", "Service")]
    with fno.store.transaction():
        for n in range(count):
            unit, kind = rng.choice(kinds)
            price = round(rng.uniform(5, 2500), 2)
            name = f"{rng.choice(PRODUCT_NAMES)} {n + 1}"
            number = f"VOL-P{n + 1:06d}"
            cost = round(price * rng.uniform(0.3, 0.7), 2)
            currency = rng.choice(["USD", "USD", "USD", "EUR", "CAD"])
            description = f"{name}, generated for volume tests"
            row = released_product(fno, number, name, description, unit, kind, price, cost, currency)
            fno.store.put("CDSReleasedDistinctProducts", row_pk(schema, row), row)


PRODUCT_NAMES = ["Bookshelf Speaker", "Floor Speaker", "Amplifier", "Receiver", "Soundbar", "Subwoofer",
                 "Headphones", "Turntable", "Speaker Stand", "Cable Kit", "Installation Hours"]  # fmt: skip
