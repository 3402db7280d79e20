"""`p2c sandbox`: starts both servers, prints their URLs, adds generated volume when asked,
keeps its data in --data-dir, and stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

P2C = Path(sys.executable).with_name("p2c")


def start(*args: str) -> tuple[subprocess.Popen[str], dict[str, str]]:
    """Run `p2c sandbox` until it has printed both URLs: (process, {"dataverse": url, "fno": url})."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([str(P2C), "sandbox", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=env)  # fmt: skip
    urls: dict[str, str] = {}
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if m := re.match(r"P2C_DATAVERSE_URL=(\S+)", line):
            urls["dataverse"] = m.group(1) + "/api/data/v9.2/"
        if m := re.match(r"P2C_FNO_URL=(\S+)", line):
            assert not m.group(1).endswith("/data/"), "the root, as P2C_FNO_URL takes it"
            urls["fno"] = m.group(1) + "/data/"
        if "Ctrl-C" in line:
            break
    assert set(urls) == {"dataverse", "fno"}, "".join(lines)
    return proc, urls


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0


def test_p2c_sandbox_serves_both_services_with_generated_volume(tmp_path: Path):
    proc, urls = start("--accounts", "30", "--products", "7", "--data-dir", str(tmp_path))
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/api/data/v9\.2/", urls["dataverse"])
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/data/", urls["fno"])
        count = httpx.get(urls["dataverse"] + "accounts/$count", params={"$filter": "startswith(accountnumber,'VOL-')"})
        assert count.text == "30"
        products = httpx.get(urls["fno"] + "CDSReleasedDistinctProducts/$count",
                             params={"$filter": "ProductNumber eq 'VOL-P*'"})  # fmt: skip
        assert products.text == "7"
        created = httpx.post(urls["dataverse"] + "accounts", json={"name": "From the CLI", "accountnumber": "CLI-1"})
        assert created.status_code == 204
    finally:
        stop(proc)
    assert (tmp_path / "dataverse.sqlite").exists() and (tmp_path / "fno.sqlite").exists()
    proc, urls = start("--data-dir", str(tmp_path))  # the same folder: the same data
    try:
        assert httpx.get(urls["dataverse"] + "accounts(accountnumber='CLI-1')").json()["name"] == "From the CLI"
    finally:
        stop(proc)


def test_p2c_sandbox_companies_option():
    proc, urls = start("--companies", "dual-write")
    try:
        codes = httpx.get(urls["dataverse"] + "cdm_companies", params={"$select": "cdm_companycode"}).json()["value"]
        assert sorted(c["cdm_companycode"] for c in codes) == ["DEMF", "USMF"]
        german = httpx.get(urls["dataverse"] + "accounts/$count", params={"$filter": "address1_country eq 'Germany'"})
        assert int(german.text) >= 4
    finally:
        stop(proc)
    refused = subprocess.run([str(P2C), "sandbox", "--companies", "three"], capture_output=True, text=True)
    assert refused.returncode != 0 and "--companies" in refused.stdout + refused.stderr
