"""A second legal entity's data (demf beside usmf) and the company list.

Seeded after everything else, with its own random stream and fixed numbers, so the first
company's rows and number sequences are as they were: p2c reads only its configured company,
and the data of another is there for clients that read across companies (`cross-company=true`).
"""

from __future__ import annotations

import random
from typing import Any

from p2c_sandbox.fno import FnoService, row_pk
from p2c_sandbox.seed_documents import released_product

Row = dict[str, Any]
SECOND = "demf"
# The company list: the two seeded companies, as the demo data names them.
LEGAL_ENTITIES = {"usmf": "Contoso Entertainment System USA", "demf": "Contoso Entertainment System Germany"}
CUSTOMERS = ["Berliner Bürobedarf", "Hamburger Hafenhandel", "Münchner Maschinen", "Kölner Kontor"]
# Released in demf too: products are shared across legal entities and released per company, so
# a number names the same product (and name) in both; prices are demf's, in EUR. D0100 is
# released in demf only. Orders use the first two.
PRODUCTS = [
    ("D0001", "Mid-Range Speaker", "ea", "Item", 189.0, 95.0),
    ("S0001", "Installation Service", "hr", "Service", 75.0, 40.0),
    ("D0004", "High-End Speaker", "ea", "Item", 799.0, 420.0),
    ("D0100", "Regallautsprecher", "ea", "Item", 249.0, 120.0),
]
ORDERED = PRODUCTS[:2]


def seed_second_company(fno: FnoService) -> None:
    rng = random.Random(20261201)
    for company, name in LEGAL_ENTITIES.items():
        row = {"LegalEntityId": company.upper(), "Name": name}
        fno.store.put("LegalEntities", row_pk(fno.schemas["LegalEntities"], row), row)
    customers = fno.schemas["CustomersV3"]
    accounts = []
    for i, name in enumerate(CUSTOMERS, start=1):
        row: Row = {p: None for p in customers.props}
        row.update({
            "dataAreaId": SECOND, "CustomerAccount": f"DE-{i:03d}", "OrganizationName": name, "CustomerGroupId": "10",
            "SalesCurrencyCode": "EUR", "PartyType": "Organization", "IsExternallyMaintained": "No",
            "PartyNumber": f"DE{i:07d}", "CreditLimit": 0, "OrganizationNumberOfEmployees": 0,
            "DeliveryAddressCountryRegionISOCode": "DE", "InvoiceAddressCountryRegionISOCode": "DE",
        })  # fmt: skip
        fno.store.put("CustomersV3", row_pk(customers, row), row)
        accounts.append(row["CustomerAccount"])
    products = fno.schemas["CDSReleasedDistinctProducts"]
    for number, name, unit, kind, price, cost in PRODUCTS:
        row = released_product(fno, number, name, name, unit, kind, price, cost, "EUR")
        row["dataAreaId"] = SECOND
        fno.store.put(products.entity_set, row_pk(products, row), row)
    for n, account in enumerate(accounts, start=1):
        _order(fno, rng, n, account, invoiced=n % 2 == 0)


def _with_defaults(schema_props: dict[str, Any]) -> Row:
    row: Row = {p: None for p in schema_props}
    for name, prop in schema_props.items():
        if not prop.nullable:
            row[name] = "1900-01-01T00:00:00Z" if prop.type == "Edm.DateTimeOffset" else 0
    return row


def seed_german_orders(fno: FnoService, accounts: list[str]) -> None:
    """F&O-born orders in demf of customers that came from Sales (the German Sales accounts,
    once p2c has made them customers): the fno_orders flow's to carry, with an invoice."""
    rng = random.Random(20261202)
    for n, account in enumerate(accounts, start=len(CUSTOMERS) + 1):
        _order(fno, rng, n, account, invoiced=n % 2 == 0, external=True)


def _order(
    fno: FnoService, rng: random.Random, n: int, account: str, *, invoiced: bool, external: bool = False
) -> None:
    headers, lines = fno.schemas["CDSSalesOrderHeaders"], fno.schemas["CDSSalesOrderLines"]
    number = f"DE-SO-{n:06d}"
    header = _with_defaults(headers.props)
    header.update({
        "dataAreaId": SECOND, "SalesOrderNumber": number, "SalesOrderName": f"Bestellung {n}",
        "OrderingCustomerAccountNumber": account, "InvoiceCustomerAccountNumber": account, "CurrencyCode": "EUR",
        "SalesOrderProcessingStatus": "Invoiced" if invoiced else "Confirmed",
        "SalesOrderStatus": "Invoiced" if invoiced else "Backorder",
        "OrderCreationDateTime": f"2026-11-{n:02d}T08:00:00Z", "DeliveryAddressCity": "Berlin",
        "DeliveryAddressCountryRegionISOCode": "DE", "IsSalesProcessingStopped": "No", "OrderTotalTaxAmount": 0,
    })  # fmt: skip
    header = fno.computed(headers, header)
    if external:  # the customer is Sales': set as the entity derives it once the customer exists
        header.update({"OrderingCustomerIsExternallyMaintained": "Yes", "InvoiceCustomerIsExternallyMaintained": "Yes"})
    fno.store.put(headers.entity_set, row_pk(headers, header), header)
    order_lines = []
    for seq, (product, name, unit, _kind, price, _cost) in enumerate(ORDERED, start=1):
        line = _with_defaults(lines.props)
        line.update({
            "dataAreaId": SECOND, "SalesOrderNumber": number, "LineCreationSequenceNumber": seq,
            "ProductNumber": product, "ProductName": name, "SalesUnitSymbol": unit,
            "OrderedSalesQuantity": float(rng.randint(1, 5)), "SalesPrice": price, "LineDiscountAmount": 0,
            "FixedPriceCharges": 0, "TotalTaxAmount": 0, "CurrencyCode": "EUR",
        })  # fmt: skip
        line = fno.computed(lines, line)
        fno.store.put(lines.entity_set, row_pk(lines, line), line)
        order_lines.append(line)
    fno.update_totals(lines, order_lines[0])
    if invoiced:
        _invoice(fno, n, number, account, order_lines)


def _invoice(fno: FnoService, n: int, order: str, account: str, order_lines: list[Row]) -> None:
    heads = fno.schemas["ExternallyMaintainedCustomerSalesInvoiceHeaders"]
    rows = fno.schemas["ExternallyMaintainedCustomerSalesInvoiceLines"]
    number, date = f"DE-CIV-{n:06d}", f"2026-11-{10 + n:02d}T00:00:00Z"
    total = round(sum(line["LineAmount"] for line in order_lines), 2)
    invoice: Row = {p: 0 if not heads.props[p].nullable else None for p in heads.props}
    invoice.update({
        "dataAreaId": SECOND, "InvoiceNumber": number, "InvoiceDate": date, "LedgerVoucher": f"DE-ARI-{n:06d}",
        "SalesOrderNumber": order, "InvoiceCustomerAccountNumber": account, "CurrencyCode": "EUR",
        "TotalInvoiceAmount": total, "InvoiceAddressCity": "Berlin", "InvoiceAddressCountryRegionISOCode": "DE",
    })  # fmt: skip
    fno.store.put(heads.entity_set, row_pk(heads, invoice), invoice)
    for line in order_lines:
        row: Row = {p: 0 if not rows.props[p].nullable else None for p in rows.props}
        row.update({
            "dataAreaId": SECOND, "InvoiceNumber": number, "InvoiceDate": date,
            "LedgerVoucher": invoice["LedgerVoucher"],
            "LineCreationSequenceNumber": line["LineCreationSequenceNumber"], "ProductNumber": line["ProductNumber"],
            "ProductName": line["ProductName"], "SalesUnitSymbol": line["SalesUnitSymbol"],
            "InvoicedQuantity": line["OrderedSalesQuantity"], "SalesPrice": line["SalesPrice"],
            "LineAmount": line["LineAmount"], "CurrencyCode": "EUR", "ConfirmedShippingDate": "1900-01-01T00:00:00Z",
        })  # fmt: skip
        fno.store.put(rows.entity_set, row_pk(rows, row), row)
