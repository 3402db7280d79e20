"""`p2c demo`: every flow against the local sandbox, explained for someone new to p2c."""

from __future__ import annotations

import contextlib
import json
import shlex
import signal
import textwrap
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from p2c_cli.local import TWO_COMPANIES, local_environment, sandbox_env

if TYPE_CHECKING:
    from p2c_cli.local import LocalEnvironment, Summary
    from p2c_core.state import Failure

SKIPPED = (
    "skipped = read but not written: not for this flow (an account that is no active customer, "
    "a contact that is one), unchanged since the last write, or a deletion (counted as removed; docs/lifecycle.md)."
)
NEXT = """Next: `p2c demo --serve` keeps this environment up and prints its settings;
with them, in another terminal:
  p2c status                   each flow at a glance
  p2c failures                 the failed records and why
  p2c replay --flow products   after fixing a cause
  p2c console                  the same in the browser"""
# Queue messages are handled this often while `--serve` keeps the environment up; timers fire less often.
PUMP_S, TICK_S = 1.0, 30.0


@dataclass(frozen=True)
class Example:
    """A failure the sandbox's data provokes on purpose, and how an operator fixes it."""

    flow: str
    marker: str  # a phrase of the failure's message
    fix: str


EXAMPLES = (
    Example("accounts", "over the target's maximum", "shorten the name in Sales, then `p2c replay --flow accounts`"),
    Example("accounts", "has no accountnumber", "give the account a number in Sales; the next poll sends it"),
    Example(
        "products",
        "value map 'unit' has no entry",
        "add the unit to P2C_VALUE_MAPS__UNIT, then `p2c replay --flow products`",
    ),
    Example(
        "products",
        "no active price list",
        "add a GBP price list in Sales (or set P2C_VALUE_MAPS__PRICE_LIST), then replay",
    ),
)


def example_of(failure: Failure) -> Example | None:
    return next((e for e in EXAMPLES if e.flow == failure.flow and e.marker in failure.message), None)


def run(state_dir: Path, *, json_output: bool, serve: bool, console: Console, one_company: bool = False) -> None:
    from p2c_core.flows import all_flows

    companies = None if one_company else TWO_COMPANIES
    with local_environment(state_dir, companies=companies) as env:
        if not json_output:
            console.print(
                f"[bold]p2c demo[/]: Sales (Dataverse) {env.sandbox.dataverse_url} -> F&O {env.sandbox.fno_url}\n"
                f"companies {', '.join(env.runtime.companies.ids)}; "
                f"state in {state_dir} (run again: an incremental sync; --fresh: from scratch)"
            )
        started = datetime.now(UTC)
        names = [f.name for f in all_flows()]
        summary = env.sync(names)
        by_company = company_counts(env, names)
        if json_output:
            print(json.dumps({**summary.as_dict(), "companies": by_company}), flush=True)
        else:
            console.print(summary_table(summary, by_company))
            console.print(SKIPPED, style="dim")
            _print_customers(env, console)
            _print_failures(env, console, started)
            console.print(f"elapsed {summary.elapsed_s:.1f}s")
        if serve:
            keep_serving(env, state_dir, console)
        elif not json_output:
            console.print(NEXT, highlight=False, markup=False)


def company_counts(env: LocalEnvironment, names: list[str]) -> dict[str, dict[str, int]]:
    """Per company, per flow: the records synced (written at least once: in the key map)."""
    companies = env.runtime.companies
    out: dict[str, dict[str, int]] = {c: dict.fromkeys(names, 0) for c in companies.ids}
    for name in names:
        for entry in env.runtime.state.entries(name):
            company = companies.split(entry.source_key)[0]
            if entry.version >= 0 and company in out:
                out[company][name] += 1
    return out


def summary_table(summary: Summary, by_company: dict[str, dict[str, int]]) -> Table:
    """The sync summary, and per company the records synced for it so far (`in <company>`)."""
    table = Table(title="Sync summary (in <company>: its records synced so far)")
    for col in ("flow", "read", "written", "skipped", "failed", *(f"in {c}" for c in by_company)):
        table.add_column(col, justify="left" if col == "flow" else "right")
    for name, s in summary.flows.items():
        synced = [str(by_company[c].get(name, 0)) for c in by_company]
        table.add_row(name, str(s.read), str(s.written), str(s.skipped), str(s.failed), *synced)
    return table


def _print_customers(env: LocalEnvironment, console: Console) -> None:
    ours = "IsExternallyMaintained eq Microsoft.Dynamics.DataEntities.NoYes'Yes'"
    for company in env.runtime.companies.ids:
        keys = [
            str(row["CustomerAccount"])
            for page in env.runtime.fno_for(company).query("CustomersV3", select=["CustomerAccount"], filter=ours)
            for row in page.rows
        ]
        sample = ", ".join(keys[:3])
        console.print(f"F&O {company} now has {len(keys)} customers maintained by p2c (CustomersV3: {sample}, ...)")


def _print_failures(env: LocalEnvironment, console: Console, started: datetime) -> None:
    failures = env.runtime.state.failures()
    if not failures:
        return
    new = [f for f in failures if f.last_seen >= started.isoformat()]
    console.print(f"{len(failures)} failed record(s), seeded on purpose as examples ({len(new)} new in this run):")
    if not new:
        console.print("(from an earlier run: nothing changed since, so nothing was tried again)")
    width = console.width
    for f in failures:
        example = example_of(f)
        lines = textwrap.wrap(f"{f.flow} {f.source_key}: {f.message}", width, subsequent_indent="    ")
        fix = f"example; fix: {example.fix}" if example else "not a seeded example: see the message"
        lines += textwrap.wrap(fix, width, initial_indent="    ", subsequent_indent="    ")
        for line in lines:
            console.print(line, highlight=False, markup=False)
    console.print("`p2c failures` lists them with their error class, attempt and request id.")


def settings_lines(env: LocalEnvironment) -> list[str]:
    """The settings that point p2c at this environment, as `.env` / shell lines."""
    configured = env.runtime.settings.companies
    companies = None if configured is None else {c: e.model_dump(exclude_defaults=True) for c, e in configured.items()}
    urls = (env.azurite.connection_string, env.sandbox.dataverse_url, env.sandbox.fno_url)
    values = sandbox_env(*urls, companies=companies)
    return [f"{k}={shlex.quote(v)}" for k, v in values.items()]


def keep_serving(env: LocalEnvironment, state_dir: Path, console: Console) -> None:
    """Keep Azurite, the sandbox and a local host (queues and timers) running until Ctrl-C."""
    env_file = state_dir / "demo.env"
    env_file.write_text("\n".join(settings_lines(env)) + "\n")
    console.print(
        f"Serving the demo's environment (companies {', '.join(env.runtime.companies.ids)}) until Ctrl-C. "
        f"Its settings are in {env_file}:\n"
        f"  cp {env_file} .env        (or: set -a; . {env_file}; set +a)\n"
        "then, in another terminal: p2c status, p2c failures, p2c console"
    )
    for line in settings_lines(env):
        print(line, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with contextlib.suppress(KeyboardInterrupt):
        pump_until(env, stop)
    console.print("stopped; the demo's state stays in " + str(state_dir))


def pump_until(env: LocalEnvironment, stop: threading.Event) -> None:
    """Like the Functions host: queue messages handled every second, timers every 30 s."""
    import time

    next_tick = 0.0
    while not stop.is_set():
        if time.monotonic() >= next_tick:
            for timer in env.host.timers():
                env.host.fire(timer)
            next_tick = time.monotonic() + TICK_S
        for fn in env.host.queue_functions():
            env.host.pump(fn)
        stop.wait(PUMP_S)
