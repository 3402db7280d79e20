"""The throttle benchmarks' windows: the share over the whole windows that had work."""

from __future__ import annotations

from typing import Any, cast

from bench.windows import Windows


def test_the_share_counts_the_windows_whose_end_still_left_a_window_of_work():
    windows = Windows(cast(Any, None), 10.0)
    # Four whole windows of a run that wrote 800 products at a bound of 250 a window: after the
    # second, 80 were left to write, so the third ran out of work (and the fourth had none).
    windows.samples = [(240, 240), (480, 480), (720, 720), (800, 800)]
    figures = windows.figures(250, 800)
    assert figures["windows_with_work"] == 2 and figures["operations_in_windows_with_work"] == 480
    assert figures["share_of_bound"] == 0.96 and figures["ops_per_s"] == 24.0
    assert figures["share_of_bound_every_whole_window"] == 0.8  # the last windows counted too
    assert figures["whole_windows"] == 4 and figures["bound_operations"] == 500


def test_a_run_shorter_than_a_window_has_no_share():
    windows = Windows(cast(Any, None), 10.0)
    assert windows.figures(250, 100)["share_of_bound"] == 0.0  # no whole window: nothing to claim
    windows.samples = [(100, 100)]
    assert windows.figures(250, 100)["windows_with_work"] == 0
