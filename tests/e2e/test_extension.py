"""A flow added as one module runs in the local host like the standard ones, with no other edit."""

from __future__ import annotations

from p2c_cli.host import LocalHost
from p2c_cli.local import sync
from p2c_core import flows
from p2c_core.runtime import get_runtime, reset_runtime
from tests.core.test_registry import PARTNERS, write_module
from tests.e2e.conftest import E2E


def test_a_new_flow_module_syncs_in_the_local_host(e2e: E2E, tmp_path):
    from function_app import build_app

    with flows.extended(write_module(tmp_path, "partners", PARTNERS)) as extended:
        reset_runtime()  # settings and clients that know the new flow
        runtime = get_runtime()
        host = LocalHost(build_app(extended.flows), runtime.storage, lease_seconds=2)
        try:
            summary = sync(host, runtime, ["accounts", "partners"])
        finally:
            host.close()
    partners = [r for r in e2e.sandbox.dataverse.rows("accounts")
                if r.get("customertypecode") == 5 and r.get("statecode") == 0 and r.get("accountnumber")]  # fmt: skip
    assert partners, "the demo seed has partner accounts"
    customers = {r["CustomerAccount"]: r for r in e2e.sandbox.fno.rows("CustomersV3")}
    for account in partners:
        assert customers[account["accountnumber"]]["CustomerGroupId"] == "PART"
        assert customers[account["accountnumber"]]["OrganizationName"] == account["name"]
    assert summary.flows["partners"].written == len(partners)
    assert list(summary.flows) == ["accounts", "partners"]
