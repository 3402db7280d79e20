"""Venvs of their own for client libraries that cannot share the project's: Airbyte's
Dataverse source pins pydantic 1 (the project is on pydantic 2); d365fo-client declares
Python >= 3.13 (the project runs 3.11 and 3.12). Each is built once under `.venv-clients/`
(git-ignored) from its pinned requirements, by the first test that needs it; a change to the
pins rebuilds it. `make client-venvs` builds both ahead of a run.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / ".venv-clients"
CLIENTS = Path(__file__).resolve().parent / "clients"
# name -> (requirements, pip options)
PINS: dict[str, tuple[list[str], list[str]]] = {
    "airbyte": (["airbyte-source-microsoft-dataverse==1.0.2"], []),
    # d365fo-client 0.3.7 says Python >= 3.13 but runs on 3.11 (tests/sandbox/test_fno_client.py
    # shows what it does); mcp 2 dropped the module its package imports at start.
    "d365fo": (["d365fo-client==0.3.7", "mcp<2"], ["--ignore-requires-python"]),
}


def python(name: str) -> Path:
    """The interpreter of client venv `name`, built (or rebuilt) if its pins changed."""
    requirements, options = PINS[name]
    target = ROOT / name
    stamp = target / ".pins"
    wanted = json.dumps([requirements, options])
    ROOT.mkdir(exist_ok=True)
    with open(ROOT / f"{name}.lock", "w") as lock:  # one builder at a time (pytest -n 2)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not stamp.exists() or stamp.read_text() != wanted:
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(target)], check=True)
            pip = [str(target / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
            subprocess.run([*pip, *options, *requirements], check=True)
            stamp.write_text(wanted)
    return target / "bin" / "python"


def run(name: str, script: str, command: dict[str, object], timeout: float = 300) -> dict:
    """Run `clients/<script>` in venv `name` with one JSON command; its last stdout line is the answer."""
    done = subprocess.run(
        [str(python(name)), str(CLIENTS / script), json.dumps(command)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise AssertionError(f"{script} failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":  # make client-venvs
    for client in sys.argv[1:] or list(PINS):
        print(python(client))
