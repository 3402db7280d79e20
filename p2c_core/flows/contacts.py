"""contacts: Sales contacts -> F&O contact persons, or customers when the contact is one.

FLOWS.md, contacts. One Sales table, two targets: two flows with disjoint filters, so
each has one target, one key map and its own cursor.
"""

from p2c_core.flow import Const, Dataverse, Default, Eq, Field, FinOps, Flow, Lookup, Ref, ValueMap, Where
from p2c_core.flows.accounts import CURRENCY, CUSTOMER_CONTACT

CONTACT_NUMBER = "msdynce_contactnumber"  # P2C "contact number", like CON-01000-BVRCPS

contacts = Flow(
    name="contacts",
    source=Dataverse(
        "contacts",
        key=CONTACT_NUMBER,
        # Not a customer in its own right, and its company is an account; others are skipped.
        where=Where.all(statecode=0, msdynce_isactivecustomer=False, msdynce_iscompanyanaccount=True),
    ),
    target=FinOps("CDSContactPersons", key="ContactPersonPartyNumber", more_keys=("AssociatedPartyNumber",)),
    resolve=(Lookup("parentcustomerid", {"accounts": "accountnumber"}),),
    fields={
        "ContactPersonPartyNumber": Field(CONTACT_NUMBER),
        # The party of the F&O customer that the parent account became.
        "AssociatedPartyNumber": Ref("parentcustomerid", ("accounts",), returns="PartyNumber", what="parent account"),
        "FirstName": Field("firstname"),
        "MiddleName": Field("middlename"),
        "LastName": Field("lastname"),
        "EmploymentProfession": Field("jobtitle"),
        "EmploymentDepartment": Field("department"),
        "PrimaryEmailAddress": Field("emailaddress1"),
        "PrimaryPhoneNumber": Field("telephone1"),
        "PrimaryFaxNumber": Field("fax"),
        "PrimaryURL": Field("websiteurl"),
        "PrimaryAddressStreet": Field("address1_line1"),
        "PrimaryAddressCity": Field("address1_city"),
        "PrimaryAddressStateId": Field("address1_stateorprovince"),
        "PrimaryAddressZipCode": Field("address1_postalcode"),
        # The country map yields ISO codes; F&O's CountryRegionId is its own 3-letter id.
        "PrimaryAddressCountryRegionISOCode": ValueMap("country", "address1_country"),
        "Notes": Field("description"),
    },
    on_create={"IsContactPersonExternallyMaintained": Const("Yes")},
    depends_on=("accounts",),
    max_lengths={"ContactPersonPartyNumber": 20},
    required=("LastName",),
    owned=Where((Eq("IsContactPersonExternallyMaintained", "Yes", enum="NoYes"),)),
)

contact_customers = Flow(
    name="contact_customers",
    source=Dataverse("contacts", key=CONTACT_NUMBER, where=Where.all(statecode=0, msdynce_isactivecustomer=True)),
    target=FinOps("CustomersV3", key="CustomerAccount"),
    fields={
        "CustomerAccount": Field(CONTACT_NUMBER),
        "PersonFirstName": Field("firstname"),
        "PersonMiddleName": Field("middlename"),
        "PersonLastName": Field("lastname"),
        "PersonProfessionalTitle": Field("jobtitle"),
        **CUSTOMER_CONTACT,
        "SalesCurrencyCode": CURRENCY,
        "CustomerGroupId": Default("customer_group"),
        "LanguageId": Default("language"),
    },
    on_create={"IsExternallyMaintained": Const("Yes"), "PartyType": Const("Person")},
    depends_on=("accounts",),
    max_lengths={"CustomerAccount": 20},
    required=("PersonLastName",),
    owned=Where((Eq("IsExternallyMaintained", "Yes", enum="NoYes"), Eq("PartyType", "Person"))),
)
