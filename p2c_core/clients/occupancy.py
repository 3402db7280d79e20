"""What one instance's requests hold of a service's sliding window (pacing.py decides by it).

A `Charge` is one request's place in the window: when it started, when its charge lands
(answered: when it did; in flight: when a request of its size is expected to end), what it
costs. `Occupancy` sums them at any moment from now on, built once per decision.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass


@dataclass
class Charge:
    """One request of this instance: its place in the window."""

    started: float
    lands: float  # when its charge reaches the window (expected, until answered)
    cost: float  # execution seconds
    operations: int
    answered: bool = False


@dataclass
class Occupancy:
    """What this instance's charges hold of the window at moments from now on: the landed ones
    until they leave (sorted by when, with the cost of those leaving later), and the ones in
    flight (a few) from as soon as they may land to as late as they may leave. Built once per
    decision: a window of 300 s may hold thousands of charges."""

    window_s: float
    ends: list[float]  # when each landed charge leaves the window, in order
    later: list[float]  # later[i]: the cost of the landed charges leaving after ends[i - 1]
    flying: list[tuple[float, float, float]]  # (from, until, cost)

    @classmethod
    def of(cls, ledger: list[Charge], window_s: float, early: float, late: float) -> Occupancy:
        landed = sorted((c.lands + window_s, c.cost) for c in ledger if c.answered)
        later = [0.0] * (len(landed) + 1)
        for i in range(len(landed) - 1, -1, -1):
            later[i] = later[i + 1] + landed[i][1]
        flying = [(c.lands - early, c.lands + window_s + late, c.cost) for c in ledger if not c.answered]
        return cls(window_s, [end for end, _ in landed], later, flying)

    def held(self, mark: float) -> float:
        """At `mark` (not before now: every landed charge has landed by then)."""
        landed = self.later[bisect.bisect_right(self.ends, mark)]
        return landed + sum(cost for start, end, cost in self.flying if start <= mark < end)

    def fits(self, land: float, cost: float, allowed: float, slack: float) -> bool:
        """A charge of `cost` held from `land` for a window and `slack` fits `allowed` at every
        moment: where it starts, and wherever one in flight may land while it is held."""
        until = land + self.window_s + slack
        marks = [land] + [start for start, _, _ in self.flying if land < start < until]
        return all(self.held(mark) + cost <= allowed + 1e-9 for mark in marks)
