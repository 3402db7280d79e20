"""Whole windows of a budget, sampled while a throttled run goes: what its share is taken over.

Dataverse's limits hold over a sliding window; a run is measured over the whole windows it
lasted, from its first request (the processes' start is not the budget's), sampled at each
window's end: a big batch admitted at a window's end counts where it ran, and a last part
window is not counted whole. The windows counted are those that had work for all of them: up
to the last whose end still left a window's bound of products to write; the ones after ran out
of work, which no pace can help (they are in `share_of_bound_every_whole_window`).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from bench.harness import Services, count, total_requests


def executed(stats: dict[str, Any]) -> int:
    """Operations Dataverse ran (a refused request ran none)."""
    return int(stats["operations_total"]) - count(stats, 429)


def products_written(stats: dict[str, Any]) -> int:
    return sum(r["count"] for r in stats["operations"] if r["entity_set"] == "products" and r["status"] < 300)


class Windows:
    """`with Windows(svc, 10.0) as windows:` around a run; then `windows.figures(bound, written)`."""

    def __init__(self, svc: Services, window_s: float) -> None:
        self.svc, self.window_s = svc, window_s
        self.samples: list[tuple[int, int]] = []  # (operations executed, products written) at each end
        self.started = time.monotonic()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self) -> Windows:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _sample(self) -> None:
        while not self._done.wait(0.02) and total_requests(self.svc.admin("dataverse", "stats")) == 0:
            pass
        self.started, k = time.monotonic(), 1
        while not self._done.wait(max(0.0, self.started + k * self.window_s - time.monotonic())):
            stats = self.svc.admin("dataverse", "stats")
            self.samples.append((executed(stats), products_written(stats)))
            k += 1

    def figures(self, per_window: float, written: int) -> dict[str, Any]:
        """The share of `per_window` operations per window over the windows with work."""
        samples = self.samples
        busy = next((i for i, (_, w) in enumerate(samples) if written - w < per_window), len(samples))
        ops = samples[busy - 1][0] if busy else 0
        every = samples[-1][0] if samples else 0
        return {
            "whole_windows": len(samples),
            "windows_with_work": busy,
            "operations_in_windows_with_work": ops,
            "bound_operations": busy * per_window,
            "share_of_bound": round(ops / max(busy * per_window, 1), 3),
            "share_of_bound_every_whole_window": round(every / max(len(samples) * per_window, 1), 3),
            "ops_per_s": round(ops / max(busy * self.window_s, 1), 1),
        }
