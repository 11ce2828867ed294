"""A check that a text operation costs what its input's length costs, not its square.

It compares the *CPU time of this process* (`time.process_time`, which other processes on a
loaded machine do not inflate) on an input of size n and of size 4n: linear work grows about 4x,
quadratic 16x. Each size is repeated until it has run for a measurable time, and the best of a
few rounds is taken, so a scheduling hiccup cannot fail the check; the bound (9x) sits between
the two growth rates with room on both sides.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

GROWTH = 4
MAX_RATIO = 9.0
MIN_SAMPLE_S = 0.02
ROUNDS = 3


def _cost(func: Callable[[Any], object], value: Any, repeats: int) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.process_time()
        for _ in range(repeats):
            func(value)
        best = min(best, time.process_time() - start)
    return best / repeats


def assert_linear(func: Callable[[Any], object], make: Callable[[int], Any], n: int) -> None:
    small, large = make(n), make(n * GROWTH)
    repeats = 1
    while True:
        start = time.process_time()
        for _ in range(repeats):
            func(small)
        if time.process_time() - start >= MIN_SAMPLE_S or repeats >= 1024:
            break
        repeats *= 2
    small_cost = _cost(func, small, repeats)
    large_cost = _cost(func, large, max(1, repeats // GROWTH))
    ratio = large_cost / max(small_cost, 1e-9)
    assert ratio < MAX_RATIO, (
        f"{GROWTH}x the input cost {ratio:.1f}x the time ({small_cost * 1e3:.2f} ms -> "
        f"{large_cost * 1e3:.2f} ms): super-linear")
