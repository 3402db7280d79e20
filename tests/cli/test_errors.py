"""The CLI's error mapping, global flags and the sync watchdog, without services."""

from __future__ import annotations

import json

import pytest

from p2c_cli import probe
from p2c_cli.azurite import ACCOUNT_KEY
from p2c_cli.entry import hoist_global_flags, run
from p2c_cli.errors import ExitCode, OperatorError, explain, storage_endpoint
from p2c_cli.render import duration
from p2c_cli.syncing import STALL_S, Watchdog
from p2c_core.errors import MappingError, SettingsError, TransientError


def test_global_flags_are_read_anywhere_before_a_double_dash():
    assert hoist_global_flags(["sync", "accounts", "-v"]) == ["-v", "sync", "accounts"]
    assert hoist_global_flags(["status", "--debug", "-v", "-v"]) == ["--debug", "-v", "status"]
    assert hoist_global_flags(["replay", "--", "-v"]) == ["replay", "--", "-v"]


def test_exceptions_become_causes_with_their_exit_codes():
    assert explain(SettingsError("invalid settings: P2C_FNO_URL: x")).code == ExitCode.USAGE
    assert explain(KeyError("unknown flow 'x'; known: accounts")).message == "unknown flow 'x'; known: accounts"
    assert explain(KeyboardInterrupt()).code == ExitCode.INTERRUPTED
    assert explain(MappingError("m")).code == ExitCode.INTERNAL
    unexpected = explain(RuntimeError("boom"))
    assert unexpected.code == ExitCode.INTERNAL and "--debug" in (unexpected.hint or "")


def test_an_unreachable_service_names_its_setting(monkeypatch):
    from p2c_core.settings import get_settings

    for k, v in {"P2C_DATAVERSE_URL": "http://127.0.0.1:1", "P2C_FNO_URL": "http://127.0.0.1:2",
                 "P2C_FNO_COMPANY": "usmf", "P2C_AUTH_MODE": "none"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    get_settings.cache_clear()
    try:
        error = explain(TransientError("connection failed (ConnectError) on GET CustomersV3", service="fno"))
    finally:
        get_settings.cache_clear()
    assert error.code == ExitCode.UNREACHABLE and error.setting == "P2C_FNO_URL"
    assert (
        error.lines()[0]
        == "error: F&O unreachable at http://127.0.0.1:2 (connection failed (ConnectError) on GET CustomersV3)"
    )
    body = json.loads(error.as_json())
    assert body == {
        "error": error.message,
        "exit_code": 3,
        "hint": error.hint,
        "service": "fno",
        "setting": "P2C_FNO_URL",
    }


def test_storage_endpoints_show_the_address_never_the_key():
    # Azurite's well-known development key, public: the only key the repo may hold.
    conn = (
        f"DefaultEndpointsProtocol=https;AccountName=p2cprod;AccountKey={ACCOUNT_KEY};EndpointSuffix=core.windows.net"
    )
    assert storage_endpoint({"AzureWebJobsStorage": conn}) == "https://p2cprod.queue.core.windows.net"
    assert storage_endpoint({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}).startswith("http://127.0.0.1:10001")
    assert storage_endpoint({"accountName": "p2cprod"}) == "https://p2cprod.queue.core.windows.net"
    assert storage_endpoint({"queueServiceUri": "https://q.example.net"}) == "https://q.example.net"


def test_a_stalled_sync_asks_the_services_and_stops_when_one_is_gone(monkeypatch):
    asked: list[set[str]] = []

    def services(names: set[str], urls: dict[str, str], timeout: float = 3.0) -> None:
        asked.append(names)
        raise OperatorError(ExitCode.UNREACHABLE, "F&O unreachable")

    monkeypatch.setattr(probe, "services", services)
    now = [0.0]

    class Settings:
        dataverse_url, fno_url = "http://127.0.0.1:1", "http://127.0.0.1:2"

    class Rt:
        settings = Settings()

    dog = Watchdog(Rt(), clock=lambda: now[0])  # type: ignore[arg-type]
    dog("accounts", "apply", 0, 5)
    now[0] = STALL_S - 0.1
    dog("accounts", "apply", 0, 5)
    assert asked == []  # not stalled yet
    now[0] = STALL_S + 1
    dog("accounts", "apply", 3, 2)  # progress: the clock starts again
    now[0] = 2 * STALL_S + 2
    with pytest.raises(OperatorError):
        dog("accounts", "apply", 3, 2)
    assert asked == [{"dataverse", "fno"}]


def test_durations_carry_their_unit():
    assert [duration(s) for s in (None, 5, 125, 3 * 3600 + 300, 2 * 86400 + 3600)] == ["", "5s", "2m", "3h 5m", "2d 1h"]


def test_usage_errors_and_ctrl_c_have_their_exit_codes(capsys, monkeypatch):
    assert run(["pause"]) == ExitCode.USAGE
    assert run(["status", "--no-such-option", "--json"]) == ExitCode.USAGE
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["exit_code"] == 2

    def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("p2c_cli.main._runtime", interrupted)
    assert run(["status"]) == ExitCode.INTERRUPTED
    assert "interrupted" in capsys.readouterr().err
