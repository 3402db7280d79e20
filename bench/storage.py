"""Storage benchmarks (issue 20): what each record costs in Azure Storage requests, the worker's
CPU per record, throughput with storage latency, and the cost of an idle F&O tick.

    python -m bench.storage [--quick] [--json]     # alone; `python -m bench.run` runs it too

Requests are counted at the storage client: every queue and table client of the worker is
built on `CountingTransport`, a wrapper of azure-core's own HTTP transport talking to the
real Azurite, so a table transaction (`$batch`) counts one, a point read one, a query page
one. Each run is a worker process of its own (`python -m bench.storage worker FLOW...`)
against a sandbox process and Azurite (bench.run.services).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from azure.core.pipeline.transport import HttpTransport, RequestsTransport

# Extra latency of every storage request in the latency run: Azure's, not Azurite's.
DELAY_ENV = "P2C_BENCH_STORAGE_DELAY_MS"
RESYNC_CHANGES = 100

GOALS = [
    ("storage_requests_per_record_initial", "<=", 0.1, "storage requests per record, accounts initial load"),
    ("storage_requests_per_record_resync", "<=", 1.1, f"storage requests per record, re-sync of {RESYNC_CHANGES}"),
    ("storage_requests_per_record_products", "<=", 0.5, "storage requests per record, products initial load"),
    ("cpu_ms_per_record", "<=", 1.2, "worker CPU ms per record, accounts initial load"),
    ("storage_latency_throughput_ratio", ">=", 0.9, "throughput with 5 ms per storage request / without"),
    ("idle_cost_ratio_100k_vs_100", "<=", 1.0, "idle F&O tick cost, many released products / 100"),
]  # fmt: skip


class CountingTransport(HttpTransport):
    """azure-core's HTTP transport, counting each request (by service and method) and
    optionally waiting `delay_s` before each, as a storage account farther away would."""

    def __init__(self, service: str, counts: Counter[str], lock: threading.Lock, delay_s: float = 0.0) -> None:
        self.inner = RequestsTransport()
        self.service, self.counts, self.lock, self.delay_s = service, counts, lock, delay_s

    def send(self, request: Any, **kwargs: Any) -> Any:
        with self.lock:
            self.counts[f"{self.service} {request.method}"] += 1
        if self.delay_s:
            time.sleep(self.delay_s)
        return self.inner.send(request, **kwargs)

    def open(self) -> None:
        self.inner.open()

    def close(self) -> None:
        self.inner.close()

    def __enter__(self) -> CountingTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        self.inner.__exit__(*args)


def counted_storage(connection_string: str, counts: Counter[str], delay_s: float = 0.0) -> Any:
    """A `Storage` whose queue and table clients count their requests."""
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueServiceClient

    from p2c_core.state.storage import Storage

    lock = threading.Lock()
    return Storage(
        queues=QueueServiceClient.from_connection_string(
            connection_string, transport=CountingTransport("queue", counts, lock, delay_s)
        ),
        tables=TableServiceClient.from_connection_string(
            connection_string, transport=CountingTransport("table", counts, lock, delay_s)
        ),
    )


def worker_main(argv: list[str]) -> int:
    """`worker [--poll-only] FLOW...`: sync the flows (or fire their timers once) in this
    process, through the registered functions; prints one JSON line."""
    import logging

    logging.basicConfig(level=logging.ERROR)
    from datetime import UTC, datetime

    import function_app
    from p2c_cli.host import LocalHost
    from p2c_core import runtime as runtime_module
    from p2c_core.settings import STORAGE, get_settings

    poll_only = "--poll-only" in argv
    flows = [a for a in argv if not a.startswith("--")]
    counts: Counter[str] = Counter()
    delay = float(os.environ.get(DELAY_ENV) or 0) / 1000
    storage = counted_storage(os.environ[STORAGE], counts, delay)
    rt = runtime_module.Runtime(settings=get_settings(), storage=storage)
    runtime_module._runtime = rt  # the functions' runtime: this one, on the counting clients
    host = LocalHost(function_app.app, storage, lease_seconds=120)
    started = datetime.now(UTC)
    cpu0, t0 = time.process_time(), time.monotonic()
    try:
        if poll_only:
            timers = {f.name: f for f in host.timers()}
            for name in flows:
                host.fire(timers[f"{name}_poll"])
        else:
            host.run_flows(flows, timeout=4 * 3600)
    finally:
        host.close()
    cpu, elapsed = time.process_time() - cpu0, time.monotonic() - t0
    requests = sum(counts.values())
    written = read = 0
    for name in flows:
        for run in rt.state.runs(name, since=started):
            written += run.counts.get("written", 0)
            read += run.counts.get("read", 0) if run.kind == "poll" else 0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"written": written, "read": read, "elapsed_s": round(elapsed, 3), "cpu_s": round(cpu, 3),
                      "storage_requests": requests, "by_kind": dict(counts),
                      "rss_mb": round(peak_kb / 1024, 1)}))  # fmt: skip
    return 0


def run_worker(svc: Any, *args: str, **env: str) -> dict[str, Any]:
    from bench.run import REPO

    done = subprocess.run(
        [sys.executable, "-m", "bench.storage", "worker", *args],
        cwd=REPO, env=svc.env(**env), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"bench.storage worker failed ({done.returncode}): {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def per_record(result: dict[str, Any], records: int | None = None) -> float:
    return round(result["storage_requests"] / max(records or result["written"], 1), 4)


def accounts(count: int, latency_ms: float) -> dict[str, Any]:
    """Initial load of `count` generated accounts, a re-sync of 100 changed ones, and the
    same initial load with 5 ms added to every storage request."""
    from bench.run import services

    out: dict[str, Any] = {"accounts": count}
    with services(count, latency_ms) as svc:
        initial = run_worker(svc, "accounts")
        out["initial"] = initial
        out["storage_requests_per_record_initial"] = per_record(initial)
        out["cpu_ms_per_record"] = round(1000 * initial["cpu_s"] / max(initial["written"], 1), 3)
        change_accounts(svc, RESYNC_CHANGES)
        resync = run_worker(svc, "accounts")
        out["resync"] = resync
        out["storage_requests_per_record_resync"] = per_record(resync, RESYNC_CHANGES)
    with services(count, latency_ms) as svc:
        slow = run_worker(svc, "accounts", **{DELAY_ENV: "5"})
        out["initial_5ms"] = slow
    fast_rate = initial["written"] / initial["elapsed_s"]
    slow_rate = slow["written"] / slow["elapsed_s"]
    out["storage_latency_throughput_ratio"] = round(slow_rate / fast_rate, 3)
    return out


def change_accounts(svc: Any, changes: int) -> None:
    """Rename `changes` synced customer accounts in Sales (generated ones: VOL-...)."""
    headers = {"OData-Version": "4.0", "Accept": "application/json", "If-Match": "*"}
    with httpx.Client(base_url=svc.dataverse_url + "/api/data/v9.2/", timeout=60, headers=headers) as dv:
        rows = dv.get(
            "accounts",
            params={"$select": "accountid,accountnumber", "$filter": "customertypecode eq 3 and statecode eq 0"},
            headers={"Prefer": f"odata.maxpagesize={changes * 3}"},
        ).json()["value"]
        picked = [r for r in rows if str(r.get("accountnumber") or "").startswith("VOL-")][:changes]
        for row in picked:
            dv.patch(f"accounts({row['accountid']})", json={"telephone1": "555-0199"}).raise_for_status()


def products(count: int, latency_ms: float) -> dict[str, Any]:
    from bench.run import services

    with services(0, latency_ms, products=count) as svc:
        result = run_worker(svc, "products")
    return {"products": count, "run": result, "storage_requests_per_record_products": per_record(result)}


def idle(small: int, large: int) -> dict[str, Any]:
    """An idle products tick with `small` and with `large` F&O released products: every row
    seen by an earlier poll (its messages dropped: the tick is what is measured), then one
    more poll with nothing changed. Service requests and storage requests of that tick."""
    from bench.run import services, total_requests

    out: dict[str, Any] = {}
    for size in (small, large):
        with services(0, 0, products=size) as svc:
            run_worker(svc, "--poll-only", "products")  # reads and remembers every row
            clear_queues(svc)
            svc.reset_stats()
            tick = run_worker(svc, "--poll-only", "products")
            service = sum(total_requests(s) for s in svc.stats().values())
        out[str(size)] = {"service_requests": service, "storage_requests": tick["storage_requests"],
                          "by_kind": tick["by_kind"], "read": tick["read"]}  # fmt: skip
    s, lg = out[str(small)], out[str(large)]
    service = lg["service_requests"] / max(s["service_requests"], 1)
    stored = lg["storage_requests"] / max(s["storage_requests"], 1)
    out["idle_cost_ratio_100k_vs_100"] = round(max(service, stored), 3)
    out["sizes"] = [small, large]
    return out


def clear_queues(svc: Any) -> None:
    from azure.storage.queue import QueueServiceClient

    queues = QueueServiceClient.from_connection_string(svc.storage)
    for q in queues.list_queues():
        queues.get_queue_client(q.name).clear_messages()


def run(quick: bool, latency_ms: float) -> dict[str, Any]:
    """Every storage figure; `details` per step, the summary keys at the top level."""
    n_accounts, n_products = (2_000, 500) if quick else (5_000, 1_000)
    details: dict[str, Any] = {}
    steps: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        ("storage_accounts", lambda: accounts(n_accounts, latency_ms)),
        ("storage_products", lambda: products(n_products, latency_ms)),
        ("storage_idle", lambda: idle(100, 10_000 if quick else 100_000)),
    ]
    for name, step in steps:
        print(f"{name} ...", flush=True)
        t0 = time.monotonic()
        details[name] = step()
        print(f"{name}: done ({time.monotonic() - t0:.0f}s)", flush=True)
    summary = {key: find(details, key) for key, *_ in GOALS}
    return {"summary": summary, "details": details}


def find(details: dict[str, Any], key: str) -> Any:
    for step in details.values():
        if key in step:
            return step[key]
    raise KeyError(key)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["worker"]:
        return worker_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m bench.storage", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    result = run(args.quick, args.latency_ms)
    print(json.dumps(result["details"], indent=2))
    print(json.dumps(result["summary"]) if args.json else result["summary"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
