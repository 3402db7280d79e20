"""`p2c demo --json` from a new state folder, twice: the stable interface of the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_demo(state_dir: Path, *extra: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-m", "p2c_cli", "demo", "--json", "--state-dir", str(state_dir), *extra],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_demo_json_twice_second_run_writes_nothing(tmp_path):
    first = run_demo(tmp_path / "demo")
    assert set(first) == {"flows", "elapsed_s", "waiting", "queued", "companies"} and first["elapsed_s"] > 0
    assert first["waiting"] == []  # every flow's dependencies run first
    accounts = first["flows"]["accounts"]
    assert set(accounts) == {"read", "written", "skipped", "failed"}
    assert accounts["written"] > 20 and accounts["skipped"] > 0
    # Two companies by default, each with records of its own; on a first run every record
    # written is one record synced, in exactly one company.
    companies = first["companies"]
    assert list(companies) == ["usmf", "demf"]
    for flow, counts in first["flows"].items():
        assert sum(companies[c][flow] for c in companies) == counts["written"], flow
    for flow in ("accounts", "quotes", "orders", "fno_orders", "invoices"):
        assert all(companies[c][flow] > 0 for c in companies), flow
    second = run_demo(tmp_path / "demo")
    assert all(flow["written"] == 0 for flow in second["flows"].values())
    assert second["companies"] == companies
    fresh = run_demo(tmp_path / "demo", "--fresh")
    assert fresh["flows"]["accounts"]["written"] == accounts["written"]


def test_demo_of_one_company_syncs_it_alone(tmp_path):
    one = run_demo(tmp_path / "one", "--one-company")
    assert list(one["companies"]) == ["usmf"] and one["waiting"] == []
    assert all(one["companies"]["usmf"][f] == c["written"] for f, c in one["flows"].items())
