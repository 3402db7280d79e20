"""accounts: Sales customer accounts -> F&O customers (CustomersV3). FLOWS.md, accounts."""

from p2c_core.flow import Const, Dataverse, Default, Eq, Field, FinOps, Flow, Lookup, Rule, ValueMap, Where

# Shared by the Sales -> F&O flows: a currency lookup read as its ISO code.
CURRENCY = Lookup("transactioncurrencyid", {"transactioncurrencies": "isocurrencycode"})
# Phone, e-mail and delivery address of a customer, from a Sales account or contact alike.
CUSTOMER_CONTACT: dict[str, Rule] = {
    "PrimaryContactPhone": Field("telephone1"),
    "PrimaryContactFax": Field("fax"),
    "PrimaryContactEmail": Field("emailaddress1"),
    "PrimaryContactURL": Field("websiteurl"),
    "DeliveryAddressStreet": Field("address1_line1"),
    "DeliveryAddressCity": Field("address1_city"),
    "DeliveryAddressState": Field("address1_stateorprovince"),
    "DeliveryAddressZipCode": Field("address1_postalcode"),
    "DeliveryAddressCountryRegionISOCode": ValueMap("country", "address1_country"),
}

accounts = Flow(
    name="accounts",
    source=Dataverse(
        "accounts",
        key="accountnumber",
        where=Where.all(customertypecode=3, statecode=0),  # relationship type Customer, active
    ),
    target=FinOps("CustomersV3", key="CustomerAccount"),
    fields={
        "CustomerAccount": Field("accountnumber"),
        "OrganizationName": Field("name"),
        **CUSTOMER_CONTACT,
        "DeliveryAddressCounty": Field("address1_county"),
        "InvoiceAddressStreet": Field("address2_line1"),
        "InvoiceAddressCity": Field("address2_city"),
        "InvoiceAddressState": Field("address2_stateorprovince"),
        "InvoiceAddressZipCode": Field("address2_postalcode"),
        "InvoiceAddressCountryRegionISOCode": ValueMap("country", "address2_country"),
        # Non-nullable in F&O: a cleared value in Sales becomes 0.
        "CreditLimit": Field("creditlimit", default=0),
        "OrganizationNumberOfEmployees": Field("numberofemployees", default=0),
        "SalesMemo": Field("description"),
        "SalesCurrencyCode": CURRENCY,
        "PaymentTerms": ValueMap("payment_terms", "paymenttermscode", optional=True),
        "DeliveryTerms": ValueMap("freight_terms", "address1_freighttermscode", optional=True),
        "DeliveryMode": ValueMap("shipping_method", "address1_shippingmethodcode", optional=True),
        "CustomerGroupId": Default("customer_group"),
        "SiteId": Default("site"),
        "WarehouseId": Default("warehouse"),
        "LanguageId": Default("language"),
    },
    on_create={
        # The invoice flow reads only externally maintained customers.
        "IsExternallyMaintained": Const("Yes"),
        "PartyType": Const("Organization"),
    },
    max_lengths={"CustomerAccount": 20, "OrganizationName": 100},
    required=("OrganizationName",),
    owned=Where((Eq("IsExternallyMaintained", "Yes", enum="NoYes"), Eq("PartyType", "Organization"))),
)
