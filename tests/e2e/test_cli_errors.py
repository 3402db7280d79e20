"""The CLI as a new operator meets it (issue 19, acceptance 4): short causes, exit codes, `-v`, `.env`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from p2c_cli.azurite import ACCOUNT, ACCOUNT_KEY, free_ports
from p2c_cli.local import sandbox_env
from p2c_core.settings import setting_names

from .conftest import E2E

ROOT = Path(__file__).resolve().parents[2]
# Bounds on the whole command: before issue 19, storage down took 84 s and F&O down ten minutes.
QUICK_S = 30


def run(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 120):
    full = {**os.environ, "COLUMNS": "80", **(env or {})}
    return subprocess.run([sys.executable, "-m", "p2c_cli", *args], capture_output=True, text=True,
                          env=full, cwd=cwd, timeout=timeout)  # fmt: skip


def closed_port_url() -> str:
    return f"http://127.0.0.1:{free_ports(1)[0]}"


@pytest.fixture
def nowhere(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Valid settings whose storage and services all point at closed loopback ports."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    queue, table = free_ports(2)
    conn = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"  # Azurite's public key
        f"QueueEndpoint=http://127.0.0.1:{queue}/devstoreaccount1;TableEndpoint=http://127.0.0.1:{table}/devstoreaccount1;"
    )
    return sandbox_env(conn, closed_port_url(), closed_port_url())


def test_storage_down_is_one_short_error_naming_storage_and_its_setting(nowhere):
    out = run("status", env=nowhere, timeout=QUICK_S)
    assert out.returncode == 3, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 2 and "Traceback" not in out.stderr
    assert lines[0].startswith("error: storage unreachable at http://127.0.0.1:") and "connection refused" in lines[0]
    assert "AzureWebJobsStorage" in lines[1] and "Azurite" in lines[1]
    as_json = run("sync", "accounts", "--json", env=nowhere, timeout=QUICK_S)
    assert as_json.returncode == 3
    body = json.loads(as_json.stdout)
    assert body["service"] == "storage" and body["setting"] == "AzureWebJobsStorage" and body["exit_code"] == 3


def test_a_traceback_only_with_debug(nowhere):
    out = run("status", "--debug", env=nowhere, timeout=QUICK_S)
    assert out.returncode == 3 and "Traceback" in out.stderr and "storage unreachable" in out.stderr


def test_an_unknown_flow_or_a_bad_setting_is_a_usage_error_without_traceback(nowhere):
    out = run("pause", "acounts", env=nowhere, timeout=QUICK_S)
    assert out.returncode == 2 and "unknown flow 'acounts'" in out.stderr and "accounts" in out.stderr
    assert "Traceback" not in out.stderr
    out = run("status", env={**nowhere, "P2C_FNO_URL": "http://127.0.0.1:9/data/"}, timeout=QUICK_S)
    assert out.returncode == 2 and "P2C_FNO_URL" in out.stderr and "without /data" in out.stderr
    out = run("status", env={**nowhere, "P2C_VALUE_MAPS__UNIT": "{ea: 1"}, timeout=QUICK_S)
    assert out.returncode == 2 and "P2C_VALUE_MAPS__UNIT: not a JSON object" in out.stderr
    assert "Traceback" not in out.stderr


def test_version_and_help_name_the_flows():
    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("p2c 0.")
    helped = run("sync", "--help")
    assert helped.returncode == 0 and "contact_customers" in helped.stdout and "Example: p2c sync" in helped.stdout
    assert "list[str]" not in run("replay", "--help").stdout


def test_fno_unreachable_stops_the_sync_early_naming_the_service(e2e: E2E):
    down = closed_port_url()
    out = run("sync", "accounts", env={"P2C_FNO_URL": down}, timeout=QUICK_S)
    assert out.returncode == 3, out.stdout + out.stderr
    assert out.stderr.splitlines()[0].startswith(f"error: F&O unreachable at {down}")
    assert "P2C_FNO_URL" in out.stderr and "Traceback" not in out.stderr


def test_failed_records_exit_1_and_say_how_to_see_and_replay_them(e2e: E2E):
    out = run("sync", "accounts")
    assert out.returncode == 1, out.stderr
    assert "2 record(s) failed" in out.stdout and "p2c failures" in out.stdout and "p2c replay" in out.stdout


def test_a_paused_flow_shows_in_the_status_table_and_its_sync_says_so(e2e: E2E, monkeypatch):
    assert run("pause", "accounts").returncode == 0
    table = run("status")
    row = next(line for line in table.stdout.splitlines() if line.split()[:1] == ["accounts"])
    assert row.split()[1] == "paused", table.stdout
    assert "accounts is paused: `p2c resume accounts`" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    synced = run("sync", "accounts")
    assert "accounts is paused: nothing was read or written" in synced.stdout
    assert run("resume", "accounts").returncode == 0
    from p2c_core.console import audit

    actions = [(a.action, a.flow, a.actor.endswith("(cli)")) for a in audit.history(e2e.storage, "accounts")]
    assert actions == [("resume", "accounts", True), ("pause", "accounts", True)]  # newest first
    by_setting = run("status", env={"P2C_FLOWS__ACCOUNTS__PAUSED": "true"})
    assert "accounts            paused (setting)" in by_setting.stdout


def test_dotenv_supplies_azurewebjobsstorage(e2e: E2E, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    lines = [f"{k}='{v}'" for k, v in e2e.env.items()]
    (tmp_path / ".env").write_text("\n".join(lines) + "\n")
    for name in e2e.env:
        monkeypatch.delenv(name, raising=False)
    env = {k: v for k, v in os.environ.items() if k not in e2e.env}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-m", "p2c_cli", "status", "--json"], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert json.loads(out.stdout)["flows"]["accounts"]["cursor"] == "none"


def test_verbose_anywhere_shows_p2cs_events_without_sdk_wire_dumps(e2e: E2E):
    out = run("sync", "accounts", "-v", "--json")
    assert out.returncode == 1  # the two seeded failures
    log = out.stderr.splitlines()
    assert any(line.startswith("INFO p2c.engine: poll accounts:") for line in log), out.stderr[-2000:]
    assert all(line.split(" ", 2)[1].startswith("p2c") for line in log if line.startswith(("INFO", "DEBUG"))), log
    assert "Request headers" not in out.stderr and "HTTP Request:" not in out.stderr
    debug = run("status", "--debug")
    assert "azure.core.pipeline.policies.http_logging_policy" in debug.stderr  # the wire, with --debug only
