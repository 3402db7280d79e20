"""quotes: active Sales quotes with their lines -> F&O sales quotations. FLOWS.md, quotes.

F&O prices, discounts, charges and tax the quotation itself: header discount and
freight are not sent. The quote number is kept, so F&O's quotation number sequence
must accept Sales numbers (a manual or "allow changes to higher numbers" sequence).
"""

from p2c_core.flow import Calc, Dataverse, Field, FinOps, Flow, Lines, Lookup, Ref, Rule, ValueMap, Where
from p2c_core.flows.accounts import CURRENCY

CUSTOMER = Lookup("customerid", {"accounts": "accountnumber", "contacts": "msdynce_contactnumber"})
# Accounts and contacts that are customers both become F&O customers.
CUSTOMER_REF = Ref("customerid", ("accounts", "contact_customers"), what="customer")
PRODUCT = Lookup("productid", {"products": "productnumber"})
UNIT = Lookup("uomid", {"uoms": "name"})

# Header fields that Sales quotes and orders share (the F&O names of quotations and orders match).
SALES_HEADER: dict[str, Rule] = {
    "CurrencyCode": CURRENCY,
    "RequestedShippingDate": Calc("datetime", ("requestdeliveryby",)),
    "DeliveryAddressStreet": Field("shipto_line1"),
    "DeliveryAddressStreetNumber": Field("shipto_line2"),
    "DeliveryAddressCity": Field("shipto_city"),
    "DeliveryAddressStateId": Field("shipto_stateorprovince"),
    "DeliveryAddressZipCode": Field("shipto_postalcode"),
    "DeliveryAddressCountryRegionISOCode": ValueMap("country", "shipto_country"),
    "PaymentTermsName": ValueMap("payment_terms", "paymenttermscode", optional=True),
    "DeliveryModeCode": ValueMap("shipping_method", "shippingmethodcode", optional=True),
    "DeliveryTermsCode": ValueMap("freight_terms", "freighttermscode", optional=True),
}


def sales_lines(quantity: str) -> dict[str, Rule]:
    """Line fields Sales quotes and orders share; `quantity` is the F&O quantity property."""
    return {
        "LineCreationSequenceNumber": Field("sequencenumber"),
        "ProductNumber": Ref("productid", ("products",), what="product"),
        quantity: Field("quantity", default=0),
        "SalesPrice": Field("priceperunit", default=0),
        # Sales keeps a line total; F&O a per-unit discount plus the rounding in a charge.
        "LineDiscountAmount": Calc("discount_per_unit", ("manualdiscountamount", "quantity")),
        "FixedPriceCharges": Calc("discount_remainder", ("manualdiscountamount", "quantity")),
        "SalesUnitSymbol": ValueMap("unit", "uomid", reverse=True),
        "RequestedShippingDate": Calc("datetime", ("requestdeliveryby",)),
        "LineDescription": Field("description"),
    }


quotes = Flow(
    name="quotes",
    source=Dataverse(
        "quotes",
        key="quotenumber",
        # Active (after "Activate quote") and only externally maintained products on it.
        where=Where.all(statecode=1, msdynce_hasexternallymaintainedproductsonly=True),
    ),
    target=FinOps("CDSSalesQuotationHeaders", key="SalesQuotationNumber"),
    resolve=(CUSTOMER,),
    fields={
        "SalesQuotationNumber": Field("quotenumber"),
        "RequestingCustomerAccountNumber": CUSTOMER_REF,
        "InvoiceCustomerAccountNumber": CUSTOMER_REF,
        "SalesQuotationName": Field("name"),
        **SALES_HEADER,
    },
    lines=Lines(
        source="quotedetails",
        source_parent="quoteid",
        source_key="sequencenumber",
        target="CDSSalesQuotationLines",
        target_parent="SalesQuotationNumber",
        target_key="LineCreationSequenceNumber",
        lookups=(PRODUCT, UNIT),
        fields=sales_lines("RequestedSalesQuantity"),
    ),
    depends_on=("accounts", "contact_customers", "products"),
    max_lengths={"SalesQuotationNumber": 20},
)
