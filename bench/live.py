"""Live sync benchmark: edits in Sales pushed by webhook, from the source write to the target write.

    python -m bench.live --edits 1000 --seconds 60 --json

In one process: Azurite, the sandbox (every answer waits `--latency-ms`), the event
functions served on 127.0.0.1 and registered as the webhook (`p2c events register`), and a
worker pumping the nudge and apply queues as the host does. Customer accounts are edited
(`telephone1`) at an even pace; every F&O customer write is timed as the sandbox commits
it. An edit's lag runs from its Sales write to the first F&O write of its value or a later
one. Then the same with 20% of the pushes dropped and 10% duplicated and 10% reordered:
after the edits, the backstop timer fires once, and every edit must have reached F&O:
`lost` (an account whose last value F&O lacks), `stale` (F&O holds another value) and
`duplicates` (customers sharing a key) are all 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

KEY = "bench-live-events-key-0123456789abcdefgh"  # a throwaway key for a local run
PUMPS = 4
PUSH_ENV = {"P2C_EVENTS_ENABLED": "true", "P2C_EVENTS_KEY": KEY, "P2C_EVENTS_COALESCE_SECONDS": "1"}


@dataclass
class Edit:
    account: str  # accountnumber
    seq: int
    value: str
    # The Sales write sent: a conservative start (its commit is a little later).
    written_at: float = 0.0
    reached_at: float | None = None  # the first F&O write of this value or a later one


@dataclass
class Run:
    edits: list[Edit] = field(default_factory=list)
    # accountnumber -> the edit sequence numbers F&O was written with, and when.
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reached(self, account: str, phone: Any, at: float) -> None:
        if not isinstance(phone, str) or not phone.startswith("+1 425 "):
            return
        seq = int(phone.rsplit(" ", 1)[-1])
        with self.lock:
            for edit in self.edits:
                if edit.account == account and edit.seq <= seq and edit.reached_at is None:
                    edit.reached_at = at


def _percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


@contextmanager
def _environment(latency_ms: float) -> Iterator[Any]:
    for name, value in PUSH_ENV.items():
        os.environ[name] = value
    try:
        from p2c_cli.local import local_environment
        from p2c_sandbox import FaultConfig

        with local_environment(None, lease_seconds=10) as env:
            env.sandbox.set_faults(FaultConfig(latency_ms=latency_ms))
            yield env
    finally:
        for name in PUSH_ENV:
            os.environ.pop(name, None)


def _pump(env: Any, stop: threading.Event) -> None:
    """The host's queue listeners: nudges and the accounts queue, until stopped."""
    functions = [f for f in env.host.queue_functions() if f.name in ("nudges_apply", "accounts_apply")]
    while not stop.is_set():
        if not sum(env.host.pump(f) for f in functions):
            stop.wait(0.02)


def run(
    edits: int, seconds: float, latency_ms: float, faults: dict[str, float] | None, seed: int = 7
) -> dict[str, Any]:
    import function_app
    from p2c_cli.http_host import HttpHost
    from p2c_cli.local import sync
    from p2c_core import nudge
    from p2c_core.ops import events

    with _environment(latency_ms) as env, HttpHost(function_app.app, ["dataverse_events"]) as http:
        sync(env.host, env.runtime, ["accounts"])
        written = {str(r["CustomerAccount"]) for r in env.sandbox.fno.rows("CustomersV3")}
        ids = {str(r["accountnumber"]): r["accountid"] for r in env.sandbox.dataverse.rows("accounts")
               if r.get("customertypecode") == 3 and r.get("statecode") == 0
               and r.get("accountnumber") in written}  # fmt: skip
        accounts = sorted(ids)
        events.register(env.runtime, f"{http.url}/api/events/dataverse", dry_run=False)
        push = env.sandbox.dataverse_service.push.sender
        if faults:
            from p2c_sandbox.push import PushFaults

            push.configure(PushFaults(seed=seed, **faults))
        result = Run()
        env.sandbox.fno_store.on_write = lambda eset, pk, row, event: (
            result.reached(str(row.get("CustomerAccount")), row.get("PrimaryContactPhone"), time.monotonic())
            if eset == "CustomersV3" else None
        )  # fmt: skip
        rng = random.Random(seed)
        result.edits = [Edit(rng.choice(accounts), i, f"+1 425 {i:07d}") for i in range(edits)]
        stop = threading.Event()
        # Listeners side by side, as the host's batches overlap (batchSize + newBatchThreshold)
        # and instances scale out: PUMPS batches of 8 in flight.
        pumps = [threading.Thread(target=_pump, args=(env, stop), daemon=True) for _ in range(PUMPS)]
        for pump in pumps:
            pump.start()
        t0 = time.monotonic()

        def edit(item: Edit) -> None:
            time.sleep(max(0.0, t0 + item.seq * seconds / edits - time.monotonic()))
            item.written_at = time.monotonic()
            with httpx.Client(base_url=env.sandbox.dataverse_url + "/api/data/v9.2/", timeout=30) as dv:
                dv.patch(f"accounts({ids[item.account]})", json={"telephone1": item.value},
                         headers={"If-Match": "*"}).raise_for_status()  # fmt: skip

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(edit, result.edits))
        # Let the pushes land and the queues empty (a bound, then the backstop covers the rest).
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not (push.idle() and env.host.depth(nudge.QUEUE) == 0
                                                   and env.host.depth("p2c-accounts") == 0):  # fmt: skip
            time.sleep(0.2)
        live_reached = sum(1 for e in result.edits if e.reached_at is not None)
        lags = [max(0.0, e.reached_at - e.written_at) for e in result.edits if e.reached_at is not None]
        stop.set()
        for pump in pumps:
            pump.join()
        # The backstop: the timer fires once (it runs every 30 minutes with push on).
        sync(env.host, env.runtime, ["accounts"])
        return _report(env, result, lags, live_reached, push.snapshot(), time.monotonic() - t0)


def _report(env: Any, result: Run, lags: list[float], live_reached: int, push: dict[str, Any],
            elapsed: float) -> dict[str, Any]:  # fmt: skip
    source = {str(r["accountnumber"]): r.get("telephone1") for r in env.sandbox.dataverse.rows("accounts")
              if r.get("accountnumber")}  # fmt: skip
    target_rows = env.sandbox.fno.rows("CustomersV3")
    target = {str(r["CustomerAccount"]): r.get("PrimaryContactPhone") for r in target_rows}
    edited = {e.account for e in result.edits}
    # Lost: an edit no F&O write carried, not even the backstop's; stale: F&O holds other than Sales.
    lost = sum(1 for e in result.edits if e.reached_at is None)
    stale = sum(1 for a in edited if target.get(a) != source.get(a))
    keys = Counter(str(r["CustomerAccount"]).casefold() for r in target_rows)
    return {
        "edits": len(result.edits),
        "accounts": len(edited),
        "reached_by_push": live_reached,
        "lag_p50_s": round(_percentile(lags, 0.5), 3),
        "lag_p95_s": round(_percentile(lags, 0.95), 3),
        "lag_max_s": round(max(lags), 3) if lags else None,
        "lag_mean_s": round(statistics.fmean(lags), 3) if lags else None,
        "lost": lost,
        "stale": stale,
        "duplicates": sum(n - 1 for n in keys.values() if n > 1),
        "pushes": {k: push[k] for k in ("events", "sent", "dropped", "duplicated", "reordered", "retried", "failed")},
        "elapsed_s": round(elapsed, 1),
    }


FAULTS = {"drop_rate": 0.2, "duplicate_rate": 0.1, "reorder_rate": 0.1}


def live(quick: bool, latency_ms: float) -> dict[str, Any]:
    """Both runs, for bench.run: `live_lag_p50_s`, `live_lag_p95_s` (clean), `live_lost`,
    `live_duplicates`, `live_stale` (with the faults)."""
    edits, seconds = (200, 15.0) if quick else (1000, 60.0)
    logging.getLogger("p2c").setLevel(logging.ERROR)
    clean = run(edits, seconds, latency_ms, None)
    faulty = run(edits, seconds, latency_ms, FAULTS)
    return {
        "clean": clean,
        "faulty": faulty,
        "live_lag_p50_s": clean["lag_p50_s"],
        "live_lag_p95_s": clean["lag_p95_s"],
        "live_lost": faulty["lost"] + clean["lost"],
        "live_duplicates": faulty["duplicates"] + clean["duplicates"],
        "live_stale": faulty["stale"] + clean["stale"],
    }


HEADING = "## Live sync"
METHOD = """\
`bench.live` (called by `bench.run`): Azurite, the sandbox (every answer waits the latency
above) and the event functions served on 127.0.0.1, registered as the webhook with
`p2c events register`; four listeners pump the nudge and accounts queues as the host's
overlapping batches would. Customer accounts are edited (`telephone1`) at an even pace;
an edit's lag runs from sending its Sales write to the first F&O write of its value or a
later one, timed as the sandbox commits it; nudges wait P2C_EVENTS_COALESCE_SECONDS=1 first.
The second run drops 20% of the pushes, duplicates 10% and reorders 10%; after the edits the
backstop timer fires once. Lost: edits no F&O write carried; stale: accounts whose F&O value
differs from Sales'; duplicates: customers sharing a key. Everything, Azurite excepted, runs
in one process on the machine's shared cores."""


def section(result: dict[str, Any], latency_ms: float) -> list[str]:
    """The report's section on live sync (docs/benchmarks.md)."""
    clean, faulty = result["clean"], result["faulty"]
    rows = [
        ("live_lag_p50_s", clean["lag_p50_s"], "", "p50 lag, Sales write -> F&O write (s)"),
        ("live_lag_p95_s", clean["lag_p95_s"], "<= 5", "p95 lag, Sales write -> F&O write (s)"),
        ("live_lost", result["live_lost"], "0", "edits lost (with 20% of pushes dropped)"),
        ("live_duplicates", result["live_duplicates"], "0", "duplicated customers"),
        ("live_stale", result["live_stale"], "0", "stale customers"),
    ]
    lines = [HEADING, "", f"{clean['edits']} edits over {clean['accounts']} accounts in each run, "
             f"every sandbox answer waits {latency_ms:g} ms.", "",
             "| Figure | Key | Value | Target |", "|---|---|---|---|"]  # fmt: skip
    lines += [f"| {text} | `{key}` | {value} | {target or '-'} |" for key, value, target, text in rows]
    lines += ["", METHOD, "", "```json", json.dumps({"clean": clean, "faulty": faulty}, indent=2), "```", ""]
    return lines


def write_section(path: Any, lines: list[str]) -> None:
    """Put the section in the report, in place of an earlier one (or at the end)."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    head, found, rest = text.partition(HEADING)
    if found:
        after = rest.find("\n## ")
        tail = rest[after + 1 :] if after >= 0 else ""
        text = head + "\n".join(lines) + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + "\n".join(lines)
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.live", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--edits", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--faults", action="store_true", help="20%% dropped, 10%% duplicated, 10%% reordered")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--report", action="store_true", help="both runs (--quick sizes with --quick), into "
                        "docs/benchmarks.md's live sync section")  # fmt: skip
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    if args.report:
        from bench.harness import DOCS

        both = live(args.quick, args.latency_ms)
        write_section(DOCS, section(both, args.latency_ms))
        summary = {k: v for k, v in both.items() if k.startswith("live_")}
        print(json.dumps(summary) if args.json else summary)
        return 0 if summary["live_lost"] == summary["live_stale"] == summary["live_duplicates"] == 0 else 1
    result = run(args.edits, args.seconds, args.latency_ms, FAULTS if args.faults else None)
    print(json.dumps(result) if args.json else result)
    return 0 if result["lost"] == result["stale"] == result["duplicates"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
