"""Where the sandbox keeps its rows: in memory unless given a folder, then in a SQLite file
per service that outlives the process (and is not seeded twice)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from p2c_sandbox import Sandbox


def test_in_memory_by_default_leaves_no_file_and_no_rows_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    with Sandbox() as sb:
        assert sb.data_dir is None
        created = httpx.post(
            sb.dataverse_url + "/api/data/v9.2/accounts", json={"name": "Ephemeral", "accountnumber": "MEM-1"}
        )
        assert created.status_code == 204
    assert list(tmp_path.iterdir()) == []
    with Sandbox() as again:
        assert not any(r.get("accountnumber") == "MEM-1" for r in again.dataverse.rows("accounts"))


def test_a_folder_keeps_both_services_rows_across_restarts(tmp_path: Path):
    with Sandbox(tmp_path) as sb:
        dv = httpx.Client(base_url=sb.dataverse_url + "/api/data/v9.2/")
        first = dv.post("accounts", json={"name": "Kept", "accountnumber": "FILE-1"},
                        headers={"Prefer": "return=representation"}).json()  # fmt: skip
        fno = httpx.post(
            sb.fno_url + "/data/CustomersV3", json={"CustomerAccount": "FILE-1", "OrganizationName": "Kept"}
        )
        assert fno.status_code == 201
        accounts = len(sb.dataverse.rows("accounts"))
        customers = len(sb.fno.rows("CustomersV3"))
    for name in ("dataverse.sqlite", "fno.sqlite"):
        with sqlite3.connect(tmp_path / name) as db:
            assert db.execute("SELECT COUNT(*) FROM rows").fetchone()[0] > 0
    with Sandbox(tmp_path) as again:
        dv = httpx.Client(base_url=again.dataverse_url + "/api/data/v9.2/")
        kept = dv.get("accounts(accountnumber='FILE-1')").json()
        assert kept["accountid"] == first["accountid"] and kept["versionnumber"] == first["versionnumber"]
        assert len(again.dataverse.rows("accounts")) == accounts  # the demo data was not added again
        assert len(again.fno.rows("CustomersV3")) == customers
        key = "CustomersV3(dataAreaId='usmf',CustomerAccount='FILE-1')"
        assert httpx.get(again.fno_url + "/data/" + key).json()["OrganizationName"] == "Kept"
        # Counters are stored too: row versions go on from where they were.
        later = dv.post("accounts", json={"name": "Later"}, headers={"Prefer": "return=representation"}).json()
        assert later["versionnumber"] > first["versionnumber"]
