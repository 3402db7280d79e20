import pytest

from p2c_core.errors import SettingsError
from p2c_core.settings import load_settings, setting_names, valid_ncrontab

BASE = {
    "P2C_DATAVERSE_URL": "http://127.0.0.1:5001",
    "P2C_FNO_URL": "http://127.0.0.1:5002",
    "P2C_FNO_COMPANY": "USMF",
    "P2C_AUTH_MODE": "none",
}


@pytest.fixture
def env(monkeypatch):
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir("/")  # no .env file from the working tree
    for k, v in BASE.items():
        monkeypatch.setenv(k, v)
    return monkeypatch


def test_valid_settings_with_nested_values(env):
    env.setenv("P2C_FLOWS__ACCOUNTS__SCHEDULE", "0 */1 * * * *")
    env.setenv("P2C_FLOWS__ACCOUNTS__ENABLED", "false")
    env.setenv("P2C_VALUE_MAPS__PAYMENT_TERMS", '{"1": "Net30", "2": "Net10"}')
    env.setenv("P2C_DEFAULTS__CUSTOMER_GROUP", "20")
    s = load_settings()
    assert s.fno_company == "usmf"
    assert s.flow("accounts").enabled is False and s.flow("accounts").schedule == "0 */1 * * * *"
    assert s.value_maps.payment_terms == {"1": "Net30", "2": "Net10"}
    assert s.defaults.customer_group == "20"


@pytest.mark.parametrize(
    ("name", "value", "named"),
    [
        ("P2C_FNO_URL", "not a url", "P2C_FNO_URL"),
        ("P2C_FNO_COMPANY", "toolong", "P2C_FNO_COMPANY"),
        ("P2C_FLOWS__ACCOUNTS__SCHEDULE", "*/5 * * * *", "P2C_FLOWS__ACCOUNTS__SCHEDULE"),
        ("P2C_VALUE_MAPS__PAYMENT_TERMS", "{not json", "P2C_VALUE_MAPS__PAYMENT_TERMS"),
        ("P2C_PAGE_SIZE", "9000", "P2C_PAGE_SIZE"),
        ("P2C_AUTH_MODE", "basic", "P2C_AUTH_MODE"),
    ],
)
def test_bad_setting_is_named(env, name, value, named):
    env.setenv(name, value)
    with pytest.raises(SettingsError, match=named):
        load_settings()


def test_missing_required_setting_is_named(env):
    env.delenv("P2C_FNO_COMPANY")
    with pytest.raises(SettingsError, match="P2C_FNO_COMPANY: Field required"):
        load_settings()


def test_no_token_mode_refused_for_real_services(env):
    env.setenv("P2C_DATAVERSE_URL", "https://contoso.crm.dynamics.com")
    with pytest.raises(SettingsError, match="P2C_DATAVERSE_URL is not a loopback URL"):
        load_settings()
    env.setenv("P2C_AUTH_MODE", "azure")
    env.setenv("P2C_FNO_URL", "https://usmf.operations.dynamics.com")
    env.setenv("P2C_MESSAGE_SIGNING_KEY", "k" * 32)
    assert load_settings().auth_mode == "azure"


def test_secret_is_not_in_repr_or_errors(env):
    env.setenv("P2C_AUTH_MODE", "azure")
    env.setenv("P2C_DATAVERSE_URL", "https://contoso.crm.dynamics.com")
    env.setenv("P2C_FNO_URL", "https://usmf.operations.dynamics.com")
    env.setenv("P2C_MESSAGE_SIGNING_KEY", "canary-signing-key-value-1234567890")
    env.setenv("P2C_CLIENT_SECRET", "canary-secret-value-123")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "canary-secret-value-123" not in str(info.value)
    env.setenv("P2C_TENANT_ID", "t")
    env.setenv("P2C_CLIENT_ID", "c")
    s = load_settings()
    assert "canary-secret-value-123" not in repr(s) and "canary-secret-value-123" not in str(s.model_dump())
    assert "canary-signing-key-value" not in repr(s) and "canary-signing-key-value" not in str(s.model_dump())


@pytest.mark.parametrize(
    ("expr", "ok"),
    [
        ("0 */5 * * * *", True),
        ("0 0 9-17 * * Mon-Fri", True),
        ("0 30 9 * * 1,3", True),
        ("*/5 * * * *", False),
        ("0 */5 * * * * *", False),
        ("a b c d e f", False),
    ],
)
def test_ncrontab(expr, ok):
    assert valid_ncrontab(expr) is ok


# --- Azure: Key Vault references and .env -------------------------------------------

REFERENCE = "@Microsoft.KeyVault(SecretUri=https://kv-p2c-x.vault.azure.net/secrets/dynamics-client-secret)"


@pytest.mark.parametrize("name", ["P2C_CLIENT_SECRET", "P2C_MESSAGE_SIGNING_KEY", "p2c_fno_url"])
def test_an_unresolved_key_vault_reference_is_refused_naming_the_setting(env, name):
    env.setenv("P2C_TENANT_ID", "t")
    env.setenv("P2C_CLIENT_ID", "c")
    env.setenv(name, REFERENCE)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert name in message and "unresolved Key Vault reference" in message
    assert "kv-p2c-x" not in message and "dynamics-client-secret" not in message


def test_an_unresolved_storage_reference_is_refused_naming_it(env):
    from p2c_core.settings import storage_settings

    env.setenv("AzureWebJobsStorage", REFERENCE)
    with pytest.raises(SettingsError, match="AzureWebJobsStorage: unresolved Key Vault reference"):
        storage_settings()


def test_a_resolved_secret_is_taken(env):
    env.setenv("P2C_TENANT_ID", "t")
    env.setenv("P2C_CLIENT_ID", "c")
    env.setenv("P2C_CLIENT_SECRET", "resolved-value")
    secret = load_settings().client_secret
    assert secret is not None and secret.get_secret_value() == "resolved-value"


@pytest.mark.parametrize(
    "marker",
    [
        {"WEBSITE_INSTANCE_ID": "0123abcd"},  # App Service plans
        {"CONTAINER_NAME": "func-p2c", "LEGION_SERVICE_HOST": "1"},  # Flex Consumption
        {"WEBSITE_SKU": "FlexConsumption"},
    ],
)
def test_in_azure_a_dotenv_in_the_app_folder_is_ignored(env, tmp_path, marker):
    (tmp_path / ".env").write_text("P2C_FNO_COMPANY=dotv\nP2C_PAGE_SIZE=7\n")
    env.chdir(tmp_path)
    for name in ("WEBSITE_INSTANCE_ID", "WEBSITE_SKU", "LEGION_SERVICE_HOST"):
        env.delenv(name, raising=False)
    env.delenv("P2C_FNO_COMPANY")
    assert load_settings().page_size == 7  # read on a developer's machine
    for name, value in marker.items():
        env.setenv(name, value)
    with pytest.raises(SettingsError, match="P2C_FNO_COMPANY"):
        load_settings()  # the .env is not read: the setting is missing
    env.setenv("P2C_FNO_COMPANY", "usmf")
    assert load_settings().page_size == 5000


def test_outside_azure_is_what_ci_and_laptops_look_like():
    from p2c_core.appservice import in_azure

    assert in_azure({}) is False
    assert in_azure({"WEBSITE_INSTANCE_ID": ""}) is False
    assert in_azure({"FUNCTIONS_WORKER_RUNTIME": "python"}) is False  # set by local.settings.json too
    assert in_azure({"CONTAINER_NAME": "ci-runner"}) is False  # container runtimes set it anywhere
