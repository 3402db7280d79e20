"""One p2c worker process for the benchmarks: sync flows through the registered functions.

    python -m bench.worker accounts [more flows]
    python -m bench.worker --poll-only products     # fire the flows' timers once, apply nothing
    python -m bench.worker --drain-only products    # apply what is queued (several may share the queues)

Settings come from the environment (as in Azure). Runs in its own process so its peak
memory is p2c's alone, not the sandbox's or Azurite's; prints one JSON line:
`{"written": n, "failed": n, "elapsed_s": s, "rss_mb": peak}`.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.ERROR)
    from datetime import UTC, datetime

    import function_app
    from p2c_cli.host import LocalHost
    from p2c_core.runtime import get_runtime

    mode = argv[0] if argv and argv[0] in ("--poll-only", "--drain-only") else None
    argv = [a for a in argv if a != mode] or ["accounts"]
    runtime = get_runtime()
    host = LocalHost(function_app.app, runtime.storage, lease_seconds=120)
    started = datetime.now(UTC)
    t0 = time.monotonic()
    by_name = {f.name: f for f in host.functions}
    try:
        if mode == "--poll-only":
            for name in argv:
                host.fire(by_name[f"{name}_poll"])
        elif mode == "--drain-only":
            host.drain([by_name[f"{name}_apply"] for name in argv], timeout=3600)
        else:
            host.run_flows(argv, timeout=4 * 3600)  # 200k records take a quarter of an hour or more
    finally:
        host.close()
    elapsed = time.monotonic() - t0
    written = failed = 0
    for name in argv:
        for run in runtime.state.runs(name, since=started):
            written += run.counts.get("written", 0)
            failed += run.counts.get("failed", 0)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"written": written, "failed": failed, "elapsed_s": round(elapsed, 3),
                      "rss_mb": round(peak_kb / 1024, 1)}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
