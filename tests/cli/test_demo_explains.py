"""`p2c demo` explains itself (issue 19): seeded failures as examples with their fix, skipped
explained, next commands, 80 columns; `--serve` keeps the environment up for the CLI."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80"}
    return subprocess.run([sys.executable, "-m", "p2c_cli", "demo", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=300)  # fmt: skip


def test_the_demo_marks_its_failures_as_examples_with_a_fix_and_fits_80_columns(tmp_path: Path):
    out = demo("--state-dir", str(tmp_path / "demo"))
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "4 failed record(s), seeded on purpose as examples (4 new in this run)" in text
    assert text.count("example; fix:") == 4 and "not a seeded example" not in text
    flat = " ".join(text.split())
    assert "add the unit to P2C_VALUE_MAPS__UNIT, then `p2c replay --flow products`" in flat
    assert "skipped = read but not written" in text and "DeliveryMode" not in text  # no 56-row table
    assert all(cmd in text for cmd in ("p2c demo --serve", "p2c failures", "p2c replay", "p2c console"))
    assert len(text.splitlines()) < 60, "the summary stays on one screen"
    again = demo("--state-dir", str(tmp_path / "demo"))
    assert "(0 new in this run)" in again.stdout and "from an earlier run" in again.stdout


def test_demo_serve_prints_settings_the_cli_can_use(tmp_path: Path):
    state = tmp_path / "demo"
    proc = subprocess.Popen([sys.executable, "-m", "p2c_cli", "demo", "--serve", "--state-dir", str(state)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})  # fmt: skip
    try:
        assert proc.stdout is not None
        settings: dict[str, str] = {}
        for line in proc.stdout:
            if m := re.match(r"(AzureWebJobsStorage|P2C_[A-Z_]+)=(.*)", line):
                settings[m.group(1)] = m.group(2).strip("'")
            if "P2C_VALUE_MAPS__SHIPPING_METHOD" in settings:
                break
        assert {"AzureWebJobsStorage", "P2C_DATAVERSE_URL", "P2C_FNO_URL", "P2C_FNO_COMPANY"} <= set(settings)
        assert (state / "demo.env").read_text().count("\n") == len(settings)
        env_dir = tmp_path / "operator"
        env_dir.mkdir()
        (env_dir / ".env").write_text((state / "demo.env").read_text())
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("P2C_", "AzureWebJobsStorage"))}
        clean["PYTHONPATH"] = str(ROOT)
        status = subprocess.run([sys.executable, "-m", "p2c_cli", "failures", "--flow", "products"],
                                capture_output=True, text=True, cwd=env_dir, env=clean, timeout=60)  # fmt: skip
        assert status.returncode == 0, status.stderr
        assert "products usmf|B0001: MappingError" in status.stdout  # two companies: keys name theirs
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
