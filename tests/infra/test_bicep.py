"""infra/: every Bicep file parses, the template provisions what the code uses, and the
app settings it sets are exactly the ones the code reads (the settings contract)."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from pycep import BicepParser

from p2c_core.flows import all_flows
from p2c_core.settings import STORAGE, setting_names
from p2c_core.state import TABLES

INFRA = Path(__file__).resolve().parents[2] / "infra"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Read by the Functions host itself, not by p2c's code (none today).
HOST_SETTINGS: set[str] = set()
# Settings the code reads that Azure need not set, each with why.
OPTIONAL = {
    STORAGE: "in Azure the identity-based AzureWebJobsStorage__* settings replace the connection string",
    "P2C_HTTP_TIMEOUT_SECONDS": "default 30 s",
    "P2C_HTTP_MAX_RETRIES": "default 3",
    "P2C_RECORD_MAX_ATTEMPTS": "default 8",
    "P2C_RECORD_RETRY_BASE_SECONDS": "default 5 s",
    "P2C_FAILURE_RETENTION_DAYS": "default 90 days",
    "P2C_DEPENDENCY_WAIT_MINUTES": "default 240 min",
    "P2C_APPLY_LEASE_SECONDS": "default 120 s",
    "P2C_PAGE_SIZE": "default 5000, Dataverse's maximum",
    "P2C_CHUNK_SIZE": "default 100",
    "P2C_BATCH_SIZE": "default 100",
    "P2C_RECORD_CONCURRENCY": "default 8",
    "P2C_AUTO_PAUSE_FAILURE_SHARE": "default 0.9",
    "P2C_AUTO_PAUSE_WINDOW_MINUTES": "default 15 min",
    "P2C_AUTO_PAUSE_MIN_RECORDS": "default 20",
    **{
        f"P2C_FLOWS__{flow}__ON_DELETE": "default ignore (counted); a deployment that chooses hold/deactivate sets it"
        for flow in (f.name.upper() for f in all_flows())
    },
    **{
        f"P2C_FLOWS__{flow}__PAUSED": "pausing is an operator's action (app setting or `p2c pause`), not a deployment's"
        for flow in (f.name.upper() for f in all_flows())
    },
}


@cache
def parsed(path: Path) -> dict[str, Any]:
    return dict(BicepParser().parse(text=path.read_text()))


def app_settings(template: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for resource in template["resources"].values():
        if resource["type"] == "Microsoft.Web/sites":
            names += [s["name"] for s in resource["config"]["properties"]["siteConfig"]["appSettings"]]
    return names


def contract_problems(code: set[str], bicep: set[str], optional: set[str]) -> list[str]:
    """What breaks the contract between the settings the code reads and those Bicep sets."""
    problems = [f"Bicep sets {n}, which the code does not read" for n in sorted(bicep - code - HOST_SETTINGS)]
    problems += [f"the code reads {n}, which Bicep does not set" for n in sorted(code - bicep - optional)]
    return problems


@pytest.mark.parametrize("path", BICEP_FILES, ids=[str(p.relative_to(INFRA)) for p in BICEP_FILES])
def test_every_bicep_file_parses(path: Path):
    assert parsed(path)["resources"] or parsed(path)["modules"]


def test_settings_contract_holds():
    bicep = app_settings(parsed(INFRA / "resources.bicep"))
    assert len(bicep) == len(set(bicep)), "a setting is set twice"
    assert contract_problems(set(setting_names()), set(bicep), set(OPTIONAL)) == []


def test_settings_contract_fails_when_either_side_drifts():
    code, bicep = set(setting_names()), set(app_settings(parsed(INFRA / "resources.bicep")))
    assert contract_problems(code | {"P2C_NEW_SETTING"}, bicep, set(OPTIONAL)) == [
        "the code reads P2C_NEW_SETTING, which Bicep does not set"
    ]
    assert contract_problems(code, bicep | {"P2C_STALE"}, set(OPTIONAL)) == [
        "Bicep sets P2C_STALE, which the code does not read"
    ]


def test_template_provisions_every_queue_and_table_the_app_uses():
    text = (INFRA / "resources.bicep").read_text()
    flows = re.search(r"var flows = \[(.*?)\]", text, re.S)
    assert flows is not None
    provisioned = re.findall(r"'([\w-]+)'", flows.group(1))
    assert "'p2c-${flow}'" in text and "'p2c-${flow}-poison'" in text
    assert sorted(f"p2c-{name}" for name in provisioned) == sorted(f.queue for f in all_flows())
    assert all(f.poison_queue == f"{f.queue}-poison" for f in all_flows())
    tables = re.search(r"var tableNames = \[(.*?)\]", text, re.S)
    assert tables is not None and sorted(re.findall(r"'(\w+)'", tables.group(1))) == sorted(TABLES)


def test_no_key_or_storage_connection_string_in_the_template():
    for path in BICEP_FILES:
        text = path.read_text()
        for pattern in ("listKeys(", "AccountKey=", "primaryKey", "SharedAccessKey", "connectionStrings"):
            assert pattern not in text, f"{path.name} contains {pattern}"
    settings = app_settings(parsed(INFRA / "resources.bicep"))
    assert STORAGE not in settings  # identity-based storage only
    storage = parsed(INFRA / "modules" / "storage.bicep")["resources"]["storage"]["config"]["properties"]
    assert storage["allowSharedKeyAccess"] is False and storage["allowBlobPublicAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"
