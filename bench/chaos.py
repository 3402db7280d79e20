"""Chaos run: flows against a sandbox that injects faults, over many seeds.

    python -m bench.chaos --seeds 100-119 --fault-rate 0.2 --json

Per seed: a fresh sandbox and fresh state, two companies (usmf and demf, P2C_COMPANIES by
business unit); the sandbox answers a `fault-rate` share of requests with 429 (Retry-After),
500, 503, a dropped connection or an answer slower than the client's timeout, before or
after doing the work; Sales records change while the sync runs; right after each poll a
"worker" takes some queue messages and dies holding them (they come back after their
visibility timeout) and some messages are delivered twice, the copy after the others
(duplicated and reordered deliveries). After the queues drain, both sides are
compared by natural key: a record is *lost* if the target lacks it, *stale* if the target
holds other values than its newest source version maps to, *duplicated* if the target holds
it more than once. Prints the seed of every failing run so it can be replayed; the last line
is `{"seeds": n, "records": n, "lost": n, "duplicates": n, "stale": n}`.

With `--push`, live sync is on as well: the event functions are served and registered as the
webhook, and the sandbox pushes every edit, 20% of the pushes dropped, 10% duplicated and
10% reordered (seeded); nudges are applied beside the queues, the timers stay the backstop.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

from p2c_cli.local import TWO_COMPANIES, local_environment, sync
from p2c_core import failing, ops
from p2c_core.clients.retry import Backoff
from p2c_core.company_reads import read_companies, state_scope
from p2c_core.flows import all_flows
from p2c_sandbox import FaultConfig

MAX_TICKS = 30


@dataclass
class SeedResult:
    seed: int
    records: int
    lost: int
    duplicates: int
    stale: int
    ticks: int
    elapsed_s: float
    held: int = 0  # messages a dying worker held
    twice: int = 0  # messages delivered twice
    timeouts: int = 0  # requests answered after the client's timeout
    pushes: int = 0  # with --push: events the sandbox pushed, and of them dropped
    dropped: int = 0

    @property
    def ok(self) -> bool:
        return self.lost == self.duplicates == self.stale == 0


PUSH_KEY = "chaos-events-key-0123456789abcdefghijk"  # a throwaway key for a local run
PUSH_FAULTS = {"drop_rate": 0.2, "duplicate_rate": 0.1, "reorder_rate": 0.1}


def run_seed(seed: int, fault_rate: float, push: bool = False) -> SeedResult:
    # Short record backoff: a chaos run waits out every retry for real.
    extra = {"P2C_RECORD_RETRY_BASE_SECONDS": "1", "P2C_HTTP_TIMEOUT_SECONDS": "1"}
    if push:
        extra |= {"P2C_EVENTS_ENABLED": "true", "P2C_EVENTS_KEY": PUSH_KEY, "P2C_EVENTS_COALESCE_SECONDS": "1"}
    os.environ.update(extra)
    try:
        return _run_seed(seed, fault_rate, push)
    finally:
        for name in extra:
            os.environ.pop(name, None)


@contextlib.contextmanager
def _pushing(env: object, seed: int) -> Iterator[None]:
    """The event functions served and registered; the sandbox's pushes faulted, seeded."""
    import function_app
    from p2c_cli.http_host import HttpHost
    from p2c_cli.local import LocalEnvironment
    from p2c_core.ops import events
    from p2c_sandbox.push import PushFaults

    assert isinstance(env, LocalEnvironment)
    with HttpHost(function_app.app, ["dataverse_events", "fno_events"]) as http:
        events.register(env.runtime, f"{http.url}/api/events/dataverse", dry_run=False)
        env.sandbox.dataverse_service.push.sender.configure(PushFaults(seed=seed, **PUSH_FAULTS))
        yield


def _run_seed(seed: int, fault_rate: float, push: bool = False) -> SeedResult:
    t0 = time.monotonic()
    rng = random.Random(seed)
    with (
        local_environment(None, lease_seconds=2, companies=TWO_COMPANIES) as env,
        _pushing(env, seed) if push else contextlib.nullcontext(),
    ):
        names = [f.name for f in all_flows()]
        # Of the faults: 65% error answers, 20% dropped connections, 15% answers slower than
        # the client's timeout (P2C_HTTP_TIMEOUT_SECONDS=1 here) whose work still happens.
        env.sandbox.set_faults(FaultConfig(seed=seed, error_rate=fault_rate * 0.65, drop_rate=fault_rate * 0.2,
                                           slow_rate=fault_rate * 0.15, slow_ms=1500, retry_after_s=1))  # fmt: skip
        edited = [r for r in env.sandbox.dataverse.rows("accounts") if r.get("accountnumber")]
        meddled = _meddle_after_polls(env, random.Random(seed * 7919))
        ticks = 0
        for ticks in range(1, MAX_TICKS + 1):
            _tick(env, names)
            if ticks <= 3:  # changes while syncing: newer versions race older deliveries
                for row in rng.sample(edited, k=min(5, len(edited))):
                    _edit(env, row["accountid"], rng)
            else:
                meddled["on"] = 0
            if ticks > 3 and _quiet(env, names):
                break
        timeouts = sum(svc.faults.snapshot()["counts"].get("slow", 0)
                       for svc in (env.sandbox.dataverse_service, env.sandbox.fno_service))  # fmt: skip
        env.sandbox.set_faults(FaultConfig())
        sync(env.host, env.runtime, names)  # one clean tick: what is queued drains, nothing new is read
        records = lost = stale = 0
        for flow in all_flows():
            drift = ops.reconcile(env.runtime, flow.name)
            records += drift.source_records - len(drift.unmappable)
            lost += len(drift.missing)
            stale += len(drift.differing)
            for key, fields in drift.differing.items():
                print(f"  seed {seed}: stale {flow.name}/{key}: {fields}", file=sys.stderr)
            for key in drift.missing:
                print(f"  seed {seed}: lost {flow.name}/{key}", file=sys.stderr)
        duplicates = _duplicates(env)
        pushed = env.sandbox.dataverse_service.push.sender.snapshot()
    return SeedResult(seed, records, lost, duplicates, stale, ticks, time.monotonic() - t0,
                      meddled["held"], meddled["twice"], timeouts, pushed["sent"], pushed["dropped"])  # fmt: skip


# How long one tick applies queued changes before the next timers fire.
TICK_DRAIN_S = 20.0


def _tick(env: object, names: list[str]) -> None:
    """One timer period, as the Functions host runs it: every flow polls, and queue
    functions run for a while. A record waiting for another flow's records (a contact for
    its account) is retried across ticks, as timers and queues run side by side in Azure."""
    from p2c_cli.local import LocalEnvironment

    assert isinstance(env, LocalEnvironment)
    timers = {f.name: f for f in env.host.timers()}
    for name in names:
        env.host.fire(timers[f"{name}_poll"])
    with contextlib.suppress(TimeoutError):  # the rest waits for the next tick, still queued
        env.host.drain(timeout=TICK_DRAIN_S, idle_sleep=0.1)


def _meddle_after_polls(env: object, rng: random.Random) -> dict[str, int]:
    """After each poll: a worker dies holding a few messages, and a few are delivered twice."""
    from p2c_cli.local import LocalEnvironment

    assert isinstance(env, LocalEnvironment)
    state = {"on": 1, "held": 0, "twice": 0}
    fire = env.host.fire

    def fire_then_meddle(fn):
        ok = fire(fn)
        if state["on"] and fn.name.endswith("_poll"):
            queue = env.runtime.storage.queue(next(f for f in all_flows() if f"{f.name}_poll" == fn.name).queue)
            # Received and never deleted nor completed: back after 2 s, as after a crash.
            held = rng.randint(1, 3)
            for message in queue.receive_messages(messages_per_page=held, max_messages=held, visibility_timeout=2):
                state["held"] += 1
                if rng.random() < 0.5:
                    queue.send_message(message.content)  # a second delivery, after the others
                    state["twice"] += 1
        return ok

    env.host.fire = fire_then_meddle  # type: ignore[method-assign]
    return state


def _duplicates(env: object) -> int:
    """Rows that share a natural key in a target: customers, and lines within a document."""
    from p2c_cli.local import LocalEnvironment

    assert isinstance(env, LocalEnvironment)
    keys: Counter[object] = Counter(
        (r["dataAreaId"], str(r["CustomerAccount"]).casefold()) for r in env.sandbox.fno.rows("CustomersV3")
    )  # a customer per company: one number in two companies is two customers
    for lines, parent in (("salesorderdetails", "_salesorderid_value"), ("invoicedetails", "_invoiceid_value")):
        keys.update((lines, r[parent], r["sequencenumber"]) for r in env.sandbox.dataverse.rows(lines))
    keys.update(("productpricelevels", r["_productid_value"], r["_pricelevelid_value"])
                for r in env.sandbox.dataverse.rows("productpricelevels"))  # fmt: skip
    return sum(n - 1 for n in keys.values() if n > 1)


def _edit(env: object, account_id: str, rng: random.Random) -> None:
    import httpx

    from p2c_cli.local import LocalEnvironment

    assert isinstance(env, LocalEnvironment)
    with httpx.Client(base_url=env.sandbox.dataverse_url + "/api/data/v9.2/") as dv:
        for _ in range(5):  # the sandbox injects faults into our edits too
            try:
                r = dv.patch(f"accounts({account_id})", json={"telephone1": f"+1 425 555 {rng.randint(1000, 9999)}"},
                             headers={"If-Match": "*"})  # fmt: skip
            except httpx.TransportError:
                continue
            if r.status_code < 300:
                return


def _quiet(env: object, names: list[str]) -> bool:
    from p2c_cli.local import LocalEnvironment

    assert isinstance(env, LocalEnvironment)
    companies = env.runtime.companies
    for name in names:
        flow = next(f for f in all_flows() if f.name == name)
        for company in read_companies(companies, flow):  # each company's read of an F&O source
            cursor = env.runtime.state.get_cursor(name, state_scope(companies, company))
            # Polled to the end at least once, not mid-scan, nothing queued.
            if cursor.updated_at is None or cursor.scan_started is not None or env.host.depth(flow.queue):
                return False
    return True


def parse_seeds(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        lo, _, hi = part.partition("-")
        seeds += list(range(int(lo), int(hi or lo) + 1))
    return seeds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seeds", default="100-104", help="seeds: 100-119 or 1,5,9 (default 100-104)")
    parser.add_argument("--fault-rate", type=float, default=0.2, help="share of requests that fail (default 0.2)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON on the last line")
    parser.add_argument("--push", action="store_true", help="live sync on, its pushes faulted too (see above)")
    args = parser.parse_args(argv)
    if not 0 <= args.fault_rate < 1:
        parser.error("--fault-rate must be in [0, 1)")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # dropped connections are the point
    # Short record backoff: a chaos run waits seconds, not the minutes production would.
    failing.RECORD_BACKOFF = Backoff(base=0.2, cap=2.0)
    results = []
    for seed in parse_seeds(args.seeds):
        result = run_seed(seed, args.fault_rate, args.push)
        results.append(result)
        status = "ok" if result.ok else f"FAILED (replay: --seeds {seed})"
        print(
            f"seed {seed}: {result.records} records, lost {result.lost}, duplicates {result.duplicates}, "
            f"stale {result.stale}; {result.held} messages held by dying workers, {result.twice} delivered "
            f"twice, {result.timeouts} requests timed out; "
            + (f"{result.pushes} events pushed, {result.dropped} dropped; " if args.push else "")
            + f"{result.ticks} ticks, {result.elapsed_s:.1f}s  {status}",
            flush=True,
        )
    summary = {
        "seeds": len(results),
        "records": sum(r.records for r in results),
        "lost": sum(r.lost for r in results),
        "duplicates": sum(r.duplicates for r in results),
        "stale": sum(r.stale for r in results),
    }
    print(json.dumps(summary) if args.json else summary)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
