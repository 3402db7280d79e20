"""Demo data for the flows after accounts: units, price lists, products, contacts,
quotes and orders in Sales; released products, orders and invoices in F&O.

Each flow's filter and value maps get records on both sides of them: draft quotes,
orders not yet activated, F&O orders not yet confirmed or of F&O's own customers, a
free-text invoice, a product in a currency without a price list, a unit without a map.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Sequence
from datetime import date, timedelta

from p2c_sandbox.dataverse import DataverseService
from p2c_sandbox.fno import FnoService, row_pk
from p2c_sandbox.store import Row

# P2C choice msdynce_processingstatus (see p2c_core/flows/orders.py).
ACTIVE = 647390000

# (number, name, unit, type, price, cost, currency)
PRODUCTS: list[tuple[str, str, str, str, float, float, str]] = [
    ("D0001", "Mid-Range Speaker", "ea", "Item", 219.99, 120.00, "USD"),
    ("D0002", "Cabinet", "ea", "Item", 349.00, 210.00, "USD"),
    ("D0003", "Standard Speaker", "ea", "Item", 129.50, 64.00, "USD"),
    ("D0004", "High-End Speaker", "ea", "Item", 899.00, 455.00, "USD"),
    ("D0005", "Car Audio System", "ea", "Item", 1249.00, 700.00, "USD"),
    ("D0006", "Home Theater System", "ea", "Item", 2199.00, 1300.00, "USD"),
    ("D0007", "Projector Television", "ea", "Item", 1699.00, 990.00, "USD"),
    ("D0008", "Surround Sound Receiver", "ea", "Item", 579.00, 330.00, "USD"),
    ("D0009", "Wireless Headphones", "ea", "Item", 189.00, 80.00, "USD"),
    ("D0010", "Turntable", "ea", "Item", 459.00, 250.00, "USD"),
    ("D0011", 'Subwoofer 12"', "ea", "Item", 649.00, 350.00, "USD"),
    ("D0012", "Speaker Cable 10 m", "ea", "Item", 24.90, 6.10, "USD"),
    ("D0013", "Wall Mount Kit", "ea", "Item", 39.00, 12.00, "USD"),
    ("D0014", "Sound Bar", "ea", "Item", 399.00, 210.00, "USD"),
    ("D0015", "Streaming Amplifier", "ea", "Item", 729.00, 402.00, "USD"),
    ("S0001", "Installation Service", "hr", "Service", 95.00, 45.00, "USD"),
    ("S0002", "Acoustic Consultation", "hr", "Service", 140.00, 70.00, "USD"),
    ("S0003", "Extended Warranty (3 yr)", "ea", "Service", 149.00, 20.00, "USD"),
    ("E0001", "Lautsprecher Standard", "ea", "Item", 119.00, 60.00, "EUR"),
    ("E0002", "Heimkino-System", "ea", "Item", 1999.00, 1150.00, "EUR"),
    ("E0003", "Kopfhörer kabellos", "ea", "Item", 169.00, 75.00, "EUR"),
    ("C0001", "Outdoor Speaker Pair", "ea", "Item", 299.00, 150.00, "CAD"),
    ("C0002", "Ceiling Speaker", "ea", "Item", 179.00, 85.00, "CAD"),
    # No GBP price list in Sales: fails naming the currency.
    ("G0001", "Bookshelf Speaker (UK)", "ea", "Item", 149.00, 70.00, "GBP"),
    # A unit the demo's unit map does not know: fails naming the map and value.
    ("B0001", "Speaker Wire Spool", "spool", "Item", 89.00, 30.00, "USD"),
]
# Sales products that a product sync brought over before (stale prices): quotes and
# orders refer to them. The products flow brings them up to date.
IN_SALES_ALREADY = 18

FIRST = ["Alex", "Maria", "Sanjay", "Yuki", "Olga", "Kwame", "Lena", "Diego", "Priya", "Tom", "Ana", "Wei"]
LAST = ["Johnson", "García", "Patel", "Tanaka", "Ivanova", "Mensah", "Schulz", "O'Neil", "Khan", "Smith"]
TITLES = ["Purchasing Manager", "CFO", "Office Manager", "Buyer", "Head of Facilities", None]
DEPARTMENTS = ["Purchasing", "Finance", "Operations", None]


def released_product(
    fno: FnoService,
    number: str,
    name: str,
    description: str,
    unit: str,
    kind: str,
    price: float,
    cost: float,
    currency: str,
) -> Row:
    """An F&O released product row, every property of the entity present."""
    row: Row = {p: None for p in fno.schemas["CDSReleasedDistinctProducts"].props}
    row.update(
        {
            "dataAreaId": fno.company,
            "ProductNumber": number,
            "ItemNumber": number,
            "ProductName": name,
            "ProductDescription": description,
            "SalesUnitSymbol": unit,
            "InventoryUnitSymbol": unit,
            "ProductType": kind,
            "SalesPrice": price,
            "UnitCost": cost,
            "CurrencyCode": currency,
            "SalesUnitDecimalPrecision": 2 if unit == "hr" else 0,
            "InventoryUnitDecimalPrecision": 0,
            "LowerWarrantablePriceRangeLimit": 0,
            "UpperWarrantablePriceRangeLimit": 0,
            "WarrantyDurationTime": 0,
            "IsStockedProduct": "Yes" if kind == "Item" else "No",
            "IsCatchWeightProduct": "No",
        }
    )
    return row


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def seed_documents(
    dataverse: DataverseService,
    fno: FnoService,
    rng: random.Random,
    currencies: dict[str, str],
    customers: Sequence[Row],
) -> None:
    """`customers`: Sales accounts that the accounts flow carries (numbered, active customers)."""
    dv = dataverse.schemas

    def save(entity_set: str, row: Row) -> Row:
        # An org without the P2C solution has none of its columns: the demo rows lose them.
        row = {k: v for k, v in row.items() if k in dv[entity_set].props}
        return dataverse.save(dv[entity_set], {**dv[entity_set].defaults, **row}, created=True)

    schedule = save("uomschedules", {"uomscheduleid": _guid(rng), "name": "Default Unit"})
    units = {
        name: save(
            "uoms",
            {"uomid": _guid(rng), "name": name, "quantity": 1.0, "_uomscheduleid_value": schedule["uomscheduleid"]},
        )["uomid"]
        for name in ("Primary Unit", "Hour")
    }
    for name, code in [
        ("CRM Service USA (sample)", "USD"),
        ("Retail USA", "USD"),
        ("Europe Wholesale", "EUR"),
        ("Canada Retail", "CAD"),
    ]:
        save(
            "pricelevels", {"pricelevelid": _guid(rng), "name": name, "_transactioncurrencyid_value": currencies[code]}
        )

    # F&O released products, and the Sales copies an earlier sync made.
    fno_products = fno.schemas["CDSReleasedDistinctProducts"]
    sales_products: dict[str, str] = {}
    for i, (number, name, unit, kind, price, cost, currency) in enumerate(PRODUCTS):
        row = released_product(fno, number, name, f"{name}, sold by Contoso Audio", unit, kind, price, cost, currency)
        fno.store.put("CDSReleasedDistinctProducts", row_pk(fno_products, row), row)
        if i < IN_SALES_ALREADY:
            product = save(
                "products",
                {
                    "productid": _guid(rng),
                    "productnumber": number,
                    "name": name,
                    "price": round(price * 0.95, 2),
                    "msdynce_ismaintainedexternally": True,
                    "_defaultuomid_value": units["Hour" if unit == "hr" else "Primary Unit"],
                    "_transactioncurrencyid_value": currencies[currency],
                },
            )
            sales_products[number] = product["productid"]
    # A product made in Sales (not externally maintained): quotes with it stay in Sales.
    local = save(
        "products", {"productid": _guid(rng), "productnumber": "LOCAL-1", "name": "Gift Wrapping", "price": 5.0}
    )
    sales_products["LOCAL-1"] = local["productid"]

    # Contacts: people at customer accounts, people who are customers themselves, and
    # people at companies that are not accounts (skipped).
    contacts: list[Row] = []
    for i, account in enumerate(customers[:30]):
        for _ in range(1 + (i % 2)):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            contacts.append(
                _contact(
                    rng,
                    len(contacts),
                    first,
                    last,
                    _parentcustomerid_value=account["accountid"],
                    msdynce_iscompanyanaccount=True,
                )
            )
    buyers: list[Row] = []
    for k in range(6):
        first, last = FIRST[k], LAST[-k - 1]
        buyer = _contact(rng, len(contacts), first, last, msdynce_isactivecustomer=True)
        buyer["_transactioncurrencyid_value"] = currencies["USD"]
        contacts.append(buyer)
        buyers.append(buyer)
    for _ in range(4):
        contacts.append(_contact(rng, len(contacts), rng.choice(FIRST), rng.choice(LAST)))  # no company
    contacts.append(
        _contact(
            rng,
            len(contacts),
            "Inactive",
            "Person",
            statecode=1,
            msdynce_iscompanyanaccount=True,
            _parentcustomerid_value=customers[0]["accountid"],
        )
    )
    for row in contacts:
        save("contacts", row)

    usd_products = [p for p in PRODUCTS[:IN_SALES_ALREADY] if p[6] == "USD"]
    start = date(2026, 12, 1)

    def lines(entity_set: str, parent: str, parent_id: str, count: int) -> None:
        for seq in range(1, count + 1):
            number, _, unit, _, price, _, _ = rng.choice(usd_products)
            quantity = float(rng.choice([1, 2, 3, 5, 10, 12]))
            discount = rng.choice([0.0, 0.0, 10.0, 25.0, 7.5])
            save(
                entity_set,
                {
                    f"{entity_set[:-1]}id": _guid(rng),
                    f"_{parent}_value": parent_id,
                    "_productid_value": sales_products[number],
                    "_uomid_value": units["Hour" if unit == "hr" else "Primary Unit"],
                    "sequencenumber": seq,
                    "quantity": quantity,
                    "priceperunit": price,
                    "manualdiscountamount": discount,
                    "extendedamount": round(quantity * price - discount, 2),
                    "requestdeliveryby": (start + timedelta(days=seq)).isoformat() if seq % 2 else None,
                    "description": None if seq % 3 else "Deliver to loading dock B",
                },
            )

    def local_line(entity_set: str, parent: str, parent_id: str, seq: int) -> None:
        """A line of the Sales-only product: its document is not all externally maintained."""
        line_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{entity_set}/{parent_id}/local"))  # the rng's draws unmoved
        save(entity_set, {f"{entity_set[:-1]}id": line_id, f"_{parent}_value": parent_id,
                          "_productid_value": sales_products["LOCAL-1"], "_uomid_value": units["Primary Unit"],
                          "sequencenumber": seq, "quantity": 1.0, "priceperunit": 5.0, "manualdiscountamount": 0.0,
                          "extendedamount": 5.0})  # fmt: skip

    def header(n: int, customer: Row, **extra: object) -> Row:
        is_contact = "contactid" in customer
        return {
            "_customerid_value": customer["contactid" if is_contact else "accountid"],
            "_transactioncurrencyid_value": currencies["USD"],
            "requestdeliveryby": (start + timedelta(days=n % 20)).isoformat(),
            "shipto_line1": customer.get("address1_line1"),
            "shipto_line2": "Suite 100" if n % 4 == 0 else None,
            "shipto_city": customer.get("address1_city"),
            "shipto_stateorprovince": customer.get("address1_stateorprovince"),
            "shipto_postalcode": customer.get("address1_postalcode"),
            "shipto_country": customer.get("address1_country"),
            "paymenttermscode": rng.choice([1, 2, 3, 4, None]),
            "shippingmethodcode": rng.choice([1, 3, 4, None]),
            "freighttermscode": rng.choice([1, 2, None]),
            "msdynce_hasexternallymaintainedproductsonly": True,
            **extra,
        }

    buyers_and_accounts = [*customers[:25], *buyers]
    for n in range(24):
        customer = buyers_and_accounts[n % len(buyers_and_accounts)]
        state = 0 if n % 6 == 5 else 1  # every sixth is a draft
        extra: dict[str, object] = {"statecode": state, "statuscode": 2 if state else 1}
        if n == 11:
            extra["msdynce_hasexternallymaintainedproductsonly"] = False  # has a Sales-only product
        quote = save(
            "quotes",
            {
                "quoteid": _guid(rng),
                "name": f"Quote for {customer.get('name') or customer.get('fullname')}",
                **header(n, customer, **extra),
            },
        )
        lines("quotedetails", "quoteid", quote["quoteid"], 1 + n % 4)
        if n == 11:
            local_line("quotedetails", "quoteid", quote["quoteid"], 2 + n % 4)

    for n in range(16):
        customer = buyers_and_accounts[(n * 3) % len(buyers_and_accounts)]
        status = None if n % 5 == 4 else ACTIVE  # not yet activated: stays in Sales
        # An active order with a Sales-only product: the orders flow leaves it in Sales too.
        extra = {"msdynce_hasexternallymaintainedproductsonly": False} if n == 13 else {}
        order = save(
            "salesorders",
            {
                "salesorderid": _guid(rng),
                "name": f"Order {n + 1} for {customer.get('name') or customer.get('fullname')}",
                **header(n, customer, msdynce_processingstatus=status, **extra),
            },
        )
        lines("salesorderdetails", "salesorderid", order["salesorderid"], 1 + n % 4)
        if n == 13:
            local_line("salesorderdetails", "salesorderid", order["salesorderid"], 2 + n % 4)

    _seed_fno_orders(fno, rng, customers, buyers)


def _contact(rng: random.Random, n: int, first: str, last: str, **extra: object) -> Row:
    email = f"{first}.{last}".lower().replace("'", "").replace("í", "i")
    row: Row = {
        "contactid": _guid(rng),
        "msdynce_contactnumber": f"CON-{1000 + n:05d}-{''.join(rng.choice(string.ascii_uppercase) for _ in range(6))}",
        "firstname": first,
        "middlename": rng.choice([None, None, "J.", "Marie"]),
        "lastname": last,
        "fullname": f"{first} {last}",
        "jobtitle": rng.choice(TITLES),
        "department": rng.choice(DEPARTMENTS),
        "emailaddress1": f"{email}@example.com",
        "telephone1": f"+1 206 555 {rng.randint(1000, 9999)}",
        "fax": None,
        "websiteurl": None,
        "address1_line1": f"{rng.randint(1, 999)} Lake Drive",
        "address1_city": rng.choice(["Seattle", "Portland", "Toronto", "London"]),
        "address1_stateorprovince": None,
        "address1_postalcode": f"{rng.randint(10000, 99999)}",
        "address1_country": rng.choice(["United States", "USA", "Canada", "UK", ""]),
        "description": rng.choice([None, "Met at the 2026 trade fair"]),
        "statecode": 0,
        "msdynce_isactivecustomer": False,
        "msdynce_iscompanyanaccount": False,
    }
    row.update(extra)
    return row


def _seed_fno_orders(fno: FnoService, rng: random.Random, customers: Sequence[Row], buyers: Sequence[Row]) -> None:
    """F&O-born sales orders in several states, and invoices of the invoiced ones."""
    headers, lines = fno.schemas["CDSSalesOrderHeaders"], fno.schemas["CDSSalesOrderLines"]
    inv_headers = fno.schemas["ExternallyMaintainedCustomerSalesInvoiceHeaders"]
    inv_lines = fno.schemas["ExternallyMaintainedCustomerSalesInvoiceLines"]
    # F&O's members (fno-enums.json): no "None"; an open order is "Active".
    statuses = ["Confirmed", "Picked", "Delivered", "Invoiced", "Active", "Confirmed", "Invoiced", "PartiallyDelivered"]
    sales_customers = [c["accountnumber"] for c in customers[:20]] + [b["msdynce_contactnumber"] for b in buyers[:2]]
    invoice_no = 5000
    for n in range(18):
        native = n % 9 == 8  # an order of one of F&O's own customers: not carried
        account = f"US-{1 + n % 10:03d}" if native else sales_customers[n % len(sales_customers)]
        external = "No" if native else "Yes"
        status = statuses[n % len(statuses)]
        number = f"SO-{fno.store.next('SalesOrderNumber', 1000):06d}"
        header: Row = {p: None for p in headers.props}
        for name, prop in headers.props.items():
            if not prop.nullable:
                header[name] = "1900-01-01T00:00:00Z" if prop.type == "Edm.DateTimeOffset" else 0
        header.update(
            {
                "dataAreaId": fno.company,
                "SalesOrderNumber": number,
                "SalesOrderName": f"Web order {n + 1}",
                "OrderingCustomerAccountNumber": account,
                "InvoiceCustomerAccountNumber": account,
                "OrderingCustomerIsExternallyMaintained": external,
                "InvoiceCustomerIsExternallyMaintained": external,
                "CurrencyCode": "USD",
                "SalesOrderProcessingStatus": status,
                "SalesOrderStatus": "Invoiced" if status == "Invoiced" else "Backorder",
                "OrderCreationDateTime": f"2026-11-{1 + n:02d}T09:30:00Z",
                "RequestedShippingDate": f"2026-12-{1 + n:02d}T12:00:00Z",
                "DeliveryAddressStreet": f"{100 + n} Commerce Blvd",
                "DeliveryAddressCity": "Redmond",
                "DeliveryAddressStateId": "WA",
                "DeliveryAddressZipCode": "98052",
                "DeliveryAddressCountryRegionISOCode": "US",
                "PaymentTermsName": rng.choice(["Net30", "Net45", None]),
                # F&O codes of the demo's delivery maps (p2c_cli.local), every one, and none.
                "DeliveryModeCode": ["Air", "DHL", "FedEx", "UPS", "Postal", "Truck", "WillCall", None][n % 8],
                "DeliveryTermsCode": ["FOB", "NoCharge", None][n % 3],
                "OrderTotalTaxAmount": 0,
                "IsSalesProcessingStopped": "No",
            }
        )
        fno.store.put("CDSSalesOrderHeaders", row_pk(headers, header), header)
        order_lines: list[Row] = []
        for seq in range(1, 2 + n % 3):
            product = PRODUCTS[(n + seq) % IN_SALES_ALREADY]
            quantity = float(1 + (n + seq) % 4)
            line: Row = {p: None for p in lines.props}
            for name, prop in lines.props.items():
                if not prop.nullable:
                    line[name] = "1900-01-01T00:00:00Z" if prop.type == "Edm.DateTimeOffset" else 0
            line.update(
                {
                    "dataAreaId": fno.company,
                    "SalesOrderNumber": number,
                    "LineCreationSequenceNumber": seq,
                    "ProductNumber": product[0],
                    "ProductName": product[1],
                    "SalesUnitSymbol": product[2],
                    "OrderedSalesQuantity": quantity,
                    "SalesPrice": product[4],
                    "LineDiscountAmount": 3.33 if seq == 1 and n % 2 else 0,
                    "FixedPriceCharges": -0.01 if seq == 1 and n % 2 else 0,
                    "TotalTaxAmount": round(product[4] * quantity * 0.1, 2),
                    "CurrencyCode": "USD",
                }
            )
            line = fno.computed(lines, line)
            fno.store.put("CDSSalesOrderLines", row_pk(lines, line), line)
            order_lines.append(line)
        fno.update_totals(lines, order_lines[0])
        if n == 5:  # changed since "Calculate sales totals" last ran: it waits for its totals
            header = fno.store.get("CDSSalesOrderHeaders", row_pk(headers, header)) or header
            fno.store.put("CDSSalesOrderHeaders", row_pk(headers, header), {**header, "AreTotalsUpdated": "No"})
        if status != "Invoiced" or native:
            continue
        invoice_no += 1
        invoice_date = f"2026-11-{10 + n:02d}T00:00:00Z"
        total = sum(r["LineAmount"] for r in order_lines)
        tax = sum(r["TotalTaxAmount"] for r in order_lines)
        invoice: Row = {p: 0 if not inv_headers.props[p].nullable else None for p in inv_headers.props}
        invoice.update(
            {
                "dataAreaId": fno.company,
                "InvoiceNumber": f"CIV-{invoice_no:06d}",
                "InvoiceDate": invoice_date,
                "LedgerVoucher": f"ARI-{invoice_no:06d}",
                "SalesOrderNumber": number,
                "InvoiceCustomerAccountNumber": account,
                "CurrencyCode": "USD",
                "TotalInvoiceAmount": round(total + tax, 2),
                "TotalTaxAmount": round(tax, 2),
                "TotalChargeAmount": 0,
                "TotalDiscountAmount": 0,
                "InvoiceAddressStreet": header["DeliveryAddressStreet"],
                "InvoiceAddressCity": "Redmond",
                "InvoiceAddressState": "WA",
                "InvoiceAddressZipCode": "98052",
                "InvoiceAddressCountryRegionISOCode": "US",
            }
        )
        fno.store.put(inv_headers.entity_set, row_pk(inv_headers, invoice), invoice)
        for line in order_lines:
            row: Row = {p: 0 if not inv_lines.props[p].nullable else None for p in inv_lines.props}
            row.update(
                {
                    "dataAreaId": fno.company,
                    "InvoiceNumber": invoice["InvoiceNumber"],
                    "InvoiceDate": invoice_date,
                    "LedgerVoucher": invoice["LedgerVoucher"],
                    "LineCreationSequenceNumber": line["LineCreationSequenceNumber"],
                    "ProductNumber": line["ProductNumber"],
                    "ProductName": line["ProductName"],
                    "SalesUnitSymbol": line["SalesUnitSymbol"],
                    "InvoicedQuantity": line["OrderedSalesQuantity"],
                    "SalesPrice": line["SalesPrice"],
                    "LineAmount": line["LineAmount"],
                    "LineTotalTaxAmount": line["TotalTaxAmount"],
                    "LineTotalDiscountAmount": round(line["LineDiscountAmount"] * line["OrderedSalesQuantity"], 2),
                    "CurrencyCode": "USD",
                    "ConfirmedShippingDate": "1900-01-01T00:00:00Z",
                }
            )
            fno.store.put(inv_lines.entity_set, row_pk(inv_lines, row), row)
    # A free-text invoice (no sales order): not carried.
    free: Row = {p: 0 if not inv_headers.props[p].nullable else None for p in inv_headers.props}
    free.update(
        {
            "dataAreaId": fno.company,
            "InvoiceNumber": "FTI-000001",
            "InvoiceDate": "2026-11-20T00:00:00Z",
            "LedgerVoucher": "ARI-FTI-1",
            "SalesOrderNumber": "",
            "InvoiceCustomerAccountNumber": sales_customers[0],
            "CurrencyCode": "USD",
            "TotalInvoiceAmount": 120.0,
        }
    )
    fno.store.put(inv_headers.entity_set, row_pk(inv_headers, free), free)
