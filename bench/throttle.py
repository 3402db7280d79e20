"""Many instances, one Dataverse budget: the throttle benchmark on Dataverse's real shape.

    python -m bench.throttle [--quick] [--json]        (also run by `python -m bench.run`)

Dataverse limits each user to 6,000 requests and 1,200 s of execution time per 5 minutes,
52 at once ("Service protection API limits"); the sandbox applies that ratio scaled to a
10 s window: 200 requests and 40 s of execution, 52 at once, each operation of a `$batch`
spending (and taking) COST_MS. The products flow (F&O released products -> Sales products,
in `$batch` writes of BATCH_SIZE) runs against it in three runs, each with a fresh sandbox:
one worker process; four worker processes on the same queues; four with a pool of three
application users. Each run polls once, then the workers drain the queue together.

Figures: the operations Dataverse executed within the whole windows of a run that had work
(bench/windows.py) over what the budget allowed in them; 429s
over every Dataverse request of the run; requests per product, four workers against one; the
pool's operations per second over one user's bound. In-process at the default settings:
`requests_per_product` (2,000 generated products) and `requests_per_600_line_order` (a new
F&O order of 600 lines synced to Sales).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from typing import Any

from bench.harness import REPO, Services, count, met, print_goals, services, total_requests
from bench.windows import Windows, products_written

WINDOW_S = 10.0
MAX_REQUESTS = 200  # 6,000 per 300 s
MAX_EXECUTION_S = 40.0  # 1,200 s per 300 s
MAX_CONCURRENT = 52
COST_MS = 160.0  # per operation: 250 operations per window per user, 25 a second
BATCH_SIZE = 20  # records per `$batch`: 3.2 s of execution each
BOUND_OPS_PER_WINDOW = min(MAX_EXECUTION_S / (COST_MS / 1000), MAX_REQUESTS * BATCH_SIZE)
POOL = ["p2c-app-1", "p2c-app-2", "p2c-app-3"]
PRODUCTS_UNTHROTTLED = 2_000


def run(products: int, workers: int, latency_ms: float, pool: list[str] | None = None) -> dict[str, Any]:
    with services(0, latency_ms, products=products) as svc:
        settings = {
            "P2C_BATCH_SIZE": str(BATCH_SIZE),
            # One batch per message: a message is short, well inside its queue lease.
            "P2C_CHUNK_SIZE": str(BATCH_SIZE),
            "P2C_DATAVERSE_LIMIT_WINDOW_SECONDS": str(WINDOW_S),
            "P2C_DATAVERSE_APP_USERS": json.dumps([{"client_id": c, "managed_identity": True} for c in pool or []]),
        }
        _worker(svc, settings, "--poll-only")
        svc.admin("dataverse", "protection", {
            "enabled": True, "window_s": WINDOW_S, "max_requests": MAX_REQUESTS, "max_execution_s": MAX_EXECUTION_S,
            "max_concurrent": MAX_CONCURRENT, "cost_ms": COST_MS,
        })  # fmt: skip
        svc.reset_stats()
        with Windows(svc, WINDOW_S) as windows:
            procs = [_start(svc, settings, "--drain-only") for _ in range(workers)]
            for proc in procs:
                _wait(proc)
            elapsed = time.monotonic() - windows.started
        dataverse = svc.admin("dataverse", "stats")
    users = len(pool) if pool else 1
    written = products_written(dataverse)
    return {
        "workers": workers,
        "users": users,
        "products": products,
        "written": written,
        "elapsed_s": round(elapsed, 1),
        **windows.figures(BOUND_OPS_PER_WINDOW * users, written),
        "dataverse_requests": total_requests(dataverse),
        "requests_per_product": round(total_requests(dataverse) / max(written, 1), 4),
        "share_429": round(count(dataverse, 429) / max(total_requests(dataverse), 1), 4),
    }


def _start(svc: Services, settings: dict[str, str], mode: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bench.worker", mode, "products"],
        cwd=REPO, env=svc.env(**settings), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait(proc: subprocess.Popen[str]) -> None:
    _out, err = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"bench.worker failed ({proc.returncode}): {err[-2000:]}")


def _worker(svc: Services, settings: dict[str, str], mode: str) -> None:
    _wait(_start(svc, settings, mode))


def order_600_lines() -> dict[str, Any]:
    """Requests to Sales for one new F&O order of 600 lines (fno_orders), in-process."""
    import httpx

    from p2c_cli.local import local_environment, sync
    from p2c_core.flows import get_flow
    from p2c_sandbox.volume import generate_products

    flow = get_flow("fno_orders")
    with local_environment(None) as env:
        # Products at the default settings, unthrottled: Dataverse requests per product written.
        generate_products(env.sandbox.fno_service, PRODUCTS_UNTHROTTLED)
        env.sandbox.dataverse_service.accounting.reset()
        products = sync(env.host, env.runtime, ["products"]).flows["products"].written
        product_requests = env.sandbox.dataverse_service.accounting.snapshot()["total"]
        sync(env.host, env.runtime, ["accounts", "contact_customers", "fno_orders"])
        where = flow.source.where
        template = next(r for r in env.sandbox.fno.rows("CDSSalesOrderHeaders") if where is None or where.matches(r))
        number = "SO-BENCH600"
        with httpx.Client(base_url=env.sandbox.fno_url + "/data/", params={"cross-company": "true"}) as fno:
            header = {k: v for k, v in template.items() if not k.startswith("@")}
            fno.post("CDSSalesOrderHeaders", json={**header, "SalesOrderNumber": number}).raise_for_status()
            for n in range(600):
                fno.post("CDSSalesOrderLines", json={
                    "dataAreaId": header["dataAreaId"], "SalesOrderNumber": number, "LineCreationSequenceNumber": n + 1,
                    "ProductNumber": "D0003", "OrderedSalesQuantity": 1.0 + n, "SalesPrice": 10.0,
                    "SalesUnitSymbol": "ea",
                }).raise_for_status()  # fmt: skip
        accounting = env.sandbox.dataverse_service.accounting
        accounting.reset()
        summary = sync(env.host, env.runtime, ["fno_orders"])
        sent = accounting.snapshot()
        lines = [r for r in env.sandbox.dataverse.rows("salesorders") if r["ordernumber"] == number]
    written = summary.flows["fno_orders"].written
    return {
        "written": written,
        "order_in_sales": len(lines) == 1,
        "requests": sent["total"],
        "operations": sent["operations_total"],
        "requests_per_600_line_order": sent["total"] if written == 1 else None,
        "products_written": products,
        "product_requests": product_requests,
        "requests_per_product": round(product_requests / max(products, 1), 4),
    }


def throttle(quick: bool, latency_ms: float) -> dict[str, Any]:
    # Enough products for several whole windows at the bound of each run.
    single = 1_200 if quick else 2_500
    one = run(single, 1, latency_ms)
    four = run(single, 4, latency_ms)
    pooled = run(single * 3, 4, latency_ms, pool=POOL)
    order = order_600_lines()
    return {
        "one_worker": one,
        "four_workers": four,
        "pool": pooled,
        "order_600_lines": order,
        "multi_worker_share_of_bound": four["share_of_bound"],
        "multi_worker_share_429": four["share_429"],
        "multi_worker_requests_ratio": round(four["requests_per_product"] / max(one["requests_per_product"], 1e-9), 3),
        "pool_speedup": round(pooled["ops_per_s"] / (BOUND_OPS_PER_WINDOW / WINDOW_S), 2),
        "requests_per_600_line_order": order["requests_per_600_line_order"],
        "requests_per_product": order["requests_per_product"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.throttle", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--write", action="store_true", help="write the figures to docs/benchmarks.md")
    args = parser.parse_args(argv)
    result = throttle(args.quick, args.latency_ms)
    if args.write:
        write_section(result, args.quick, args.latency_ms)
    print_goals(GOALS, result)
    print(json.dumps(result) if args.json else json.dumps(result, indent=2))
    return 0


GOALS = [
    ("multi_worker_share_of_bound", ">=", 0.95, "4 workers: operations / the bound, over whole windows"),
    ("multi_worker_share_429", "<", 0.01, "4 workers: share of Dataverse requests answered 429"),
    ("multi_worker_requests_ratio", "<=", 1.05, "4 workers: requests per product / one worker's"),
    ("pool_speedup", ">=", 2.7, "3 application users, 4 workers: operations/s / one user's bound"),
    ("requests_per_600_line_order", "<=", 10, "requests to Sales for a new 600-line F&O order"),
    ("requests_per_product", "<=", 0.1, "Dataverse requests per product written (default settings)"),
]
BEGIN, END = "<!-- scale-out: written by bench.throttle -->", "<!-- /scale-out -->"


def section(result: dict[str, Any], quick: bool, latency_ms: float) -> str:
    from datetime import UTC, datetime

    lines = [
        BEGIN,
        "## Many instances, one budget",
        "",
        f"Written by `python -m bench.throttle{' --quick' if quick else ''}` (and `bench.run`) on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; every sandbox answer waits {latency_ms:g} ms. Dataverse's ratio "
        f"of limits scaled to a {WINDOW_S:g} s window: {MAX_REQUESTS} requests and {MAX_EXECUTION_S:g} s of "
        f"execution, {MAX_CONCURRENT} at once, {COST_MS:g} ms per operation (taken, not only charged), "
        f"`$batch` writes of {BATCH_SIZE}: the bound is {BOUND_OPS_PER_WINDOW:g} operations per window per user. "
        "How it works: docs/scaling.md.",
        "",
        "| Goal | Figure | Target | Met |",
        "|---|---|---|---|",
    ]
    for key, op, goal, text in GOALS:
        value = result[key]
        lines.append(f"| {text} | {value} | {op} {goal:g} | {'yes' if met(value, op, goal) else '**no**'} |")
    details = {k: result[k] for k in ("one_worker", "four_workers", "pool", "order_600_lines")}
    lines += ["", "```json", json.dumps(details, indent=2), "```", END, ""]
    return "\n".join(lines)


def write_section(result: dict[str, Any], quick: bool, latency_ms: float) -> None:
    from bench.harness import write_doc_section

    write_doc_section(BEGIN, END, section(result, quick, latency_ms))


if __name__ == "__main__":
    sys.exit(main())
