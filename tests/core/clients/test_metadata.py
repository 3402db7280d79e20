"""Reading CSDL: entity sets with their type's properties, base types followed, navigation."""

from __future__ import annotations

import httpx

from p2c_core.clients.metadata import parse_csdl
from p2c_sandbox import Sandbox

CSDL = """<?xml version="1.0" encoding="utf-8"?>
<edmx:Edmx Version="4.0" xmlns:edmx="http://docs.oasis-open.org/odata/ns/edmx">
  <edmx:DataServices>
    <Schema Namespace="Microsoft.Dynamics.CRM" Alias="mscrm" xmlns="http://docs.oasis-open.org/odata/ns/edm">
      <EntityType Name="crmbaseentity" Abstract="true"/>
      <EntityType Name="principal" BaseType="mscrm.crmbaseentity" Abstract="true">
        <Property Name="versionnumber" Type="Edm.Int64"/>
      </EntityType>
      <EntityType Name="account" BaseType="mscrm.principal">
        <Key><PropertyRef Name="accountid"/></Key>
        <Property Name="accountid" Type="Edm.Guid"/>
        <Property Name="name" Type="Edm.String"/>
        <Property Name="creditlimit" Type="Edm.Decimal"/>
        <NavigationProperty Name="transactioncurrencyid" Type="mscrm.transactioncurrency"/>
        <NavigationProperty Name="contact_customer_accounts" Type="Collection(mscrm.contact)"/>
      </EntityType>
      <EntityType Name="transactioncurrency" BaseType="Microsoft.Dynamics.CRM.crmbaseentity">
        <Property Name="isocurrencycode" Type="Edm.String"/>
      </EntityType>
      <EntityContainer Name="System">
        <EntitySet Name="accounts" EntityType="Microsoft.Dynamics.CRM.account"/>
        <EntitySet Name="transactioncurrencies" EntityType="mscrm.transactioncurrency"/>
        <EntitySet Name="ghosts" EntityType="mscrm.nosuchtype"/>
      </EntityContainer>
    </Schema>
  </edmx:DataServices>
</edmx:Edmx>"""


def test_entity_sets_carry_their_types_properties_base_types_included():
    sets = parse_csdl(CSDL)
    assert set(sets) == {"accounts", "transactioncurrencies", "ghosts"}
    accounts = sets["accounts"]
    assert accounts.entity_type == "Microsoft.Dynamics.CRM.account"
    assert accounts.properties == {
        "versionnumber": "Edm.Int64",  # from the base type's base type, by alias
        "accountid": "Edm.Guid",
        "name": "Edm.String",
        "creditlimit": "Edm.Decimal",
    }
    assert accounts.navigation == {"transactioncurrencyid", "contact_customer_accounts"}
    assert sets["transactioncurrencies"].properties == {"isocurrencycode": "Edm.String"}


def test_an_unknown_type_gives_an_empty_set_not_an_error():
    ghosts = parse_csdl(CSDL.encode())["ghosts"]
    assert (ghosts.properties, ghosts.navigation) == ({}, set())


def test_a_base_type_cycle_stops():
    looped = CSDL.replace('<EntityType Name="crmbaseentity" Abstract="true"/>',
                          '<EntityType Name="crmbaseentity" BaseType="mscrm.account" Abstract="true"/>')  # fmt: skip
    assert parse_csdl(looped)["accounts"].properties["name"] == "Edm.String"


def test_the_services_metadata_as_served():
    with Sandbox() as sb:
        dataverse = parse_csdl(httpx.get(sb.dataverse_url + "/api/data/v9.2/$metadata").content)
        fno = parse_csdl(httpx.get(sb.fno_url + "/data/$metadata").content)
    assert dataverse["accounts"].properties["accountnumber"] == "Edm.String"
    assert "transactioncurrencyid" in dataverse["accounts"].navigation
    assert fno["CustomersV3"].properties["CustomerAccount"] == "Edm.String"
    assert {"dataAreaId", "CreditLimit"} <= set(fno["CustomersV3"].properties)
