"""The chaos run's stable interface, on one seed (the long set runs on demand)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.chaos import parse_seeds

ROOT = Path(__file__).resolve().parents[2]


def test_parse_seeds():
    assert parse_seeds("100-103") == [100, 101, 102, 103]
    assert parse_seeds("1,5,9-10") == [1, 5, 9, 10]


@pytest.mark.timeout(900)
def test_chaos_one_seed_loses_duplicates_and_stales_nothing():
    out = subprocess.run([sys.executable, "-m", "bench.chaos", "--seeds", "7", "--fault-rate", "0.2", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=840)  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert set(summary) == {"seeds", "records", "lost", "duplicates", "stale"}
    assert summary["seeds"] == 1 and summary["records"] > 20
    assert (summary["lost"], summary["duplicates"], summary["stale"]) == (0, 0, 0)
    assert lines[0].startswith("seed 7:") and "ok" in lines[0]
    held, twice = (
        int(n) for n in re.findall(r"(\d+) messages held by dying workers, (\d+) delivered twice", lines[0])[0]
    )
    assert held >= 1 and twice >= 1  # the run really met crashed workers and duplicate deliveries


@pytest.mark.timeout(900)
def test_chaos_with_push_on_loses_duplicates_and_stales_nothing():
    out = subprocess.run([sys.executable, "-m", "bench.chaos", "--seeds", "7", "--push", "--json"],
                         capture_output=True, text=True, cwd=ROOT, timeout=840)  # fmt: skip
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert (summary["lost"], summary["duplicates"], summary["stale"]) == (0, 0, 0)
    pushed, dropped = (int(n) for n in re.findall(r"(\d+) events pushed, (\d+) dropped", lines[0])[0])
    assert pushed >= 1 and dropped >= 1  # the edits were pushed, and some pushes were lost
