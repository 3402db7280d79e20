"""invoices: posted F&O sales invoices with their lines -> Sales invoices. FLOWS.md, invoices.

p2c links the invoice to its order; the P2C solution then sets the order to Invoiced and
the invoice's owner to the order's owner.

The F&O entities hold only invoices of customers that came from Sales. Posted invoices
never change, so they are read by InvoiceDate with an overlap and deduplicated by key.
"""

from p2c_core.flow import Bind, Calc, Dataverse, Field, FinOps, Flow, Lines, Ne, PriceList, Ref, ValueMap, Where
from p2c_core.flows.orders import PRODUCT_LINES

invoices = Flow(
    name="invoices",
    source=FinOps(
        "ExternallyMaintainedCustomerSalesInvoiceHeaders",
        key="InvoiceNumber",
        where=Where((Ne("SalesOrderNumber", ""),)),  # invoices of sales orders; free-text ones excluded
        since="InvoiceDate",
    ),
    target=Dataverse("invoices", key="invoicenumber"),
    fields={
        "invoicenumber": Field("InvoiceNumber"),
        "name": Field("InvoiceNumber"),
        "salesorderid": Ref("SalesOrderNumber", ("orders", "fno_orders"), what="sales order"),
        "customerid": Ref("InvoiceCustomerAccountNumber", ("accounts", "contact_customers"), what="customer"),
        "msdynce_invoicedate": Calc("date", ("InvoiceDate",)),
        "transactioncurrencyid": Bind(Field("CurrencyCode"), "transactioncurrencies", "isocurrencycode"),
        "pricelevelid": PriceList("CurrencyCode"),
        "totalamount": Field("TotalInvoiceAmount"),
        "totaltax": Field("TotalTaxAmount"),
        "freightamount": Field("TotalChargeAmount"),
        "totaldiscountamount": Field("TotalDiscountAmount"),
        # Header tax; the P2C solution makes it the invoice's "Freight Tax" line.
        "msdynce_misctax": Field("InvoiceHeaderTaxAmount", default=0),
        "billto_line1": Field("InvoiceAddressStreet"),
        "billto_city": Field("InvoiceAddressCity"),
        "billto_stateorprovince": Field("InvoiceAddressState"),
        "billto_postalcode": Field("InvoiceAddressZipCode"),
        "billto_country": Field("InvoiceAddressCountryRegionISOCode"),
    },
    lines=Lines(
        source="ExternallyMaintainedCustomerSalesInvoiceLines",
        source_parent="InvoiceNumber",
        source_key="LineCreationSequenceNumber",
        target="invoicedetails",
        target_parent="invoiceid",
        target_key="sequencenumber",
        fields={
            "sequencenumber": Field("LineCreationSequenceNumber"),
            # The P2C solution's copies of the header's number and date on each line.
            "msdynce_invoicenumber": Field("InvoiceNumber"),
            "msdynce_invoicedate": Calc("date", ("InvoiceDate",)),
            "productid": Ref("ProductNumber", ("products",), what="product"),
            "quantity": Field("InvoicedQuantity"),
            "priceperunit": Field("SalesPrice"),
            "manualdiscountamount": Field("LineTotalDiscountAmount"),
            "tax": Field("LineTotalTaxAmount"),
            "extendedamount": Field("LineAmount"),
            "uomid": Bind(ValueMap("unit", "SalesUnitSymbol"), "uoms", "name"),
        },
        owned=PRODUCT_LINES,
    ),
    depends_on=("accounts", "contact_customers", "orders", "fno_orders", "products"),
    schedule="0 */15 * * * *",
)
