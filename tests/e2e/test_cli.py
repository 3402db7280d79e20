"""The `p2c` operator commands as a script calls them: --json output and exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from .conftest import E2E

ROOT = Path(__file__).resolve().parents[2]


def p2c(*args: str) -> tuple[int, object]:
    out = subprocess.run([sys.executable, "-m", "p2c_cli", *args, "--json"], capture_output=True, text=True,
                         env=dict(os.environ), cwd=ROOT, timeout=120)  # fmt: skip
    return out.returncode, json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else None


def test_operator_commands_speak_json_and_exit_codes(e2e: E2E):
    assert p2c("check") == (0, {"ok": True, "problems": []})
    code, plan = p2c("plan", "accounts")
    assert code == 0 and isinstance(plan, dict) and plan["counts"]["create"] > 20
    code, summary = p2c("sync", "accounts")  # two seeded records fail: exit 1
    assert code == 1 and isinstance(summary, dict) and summary["flows"]["accounts"]["written"] > 20
    code, status = p2c("status")
    assert code == 1 and isinstance(status, dict) and status["flows"]["accounts"]["failures"] == 2
    code, failures = p2c("failures", "--flow", "accounts", "--age", "1h")
    assert code == 0 and isinstance(failures, list) and {f["error_class"] for f in failures} == {"MappingError"}
    assert p2c("failures", "--age", "soon")[0] == 2  # a bad duration is a usage error
    assert p2c("pause", "accounts") == (0, {"flow": "accounts", "paused": True})
    assert p2c("resume", "accounts") == (0, {"flow": "accounts", "paused": False})
    code, drift = p2c("reconcile", "accounts")
    assert code == 0 and isinstance(drift, dict) and drift["counts"]["missing"] == 0
    code, reset = p2c("reset-cursor", "accounts", "--to", "2026-01-01T00:00:00")
    assert code == 0 and reset == {"flow": "accounts", "reset": True, "since": "2026-01-01T00:00:00+00:00"}
    code, replayed = p2c("replay", "--flow", "accounts")
    assert code == 0 and replayed == {"replayed": {"accounts": 1}}
