"""Every setting the code reads is in local.settings.sample.json and the README, and back."""

from __future__ import annotations

import json
import re
from pathlib import Path

from p2c_core.settings import load_settings, setting_names

ROOT = Path(__file__).resolve().parent.parent
HOST_ONLY = {"FUNCTIONS_WORKER_RUNTIME"}  # read by the Functions host, not by p2c
IDENTITY_ONLY = {n for n in setting_names() if n.startswith("AzureWebJobsStorage__")}  # Azure, not local


def sample() -> dict[str, str]:
    return json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]


def test_sample_sets_every_setting_the_code_reads_and_nothing_else():
    names = set(setting_names()) - IDENTITY_ONLY
    values = set(sample())
    assert names - values == set(), "settings missing from local.settings.sample.json"
    assert values - names - HOST_ONLY == set(), "settings in the sample that the code does not read"


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"`((?:P2C_|AzureWebJobsStorage|APPLICATIONINSIGHTS_)[A-Za-z0-9_<>]*)`", readme))
    # Per-flow settings are documented once, for every registered flow: P2C_FLOWS__<FLOW>__ENABLED.
    names = {re.sub(r"^P2C_FLOWS__[A-Z0-9_]+?__(ENABLED|PAUSED|SCHEDULE|ON_DELETE)$", r"P2C_FLOWS__<FLOW>__\1", n)
             for n in setting_names()}  # fmt: skip
    missing = names - documented
    assert missing == set(), f"settings not in README.md: {sorted(missing)}"


def test_sample_values_are_valid(monkeypatch):
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value in sample().items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(ROOT / "tests")
    s = load_settings()
    assert s.auth_mode == "none" and s.fno_company == "usmf"
    assert s.value_maps.payment_terms == {"1": "Net30", "2": "Net10", "3": "Net45", "4": "Net60"}
