"""The sandbox's Sales org with Microsoft's P2C solution installed, and without it.

What the solution adds is p2c-solution.json (the managed solution's customizations.xml,
summarised): every column on its table with its type, the processing status option values,
and its own autonumber table.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from p2c_sandbox import Sandbox

EDM = "{http://docs.oasis-open.org/odata/ns/edm}"
SPEC = json.loads((Path(__file__).resolve().parents[2] / "p2c_sandbox/data/p2c-solution.json").read_text())
EDM_TYPES = {"nvarchar": "Edm.String", "bit": "Edm.Boolean", "money": "Edm.Decimal", "int": "Edm.Int32",
             "picklist": "Edm.Int32", "primarykey": "Edm.Guid", "datetime": "Edm.Date"}  # fmt: skip


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    with Sandbox() as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def bare() -> Iterator[Sandbox]:
    with Sandbox(p2c_solution=False) as sandbox:
        yield sandbox


def _properties(sandbox: Sandbox) -> dict[str, dict[str, ET.Element]]:
    root = ET.fromstring(httpx.get(sandbox.dataverse_url + "/api/data/v9.2/$metadata").content)
    types = root.iter(f"{EDM}EntityType")
    return {t.get("Name", ""): {p.get("Name", ""): p for p in t.iter(f"{EDM}Property")} for t in types}


def test_every_solution_column_is_on_its_table_with_its_type(sb: Sandbox):
    served = _properties(sb)
    assert set(SPEC["columns"]) <= set(served)
    for table, columns in SPEC["columns"].items():
        for name, column in columns.items():
            assert served[table][name].get("Type") == EDM_TYPES[column["type"]], (table, name)
            if "max_length" in column:
                assert served[table][name].get("MaxLength") == str(column["max_length"]), (table, name)


def test_an_org_without_the_solution_has_none_of_its_columns(bare: Sandbox):
    served = _properties(bare)
    assert "msdynce_p2cautonumber" not in served
    leftover = [(t, c) for t, props in served.items() for c in props if c.startswith("msdynce_")]
    assert leftover == []
    # The demo data is still there, without the solution's columns.
    orders = bare.dataverse.rows("salesorders")
    assert orders and "msdynce_processingstatus" not in orders[0]


def test_processing_status_takes_only_the_solutions_option_values(sb: Sandbox):
    with httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/") as dv:
        made = dv.post("salesorders", json={"name": "Status", "msdynce_processingstatus": 647390011})
        assert made.status_code == 204, made.text
        refused = dv.post("salesorders", json={"name": "Old value", "msdynce_processingstatus": 192350000})
        assert refused.status_code == 400 and "Accepted Values: 647390000" in refused.json()["error"]["message"]
        path = (
            "EntityDefinitions(LogicalName='salesorder')/Attributes(LogicalName='msdynce_processingstatus')"
            "/Microsoft.Dynamics.CRM.PicklistAttributeMetadata"
        )
        options = dv.get(path, params={"$expand": "OptionSet"}).json()["OptionSet"]["Options"]
        labels = {o["Value"]: o["Label"]["UserLocalizedLabel"]["Label"] for o in options}
        expected = SPEC["columns"]["salesorder"]["msdynce_processingstatus"]["options"]
        assert labels == dict(expected) and labels[647390000] == "Active" and labels[647390011] == "Draft"
