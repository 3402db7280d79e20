"""What every benchmark stands on: the repository, the report file, a sandbox process with
Azurite, worker processes, and the sandbox's request counts."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "benchmarks.md"


@dataclass
class Services:
    dataverse_url: str
    fno_url: str
    storage: str
    # One key for every worker process of a run: each must verify what the others signed.
    signing_key: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    def env(self, **extra: str) -> dict[str, str]:
        from p2c_cli.local import sandbox_env

        local = sandbox_env(self.storage, self.dataverse_url, self.fno_url, self.signing_key)
        return {**os.environ, **local, **extra}

    def admin(self, service: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        base = self.dataverse_url if service == "dataverse" else self.fno_url
        with httpx.Client(base_url=base, timeout=60) as client:
            response = client.get(f"/_sandbox/{path}") if body is None else client.post(f"/_sandbox/{path}", json=body)
            response.raise_for_status()
            return response.json() if response.content else {}

    def stats(self) -> dict[str, dict[str, Any]]:
        return {svc: self.admin(svc, "stats") for svc in ("dataverse", "fno")}

    def reset_stats(self) -> None:
        for svc in ("dataverse", "fno"):
            self.admin(svc, "reset-stats", {})


@contextlib.contextmanager
def services(accounts: int, latency_ms: float, products: int = 0) -> Iterator[Services]:
    """Azurite (in memory) and a sandbox process seeded with `accounts` extra accounts
    (and `products` extra released products)."""
    from p2c_cli.azurite import Azurite

    with Azurite() as azurite:
        args = [sys.executable, "-m", "p2c_cli", "sandbox", "--accounts", str(accounts), "--products", str(products)]
        sandbox = subprocess.Popen(args, cwd=REPO, stdout=subprocess.PIPE, text=True, start_new_session=True)
        try:
            urls: dict[str, str] = {}
            assert sandbox.stdout is not None
            for line in sandbox.stdout:  # `P2C_DATAVERSE_URL=http://...  (Web API under ...)`
                name, _, rest = line.partition("=")
                if name in ("P2C_DATAVERSE_URL", "P2C_FNO_URL") and rest.strip():
                    urls["dataverse" if name == "P2C_DATAVERSE_URL" else "fno"] = rest.split()[0]
                if len(urls) == 2:
                    break
            if len(urls) < 2:
                raise RuntimeError(f"the sandbox did not start (exit code {sandbox.poll()})")
            found = Services(urls["dataverse"], urls["fno"], azurite.connection_string)
            for svc in ("dataverse", "fno"):
                found.admin(svc, "faults", {"latency_ms": latency_ms})
            yield found
        finally:
            sandbox.terminate()
            try:
                sandbox.wait(timeout=30)
            except subprocess.TimeoutExpired:
                sandbox.kill()


def worker(svc: Services, *flows: str, **settings: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.worker", *flows],
        cwd=REPO, env=svc.env(**settings), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"bench.worker failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def total_requests(stats: dict[str, Any]) -> int:
    return int(stats["total"])


def count(stats: dict[str, Any], status: int) -> int:
    return sum(r["count"] for r in stats["requests"] if r["status"] == status)


# --- 1, 3, 4: bulk initial sync, its memory, and the sequential client beside it ----------


def met(value: float | None, op: str, goal: float) -> bool:
    """A figure against its goal; a figure not measured (None) meets none."""
    if value is None:
        return False
    return {"<=": value <= goal, ">=": value >= goal, "<": value < goal}[op]


def print_goals(goals: list[tuple[str, str, float, str]], figures: dict[str, Any]) -> None:
    """One line per goal: its text, the figure, the target and whether it is met."""
    for key, op, goal, text in goals:
        print(f"{text}: {figures[key]} ({op} {goal:g}: {'met' if met(figures[key], op, goal) else 'NOT met'})")


def write_doc_section(begin: str, end: str, section: str) -> None:
    """Put a section marked by `begin`/`end` (included in `section`) into docs/benchmarks.md,
    replacing the one there; the rest of the file is left as it is."""
    text = DOCS.read_text() if DOCS.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        text = head + section.rstrip("\n") + rest.partition(end)[2]
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    DOCS.write_text(text)
