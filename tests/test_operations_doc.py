"""docs/operations.md shows real output (issue 19): every `$ p2c ...` example, run in order against
a fresh sandbox, prints what the doc says, times and ages aside."""

from __future__ import annotations

from tools.operations_doc import DOC, Example, environment, examples, normalise, run_all


def test_every_documented_example_matches_real_output():
    found = examples(DOC.read_text())
    assert len(found) >= 9 and {c.split()[1] for e in found for c in e.commands} >= {
        "check",
        "plan",
        "sync",
        "status",
        "failures",
        "replay",
        "reconcile",
        "reset-cursor",
        "pause",
        "resume",
    }
    for env in environment():
        run_all(found, env)
    stale = {" / ".join(e.commands): (normalise(e.shown), normalise(e.real)) for e in found if not e.matches()}
    assert stale == {}, "docs/operations.md is stale: python -m tools.operations_doc --write"


def test_a_stale_example_is_caught_and_volatile_parts_are_not():
    shown = "```\n$ p2c check\n✓ 1 flow(s), 30 mapped fields\n(exit 0)\n```"
    [example] = examples(shown + "\n")
    example.real = "$ p2c check\n✓ 8 flow(s), 146 mapped fields\n(exit 0)\n"
    assert not example.matches()
    aged = Example(["p2c status"], "x 3s 2026-11-24T23:28:10 │\n", "x   45s   2026-12-01T10:20:51 │\n")
    assert aged.matches()
