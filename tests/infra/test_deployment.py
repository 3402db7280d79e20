"""What a first deployment needs from infra/, read from the parsed Bicep in place of the
compiler and ARM (no Azure here): each test names the defect it guards against."""

from __future__ import annotations

import importlib.util
import json

from p2c_core.flows import all_flows
from tests.infra.bicep import (
    INFRA,
    accessor,
    app_settings,
    body,
    condition,
    function,
    parsed,
    resources_of,
    site,
    texts,
)

ROOT = INFRA.parent
# ARM error 51021 names these siteConfig properties as invalid for Flex Consumption sites
# (reports quoted in Azure/terraform-azurerm-avm-res-web-site#345 and #360); the Flex
# samples set none of them and keep the runtime in functionAppConfig.
FLEX_REJECTED_SITE_CONFIG = {
    "ftpsState",
    "http20Enabled",
    "linuxFxVersion",
    "windowsFxVersion",
    "use32BitWorkerProcess",
    "netFrameworkVersion",
    "functionsRuntimeScaleMonitoringEnabled",
    "preWarmedInstanceCount",
}
# "Flex Consumption plan deprecations" (functions-app-settings.md): the platform owns these.
FLEX_FORBIDDEN_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
}


def test_flex_site_sets_no_property_flex_rejects():
    site_config = site()["properties"]["siteConfig"]
    assert not FLEX_REJECTED_SITE_CONFIG & set(site_config), "ARM rejects these on a Flex Consumption site"
    assert set(site_config) <= {"appSettings", "minTlsVersion", "alwaysOn"}
    runtime = site()["properties"]["functionAppConfig"]["runtime"]
    assert runtime == {"name": "python", "version": "3.11"}


def test_no_app_setting_that_flex_forbids():
    assert not FLEX_FORBIDDEN_SETTINGS & set(app_settings())


def _declared(file: str) -> dict[str, dict]:
    return parsed(file)["resources"]


def test_every_role_is_scoped_to_a_declared_resource_fed_by_a_module_output():
    """A role on an `existing` resource named by a literal can run before the resource exists."""
    callers = [
        (file, symbol, module)
        for file in ("main.bicep", "resources.bicep")
        for symbol, module in parsed(file)["modules"].items()
    ]
    for file, _, assignment in resources_of("Microsoft.Authorization/roleAssignments"):
        scope = body(assignment)["scope"]
        declared = _declared(file)
        assert scope in declared, f"{file}: a role assignment is scoped to {scope}, which is not declared"
        target = declared[scope]
        if not target.get("existing"):
            continue
        name_param = body(target)["name"]
        assert name_param in parsed(file)["parameters"], f"{file}: {scope} is named by {name_param}"
        fed = [
            (caller_file, symbol, body(module)["params"][name_param])
            for caller_file, symbol, module in callers
            if module["detail"]["path"] == file
        ]
        assert fed, f"nothing calls {file}"
        for caller_file, symbol, value in fed:
            path = accessor(value)
            modules = parsed(caller_file)["modules"]
            assert len(path) == 3 and path[0] in modules and path[1] == "outputs", (
                f"{caller_file}: module {symbol} names {name_param} by {value!r}, not by a module's output"
            )


def test_key_vault_references_resolve_with_the_user_assigned_identity():
    properties = site()["properties"]
    assert site()["identity"]["type"] == "UserAssigned"
    assert properties["keyVaultReferenceIdentity"] == "identityId"
    references = [
        name for name, value in app_settings().items() if any("@Microsoft.KeyVault(" in t for t in texts(value))
    ]
    assert sorted(references) == ["P2C_CLIENT_SECRET", "P2C_EVENTS_KEY", "P2C_MESSAGE_SIGNING_KEY"]


def test_the_message_signing_key_is_generated_into_the_vault_and_kept():
    vault = _declared("modules/keyvault.bicep")
    secret = vault["messageSigningKeySecret"]
    assert secret["type"] == "Microsoft.KeyVault/vaults/secrets"
    assert function(condition(secret)) is None  # `!empty(messageSigningKey)`: empty keeps the vault's secret
    assert "messageSigningKey" in json.dumps(condition(secret))
    decorators = parsed("main.bicep")["parameters"]["messageSigningKey"]["decorators"]
    assert {"type": "secure"} in decorators
    # azd generates the key once per environment and passes it on every provision.
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["messageSigningKey"]["value"] == "${P2C_MESSAGE_SIGNING_KEY}"
    azure_yaml = (ROOT / "azure.yaml").read_text()
    assert "preprovision" in azure_yaml and "infra/hooks/signing-key.sh" in azure_yaml
    assert "azd env set P2C_MESSAGE_SIGNING_KEY" in (INFRA / "hooks" / "signing-key.sh").read_text()


def test_a_secret_name_without_a_client_id_fails_the_deployment():
    guard = parsed("main.bicep")["variables"]["clientSecretName"]["value"]["operator"]
    assert guard["type"] == "conditional"
    rule = json.dumps(guard["operands"]["condition"])
    assert '"item_to_test": "dynamicsClientId"' in rule and '"item_to_test": "dynamicsClientSecretName"' in rule
    failed = function(guard["operands"]["true_value"])
    assert failed is not None and failed[0] == "fail"
    resources = parsed("main.bicep")["modules"]["resources"]["config"]["params"]
    assert resources["dynamicsClientSecretName"] == "clientSecretName"


def test_object_parameters_are_merged_with_their_defaults():
    main = parsed("main.bicep")
    params = main["modules"]["resources"]["config"]["params"]
    for name, defaults in (("schedules", "defaultSchedules"), ("enabled", "defaultEnabled"),
                           ("valueMaps", "defaultValueMaps"), ("defaults", "defaultDefaults")):  # fmt: skip
        assert main["parameters"][name]["default"] == {}
        assert function(params[name]) == ("union", {"arg_1": defaults, "arg_2": name})
    for name in ("defaultSchedules", "defaultEnabled"):
        assert sorted(main["variables"][name]["value"]) == sorted(f.name for f in all_flows())


def test_location_is_one_that_offers_flex_consumption():
    decorators = parsed("main.bicep")["parameters"]["location"]["decorators"]
    (allowed,) = [d["argument"] for d in decorators if d["type"] == "allowed"]
    assert {"westeurope", "eastus", "northeurope"} <= set(allowed)
    assert "westindia" not in allowed  # no Flex Consumption there


def test_deploying_principal_roles_are_opt_in_with_a_principal_type():
    main = parsed("main.bicep")["parameters"]
    assert main["principalType"]["default"] == "User"
    assert [d["argument"] for d in main["principalType"]["decorators"] if d["type"] == "allowed"] == [
        ["User", "ServicePrincipal"]
    ]
    assert main["principalDataRoles"]["default"] is False and main["principalSecretsOfficer"]["default"] is False
    roles = parsed("resources.bicep")["modules"]["principalRoles"]
    rule = json.dumps(condition(roles))
    assert "principalDataRoles" in rule and "principalSecretsOfficer" in rule
    assert body(roles)["params"]["principalType"] == "principalType"


def test_basic_publishing_credentials_are_off():
    found = resources_of("Microsoft.Web/sites/basicPublishingCredentialsPolicies")
    policies = {body(r)["name"]: body(r)["properties"] for _, _, r in found}
    assert policies == {"ftp": {"allow": False}, "scm": {"allow": False}}


def test_key_vault_and_storage_send_diagnostics_to_log_analytics():
    scoped = {(file, body(r)["scope"]) for file, _, r in resources_of("Microsoft.Insights/diagnosticSettings")}
    assert ("modules/keyvault.bicep", "vault") in scoped
    for service in ("storage", "blobService", "queueService", "tableService"):
        assert ("modules/storage.bicep", service) in scoped


def test_vnet_option_is_off_by_default_and_closes_storage_when_on():
    main = parsed("main.bicep")["parameters"]
    assert main["vnetEnabled"]["default"] is False
    network = parsed("resources.bicep")["modules"]["network"]
    assert condition(network) == "vnetEnabled"
    endpoints = parsed("modules/network.bicep")["variables"]["endpoints"]["value"]
    assert sorted(e["groupId"] for e in endpoints) == ["blob", "queue", "table", "vault"]
    storage = parsed("modules/storage.bicep")["resources"]["storage"]["config"]["properties"]
    closed = storage["publicNetworkAccess"]["operator"]
    assert closed["type"] == "conditional" and closed["operands"]["condition"] == "vnetEnabled"
    assert closed["operands"]["true_value"] == "Disabled"
    assert "appSubnetId" in json.dumps(site()["properties"]["virtualNetworkSubnetId"])


def test_key_vault_name_can_move_after_a_purge():
    name = parsed("resources.bicep")["variables"]["keyVaultName"]["value"]["operator"]
    assert name["type"] == "conditional"
    assert "keyVaultNameSalt" in json.dumps(name)
    vault = body(_declared("modules/keyvault.bicep")["vault"])
    assert vault["properties"]["enablePurgeProtection"] is True and vault["name"] == "name"


def test_alerts_fire_on_failed_functions_failed_records_and_poison_messages():
    alerts = parsed("modules/monitoring.bicep")["variables"]["alerts"]["value"]
    queries = {a["name"]: a["query"] for a in alerts}
    # Rule names are alert-p2c-<name>-<token>: the two that existed keep theirs (an upgrade
    # replaces them in place instead of leaving the old query running).
    assert {"failures", "poison"} <= set(queries)
    assert queries["function-failures"].startswith("requests | where success == false")
    assert 'customMetrics | where name == "p2c.failures"' in queries["failures"]
    assert 'has "MaxDequeueCount"' in queries["poison"]
    # `has` matches whole terms: "Exception" never matched FunctionInvocationException.
    assert not any('has "Exception"' in q for q in queries.values())
    readme = (INFRA / "README.md").read_text()
    for query in queries.values():
        assert query.replace("|", "\\|") in readme, "infra/README.md lists every alert with its query"


def test_console_authentication_is_opt_in_and_lets_anonymous_requests_reach_the_app():
    assert parsed("main.bicep")["parameters"]["consoleAuthClientId"]["default"] == ""
    auth = _declared("modules/functionapp.bicep")["auth"]
    assert "consoleAuthClientId" in json.dumps(condition(auth))
    settings = body(auth)
    assert settings["name"] == "authsettingsV2"
    validation = settings["properties"]["globalValidation"]
    assert validation == {"requireAuthentication": False, "unauthenticatedClientAction": "AllowAnonymous"}


def test_host_sampling_keeps_failures():
    host = json.loads((ROOT / "host.json").read_text())
    excluded = set(host["logging"]["applicationInsights"]["samplingSettings"]["excludedTypes"].split(";"))
    assert {"Request", "Exception", "Trace"} <= excluded


def test_no_env_file_is_deployed():
    patterns = (ROOT / ".funcignore").read_text().split()
    assert ".env*" in patterns and ".azure" in patterns


def _check_infra():
    spec = importlib.util.spec_from_file_location("check_infra", ROOT / "tools" / "check_infra.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_check_infra_decides_each_vnet_variant():
    variant = _check_infra().variant
    text = "param vnetEnabled bool\nvar a = vnetEnabled ? 'Disabled' : 'Enabled'\n"
    text += "module n 'x.bicep' = if (vnetEnabled) {\nvar s = vnetEnabled ? network.outputs.appSubnetId : ''\n"
    assert variant(text, True) == (
        "param vnetEnabled bool = true\nvar a = 'Disabled'\nmodule n 'x.bicep' = if (true) {\n"
        "var s = network.outputs.appSubnetId\n"
    )
    assert variant(text, False) == (
        "param vnetEnabled bool = false\nvar a = 'Enabled'\nmodule n 'x.bicep' = if (false) {\nvar s = ''\n"
    )
    # Every use of the parameter is one the variants decide.
    for path in INFRA.rglob("*.bicep"):
        for vnet in (False, True):
            decided = variant(path.read_text(), vnet)
            code = [line for line in decided.splitlines() if not line.lstrip().startswith("//")]
            rest = [line for line in code if "vnetEnabled" in line]
            passed_on = ("param vnetEnabled", "    vnetEnabled: vnetEnabled")
            assert all(line.startswith(passed_on) for line in rest), (path, rest)


def test_readme_walks_a_first_deployment_in_order():
    readme = (INFRA / "README.md").read_text()
    steps = ["azd provision", "az keyvault secret set", "azd env set P2C_CLIENT_SECRET_NAME", "azd deploy"]
    positions = [readme.find(step) for step in steps]
    assert -1 not in positions and positions == sorted(positions), dict(zip(steps, positions, strict=True))
    for topic in ("Application users", "Microsoft Entra applications"):
        assert topic in readme


def test_the_signing_key_hook_makes_a_key_once_and_keeps_it(tmp_path):
    """infra/hooks/signing-key.sh against a stand-in `azd` that keeps its values in a file."""
    import os
    import subprocess

    values = tmp_path / "env"
    values.write_text('AZURE_ENV_NAME="p2c-test"\n')
    fake = tmp_path / "bin" / "azd"
    fake.parent.mkdir()
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ "$1 $2" = "env get-values" ]; then cat {values}; exit 0; fi\n'
        f'if [ "$1 $2" = "env set" ]; then echo "$3=\\"$4\\"" >> {values}; exit 0; fi\n'
        "exit 2\n"
    )
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}"}
    hook = INFRA / "hooks" / "signing-key.sh"
    for _ in range(2):
        subprocess.run(["sh", str(hook)], env=env, check=True, capture_output=True)
    keys = [line for line in values.read_text().splitlines() if line.startswith("P2C_MESSAGE_SIGNING_KEY=")]
    assert len(keys) == 1, "made once, kept after"
    assert len(keys[0].split("=", 1)[1].strip('"')) >= 64
