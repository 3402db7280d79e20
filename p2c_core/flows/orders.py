"""orders, both ways: Sales orders <-> F&O sales orders, each with one writer at a time.

FLOWS.md, orders. Ownership moves with status:
- `orders` creates Sales-born orders in F&O once activated, and never writes them again:
  F&O owns them from then on (create_only).
- `fno_orders` carries confirmed-or-later F&O orders to Sales: it creates F&O-born ones
  (marked externally maintained, which `orders` skips) and updates Sales-born ones.
So neither flow writes what the other reads back as a change: no echo, no ping-pong.
Number sequences must not overlap: F&O `SO-...`, Sales `ORD-...` (see README).
"""

from p2c_core.flow import (
    Bind,
    Calc,
    Const,
    Dataverse,
    Eq,
    Field,
    FinOps,
    Flow,
    In,
    Lines,
    PriceList,
    Ref,
    ValueMap,
    Where,
)
from p2c_core.flows.quotes import CUSTOMER, CUSTOMER_REF, PRODUCT, SALES_HEADER, UNIT, sales_lines

# P2C choice msdynce_processingstatus: the value of "Active" (p2c-solution.json).
ACTIVE = 647390000
# The lines p2c writes: not the P2C solution's Freight Tax line, which it makes from msdynce_misctax.
PRODUCT_LINES = Where.all(msdynce_ismisctax=False)
# F&O processing statuses from which F&O owns the order and Sales follows it: every member of
# SalesOrderProcessingStatus but Active, as F&O's $metadata publishes them (FLOWS.md, orders).
CONFIRMED_OR_LATER = (
    "Confirmed",
    "Picked",
    "PartiallyDelivered",
    "Delivered",
    "Invoiced",
    "PartiallyInvoiced",
    "Canceled",
    "DeliveredPartiallyInvoiced",
)

orders = Flow(
    name="orders",
    source=Dataverse(
        "salesorders",
        key="ordernumber",
        where=Where.all(
            msdynce_ismaintainedexternally=False,
            msdynce_processingstatus=ACTIVE,
            msdynce_hasexternallymaintainedproductsonly=True,
        ),
    ),
    target=FinOps("CDSSalesOrderHeaders", key="SalesOrderNumber"),
    resolve=(CUSTOMER,),
    fields={
        "SalesOrderNumber": Field("ordernumber"),
        "OrderingCustomerAccountNumber": CUSTOMER_REF,
        "InvoiceCustomerAccountNumber": CUSTOMER_REF,
        "SalesOrderName": Field("name"),
        **SALES_HEADER,
    },
    lines=Lines(
        source="salesorderdetails",
        source_parent="salesorderid",
        source_key="sequencenumber",
        target="CDSSalesOrderLines",
        target_parent="SalesOrderNumber",
        target_key="LineCreationSequenceNumber",
        lookups=(PRODUCT, UNIT),
        fields=sales_lines("OrderedSalesQuantity"),
    ),
    create_only=True,
    depends_on=("accounts", "contact_customers", "products"),
    max_lengths={"SalesOrderNumber": 20},
)

SALES_UNIT = Bind(ValueMap("unit", "SalesUnitSymbol"), "uoms", "name")

fno_orders = Flow(
    name="fno_orders",
    source=FinOps(
        "CDSSalesOrderHeaders",
        key="SalesOrderNumber",
        where=Where(
            (
                In("SalesOrderProcessingStatus", CONFIRMED_OR_LATER, enum="SalesOrderProcessingStatus"),
                Eq("OrderingCustomerIsExternallyMaintained", "Yes", enum="NoYes"),
                Eq("InvoiceCustomerIsExternallyMaintained", "Yes", enum="NoYes"),
                # Only calculated totals go to Sales: F&O's "Calculate sales totals" sets this.
                Eq("AreTotalsUpdated", "Yes", enum="NoYes"),
            )
        ),
    ),
    target=Dataverse("salesorders", key="ordernumber"),
    fields={
        "ordernumber": Field("SalesOrderNumber"),
        "customerid": Ref("OrderingCustomerAccountNumber", ("accounts", "contact_customers"), what="customer"),
        "name": Field("SalesOrderName"),
        "transactioncurrencyid": Bind(Field("CurrencyCode"), "transactioncurrencies", "isocurrencycode"),
        "pricelevelid": PriceList("CurrencyCode"),
        "requestdeliveryby": Calc("date", ("RequestedShippingDate",)),
        "shipto_line1": Field("DeliveryAddressStreet"),
        "shipto_line2": Field("DeliveryAddressStreetNumber"),
        "shipto_city": Field("DeliveryAddressCity"),
        "shipto_stateorprovince": Field("DeliveryAddressStateId"),
        "shipto_postalcode": Field("DeliveryAddressZipCode"),
        "shipto_country": Field("DeliveryAddressCountryRegionISOCode"),
        "msdynce_processingstatus": ValueMap("processing_status", "SalesOrderProcessingStatus", number=True),
        "totalamount": Field("OrderTotalAmount"),
        "discountamount": Field("TotalDiscountAmount"),
        "totaltax": Field("OrderTotalTaxAmount"),
        "freightamount": Field("OrderTotalChargesAmount"),
        # F&O's header-level tax; the P2C solution turns it into the write-in line "Freight Tax".
        "msdynce_misctax": Field("OrderHeaderTaxAmount", default=0),
        "paymenttermscode": ValueMap("payment_terms", "PaymentTermsName", optional=True, reverse=True, number=True),
        "shippingmethodcode": ValueMap("shipping_method", "DeliveryModeCode", optional=True, reverse=True, number=True),
        "freighttermscode": ValueMap("freight_terms", "DeliveryTermsCode", optional=True, reverse=True, number=True),
    },
    # Only orders born in F&O are marked; Sales-born ones keep their origin.
    on_create={"msdynce_ismaintainedexternally": Const(True)},
    lines=Lines(
        source="CDSSalesOrderLines",
        source_parent="SalesOrderNumber",
        source_key="LineCreationSequenceNumber",
        target="salesorderdetails",
        target_parent="salesorderid",
        target_key="sequencenumber",
        fields={
            "sequencenumber": Field("LineCreationSequenceNumber"),
            "productid": Ref("ProductNumber", ("products",), what="product"),
            "quantity": Field("OrderedSalesQuantity"),
            "priceperunit": Field("SalesPrice"),
            "manualdiscountamount": Calc(
                "discount_total", ("LineDiscountAmount", "OrderedSalesQuantity", "FixedPriceCharges")
            ),
            "uomid": SALES_UNIT,
            "extendedamount": Field("LineAmount"),
            "tax": Field("TotalTaxAmount"),
            "description": Field("LineDescription"),
        },
        owned=PRODUCT_LINES,
    ),
    depends_on=("accounts", "contact_customers", "products"),
    schedule="0 */10 * * * *",
)
