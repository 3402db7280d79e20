"""What an instance's charges hold of the window, summed as each holds it."""

from __future__ import annotations

import random

import pytest

from p2c_core.clients.occupancy import Charge, Occupancy


def test_what_the_window_holds_is_summed_as_each_charge_holds_it():
    """Occupancy (built once per decision, for windows of thousands of charges) against the
    plain sum over every charge, at moments from now on."""
    rnd = random.Random(7)
    now, window, early, late = 1000.0, 300.0, 0.1, 0.4
    ledger = [Charge(now - rnd.uniform(0, 299), 0.0, rnd.uniform(0.1, 4.0), 20, answered=True) for _ in range(3000)]
    for c in ledger:
        c.lands = c.started + rnd.uniform(0.1, 1.0) if c.started + 1.0 < now else now
    ledger += [Charge(now, now + rnd.uniform(0.5, 4.0), 3.2, 20) for _ in range(40)]
    held = Occupancy.of(ledger, window, early, late)
    for mark in (now, now + 0.5, now + 3.0, now + 150.0, now + 299.0, now + 305.0):
        plain = sum(
            c.cost
            for c in ledger
            if (c.lands if c.answered else c.lands - early) <= mark < c.lands + window + (0.0 if c.answered else late)
        )
        assert held.held(mark) == pytest.approx(plain)
