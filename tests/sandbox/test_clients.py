"""Client libraries written elsewhere, against the sandbox: if they work here, the sandbox
speaks the services' protocol and not only p2c's idea of it.

- Dataverse: Microsoft's Python SDK (`powerplatform-dataverse-client`), which reads the
  metadata API (`EntityDefinitions`, `/Keys`, `/Attributes`) before it reads or writes rows
  and talks HTTPS only, so the sandbox is served over TLS here; and `python-odata`, a
  generic OData v4 client that builds its entity classes from `$metadata`.
- F&O: `python-odata` (`/data/$metadata`, composite keys, enums, `cross-company=true`).

Both libraries use `requests`, which trusts the sandbox's self-signed certificate through
`REQUESTS_CA_BUNDLE`. Any bearer token is accepted; the credential below is a fixed one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from odata import ODataService
from odata.flags import ODataServerFlags
from PowerPlatform.Dataverse.client import DataverseClient
from PowerPlatform.Dataverse.core.config import DataverseConfig
from PowerPlatform.Dataverse.core.errors import HttpError
from PowerPlatform.Dataverse.models.upsert import UpsertItem
from requests.auth import AuthBase

from p2c_sandbox import Sandbox
from p2c_sandbox.tls import self_signed


class StaticToken:
    """An azure-identity style credential with a fixed token: the sandbox checks only the scheme."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("sandbox-token", int(time.time()) + 3600)


class Bearer(AuthBase):
    """The token for python-odata (it takes a requests auth object)."""

    def __init__(self, *, cross_company: bool = False) -> None:
        self.cross_company = cross_company

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = "Bearer sandbox-token"
        if self.cross_company:
            # A client that works across legal entities adds cross-company=true to every
            # request; python-odata has no custom query options, so it goes on here.
            r.prepare_url(r.url or "", {"cross-company": "true"})
        return r


@pytest.fixture(scope="module")
def sb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    tls = self_signed(tmp_path_factory.mktemp("tls"))
    with pytest.MonkeyPatch.context() as env, Sandbox(tls=tls, fno_page_size=4) as sandbox:
        env.setenv("REQUESTS_CA_BUNDLE", str(tls.cert))
        yield sandbox


@pytest.fixture
def sdk(sb: Sandbox) -> Iterator[DataverseClient]:
    with DataverseClient(sb.dataverse_url, StaticToken(), DataverseConfig()) as client:
        yield client


def test_dataverse_sdk_reads_metadata_writes_by_key_and_pages(sb: Sandbox, sdk: DataverseClient):
    table = sdk.tables.get("account")
    assert table is not None and (table.entity_set_name, table.primary_id_attribute) == ("accounts", "accountid")
    assert [k.key_attributes for k in sdk.tables.get_alternate_keys("account")] == [["accountnumber"]]
    choices = sdk.tables.list_columns("account", select=["LogicalName"], filter="AttributeType eq 'Picklist'")
    assert "customertypecode" in {c["LogicalName"] for c in choices}

    # Create: the SDK turns the choice label into its value from the Picklist metadata.
    new_id = sdk.records.create("account", {"name": "SDK Traders", "accountnumber": "SDK-001",
                                            "customertypecode": "Customer"})  # fmt: skip
    created = sdk.records.retrieve("account", new_id, select=["name", "customertypecode"])
    assert created is not None and created["customertypecode"] == 3 and created.etag

    # Update by primary key (If-Match: *), then one of a key that is not there.
    sdk.records.update("account", new_id, {"telephone1": "+1 425 555 0101"})
    updated = sdk.records.retrieve("account", new_id, select=["telephone1"])
    assert updated is not None and updated["telephone1"] == "+1 425 555 0101"
    with pytest.raises(HttpError) as missing:
        sdk.records.update("account", "00000000-0000-0000-0000-0000000000aa", {"name": "nobody"})
    assert missing.value.status_code == 404

    # Upsert by alternate key: one new row, one existing.
    sdk.records.upsert("account", [UpsertItem(alternate_key={"accountnumber": "SDK-002"}, record={"name": "Upserted"})])
    sdk.records.upsert("account", [UpsertItem(alternate_key={"accountnumber": "SDK-001"},
                                              record={"name": "SDK Traders Ltd"})])  # fmt: skip
    rows = {
        r["accountnumber"]: r
        for r in sb.dataverse.rows("accounts")
        if (r.get("accountnumber") or "").startswith("SDK-")
    }
    assert rows["SDK-001"]["accountid"] == new_id and rows["SDK-001"]["name"] == "SDK Traders Ltd"
    assert rows["SDK-002"]["name"] == "Upserted"

    # Filter and server-driven paging (Prefer: odata.maxpagesize, @odata.nextLink).
    pages = list(sdk.records.list_pages("account", filter="customertypecode eq 3 and statecode eq 0",
                                        select=["accountnumber"], page_size=3))  # fmt: skip
    expected = [r for r in sb.dataverse.rows("accounts") if r.get("customertypecode") == 3 and r["statecode"] == 0]
    assert len(pages) > 1 and all(len(p) <= 3 for p in pages)
    assert sorted(r["accountid"] for p in pages for r in p) == sorted(r["accountid"] for r in expected)

    sdk.records.delete("account", new_id)
    assert sdk.records.retrieve("account", new_id) is None


def test_python_odata_reads_dataverse_metadata_and_follows_change_tracking(sb: Sandbox, sdk: DataverseClient):
    dv = ODataService(sb.dataverse_url + "/api/data/v9.2/", reflect_entities=True, auth=Bearer(), quiet_progress=True)
    accounts = dv.entities["accounts"]
    state = accounts.__new__(accounts).__odata__
    assert [p.name for _, p in state.primary_key_properties] == ["accountid"]
    assert {"accountnumber", "versionnumber", "_transactioncurrencyid_value"} <= {p.name for _, p in state.properties}

    # Change tracking needs `Prefer: odata.track-changes` and the delta link, which python-odata's
    # Query does not expose; its connection sends the GETs (same session, auth and error handling).
    connection = dv.default_context.connection
    prefer = {"Prefer": "odata.track-changes,odata.maxpagesize=7"}

    def read_all(url: str) -> tuple[list[dict[str, Any]], str]:
        rows: list[dict[str, Any]] = []
        while True:
            page = connection.execute_get(url, extra_headers=prefer)
            assert isinstance(page, dict)  # JSON in, so a dict out (the library also allows text)
            assert len(page["value"]) <= 7
            rows += page["value"]
            if "@odata.deltaLink" in page:
                return rows, page["@odata.deltaLink"]
            url = page["@odata.nextLink"]

    initial, delta_link = read_all(sb.dataverse_url + "/api/data/v9.2/accounts?$select=name,accountnumber")
    assert sorted(r["accountid"] for r in initial) == sorted(r["accountid"] for r in sb.dataverse.rows("accounts"))

    # Changes made through the other library show up in the delta: a new row, a changed one, a deleted one.
    added = sdk.records.create("account", {"name": "Delta New", "accountnumber": "DLT-001"})
    changed, gone = initial[0]["accountid"], initial[1]["accountid"]
    sdk.records.update("account", changed, {"name": "Delta Changed"})
    sdk.records.delete("account", gone)
    delta, next_link = read_all(delta_link)
    assert {r["accountid"]: r["name"] for r in delta if "accountid" in r} == {
        added: "Delta New",
        changed: "Delta Changed",
    }
    assert [(r["id"], r["reason"]) for r in delta if "reason" in r] == [(gone, "deleted")]
    assert next_link != delta_link and read_all(next_link)[0] == []


def test_python_odata_against_fno_composite_keys_cross_company_and_paging(sb: Sandbox):
    root = sb.fno_url + "/data/"
    # F&O rejects nulls for its non-nullable properties, so new entities are sent without them.
    flags = ODataServerFlags(skip_null_properties=True)
    fno = ODataService(root, reflect_entities=True, auth=Bearer(cross_company=True), quiet_progress=True,
                       server_flags=flags)  # fmt: skip
    usmf_only = ODataService(root, reflect_entities=True, auth=Bearer(), quiet_progress=True, server_flags=flags)
    customers = fno.entities["CustomersV3"]
    keys = [p.name for _, p in customers.__new__(customers).__odata__.primary_key_properties]
    assert sorted(keys) == ["CustomerAccount", "dataAreaId"]
    no_yes = fno.types["Microsoft.Dynamics.DataEntities.NoYes"]

    # Create in a company other than the caller's default one.
    berlin = customers()
    berlin.dataAreaId, berlin.CustomerAccount, berlin.OrganizationName = "demf", "DE-100", "Berlin GmbH"
    berlin.IsExternallyMaintained = no_yes.Yes
    fno.save(berlin)
    assert berlin.__odata__.instance_url.endswith("CustomersV3(CustomerAccount='DE-100',dataAreaId='demf')")

    # Filters: across companies it is there; in the default company it is not.
    query = fno.query(customers)
    in_demf = query.filter(customers.dataAreaId == "demf").all()
    # The one created beside the second company's own (seed_companies.py).
    assert [c.CustomerAccount for c in in_demf if c.CustomerAccount == "DE-100"] == ["DE-100"]
    assert {c.dataAreaId for c in in_demf} == {"demf"} and len(in_demf) > 1
    ours = usmf_only.entities["CustomersV3"]
    assert usmf_only.query(ours).filter(ours.CustomerAccount == "DE-100").all() == []
    external = query.filter(customers.IsExternallyMaintained == no_yes.Yes).all()  # an enum literal
    assert "DE-100" in {c.CustomerAccount for c in external}

    # Paging: 4 rows a page here, every customer of every company once.
    everyone = [(c.dataAreaId, c.CustomerAccount) for c in query.all()]
    stored = [(r["dataAreaId"], r["CustomerAccount"]) for r in sb.fno.rows("CustomersV3")]
    assert len(everyone) > 4 and sorted(everyone) == sorted(stored)

    # Update by composite key (PATCH, then python-odata reads the entity back by its key).
    berlin.OrganizationName = "Berlin Handels GmbH"
    fno.save(berlin)
    assert berlin.OrganizationName == "Berlin Handels GmbH"

    # F&O has no upsert: look up by the natural key, then update or create.
    for account, name in (("DE-100", "Berlin Handels AG"), ("DE-101", "Hamburg GmbH")):
        found = query.filter(customers.dataAreaId == "demf").filter(customers.CustomerAccount == account).first()
        target = found if found is not None else customers()
        if found is None:
            target.dataAreaId, target.CustomerAccount = "demf", account
        target.OrganizationName = name
        fno.save(target)
    mine = query.filter(customers.dataAreaId == "demf").filter(customers.CustomerAccount >= "DE-100")
    names = {c.CustomerAccount: c.OrganizationName for c in mine.all()}
    assert names == {"DE-100": "Berlin Handels AG", "DE-101": "Hamburg GmbH"}

    for customer in mine.all():
        fno.delete(customer)
    assert mine.all() == []
    assert query.filter(customers.dataAreaId == "demf").all()  # the second company's own stay
