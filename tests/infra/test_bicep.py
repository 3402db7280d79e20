"""infra/: every Bicep file parses, the template provisions what the code uses, and the
app settings it sets are exactly the ones the code reads (the settings contract)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from p2c_core.flows import all_flows
from p2c_core.settings import STORAGE, setting_names
from p2c_core.state import TABLES
from tests.infra.bicep import BICEP_FILES, INFRA, app_settings, parsed

# Read by the Functions host itself, not by p2c's code (none today).
HOST_SETTINGS: set[str] = set()
# Provided ahead of the code that reads it (another issue adds the reader); each with where.
PROVIDED_AHEAD = {
    "P2C_MESSAGE_SIGNING_KEY": "issue 21: the HMAC key of queue messages",
}
# Settings the code reads that Azure need not set, each with why.
OPTIONAL = {
    STORAGE: "in Azure the identity-based AzureWebJobsStorage__* settings replace the connection string",
    # Required in Azure (settings refuse P2C_AUTH_MODE=azure without it); its Key Vault
    # reference comes with the infra change (issue 21). Drop this line once Bicep sets it.
    "P2C_MESSAGE_SIGNING_KEY": "set by infra/resources.bicep as a Key Vault reference (issue 21)",
    "P2C_EVENTS_COALESCE_SECONDS": "default 1 s",
    "P2C_EVENTS_POLL_SCHEDULE": "default every 30 minutes with push on",
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
    "P2C_FNO_SCAN_WINDOW": "default 10000",
    "P2C_CONSOLE__OPERATOR_GROUPS": "default none: the app role P2C.Operator grants the console's actions",
    "P2C_CONSOLE__VIEWER_GROUPS": "default none: the app role P2C.Viewer grants looking",
    "P2C_AUTO_PAUSE_FAILURE_SHARE": "default 0.9",
    "P2C_AUTO_PAUSE_WINDOW_MINUTES": "default 15 min",
    "P2C_AUTO_PAUSE_MIN_RECORDS": "default 20",
    "P2C_DATAVERSE_LIMIT_WINDOW_SECONDS": "default 300 s, Dataverse's window; a scaled-down sandbox sets it",
    **{
        f"P2C_FLOWS__{flow}__ON_DELETE": "default ignore (counted); a deployment that chooses hold/deactivate sets it"
        for flow in (f.name.upper() for f in all_flows())
    },
    **{
        f"P2C_FLOWS__{flow}__PAUSED": "pausing is an operator's action (app setting or `p2c pause`), not a deployment's"
        for flow in (f.name.upper() for f in all_flows())
    },
}


def contract_problems(code: set[str], bicep: set[str], optional: set[str]) -> list[str]:
    """What breaks the contract between the settings the code reads and those Bicep sets."""
    ahead = set(PROVIDED_AHEAD) - code
    problems = [f"Bicep sets {n}, which the code does not read" for n in sorted(bicep - code - HOST_SETTINGS - ahead)]
    problems += [f"the code reads {n}, which Bicep does not set" for n in sorted(code - bicep - optional)]
    return problems


@pytest.mark.parametrize("path", BICEP_FILES, ids=[str(p.relative_to(INFRA)) for p in BICEP_FILES])
def test_every_bicep_file_parses(path: Path):
    tree = parsed(str(path.relative_to(INFRA)))
    assert tree["resources"] or tree["modules"]


def test_settings_contract_holds():
    site = parsed("modules/functionapp.bicep")["resources"]["site"]["config"]
    names = [s["name"] for s in site["properties"]["siteConfig"]["appSettings"]]
    assert len(names) == len(set(names)), "a setting is set twice"
    assert contract_problems(set(setting_names()), set(names), set(OPTIONAL)) == []


def test_settings_contract_fails_when_either_side_drifts():
    code, bicep = set(setting_names()), set(app_settings())
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
    assert STORAGE not in app_settings()  # identity-based storage only
    storage = parsed("modules/storage.bicep")["resources"]["storage"]["config"]["properties"]
    assert storage["allowSharedKeyAccess"] is False and storage["allowBlobPublicAccess"] is False
    assert storage["minimumTlsVersion"] == "TLS1_2"


def test_template_provisions_the_nudge_queues_and_outputs_no_events_key():
    from p2c_core import nudge

    text = (INFRA / "resources.bicep").read_text()
    queues = re.search(r"var eventQueueNames = \[(.*?)\]", text, re.S)
    assert queues is not None
    assert re.findall(r"'([\w-]+)'", queues.group(1)) == [nudge.QUEUE, nudge.POISON_QUEUE]
    assert "concat(queueNames, poisonQueueNames, eventQueueNames)" in text
    for path in BICEP_FILES:
        outputs = [line for line in path.read_text().splitlines() if line.startswith("output ")]
        assert not any("eventsKey " in line or "eventsKey\n" in line for line in outputs), path
