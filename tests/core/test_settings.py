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
    assert load_settings().auth_mode == "azure"


def test_secret_is_not_in_repr_or_errors(env):
    env.setenv("P2C_AUTH_MODE", "azure")
    env.setenv("P2C_CLIENT_SECRET", "canary-secret-value-123")
    with pytest.raises(SettingsError) as info:
        load_settings()
    assert "canary-secret-value-123" not in str(info.value)
    env.setenv("P2C_TENANT_ID", "t")
    env.setenv("P2C_CLIENT_ID", "c")
    s = load_settings()
    assert "canary-secret-value-123" not in repr(s) and "canary-secret-value-123" not in str(s.model_dump())


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
