"""Helpers that several benchmark modules share (not a benchmark itself: the runner only
runs `bench_*.py`)."""

import time
from collections.abc import Callable


def interleaved_rates(
    ours: Callable[[], object], raw: Callable[[], object], seconds: float, rounds: int
) -> tuple[float, float]:
    """Calls per second of each, alternating in `rounds` rounds of seconds / rounds each
    (so that a load on the machine hits both alike)."""
    ours(), raw()  # warm up
    counts, spent = [0, 0], [0.0, 0.0]
    for _ in range(rounds):
        for side, fn in enumerate((ours, raw)):
            count, start = 0, time.perf_counter()
            deadline = start + seconds / rounds
            while True:
                fn()
                count += 1
                now = time.perf_counter()
                if now >= deadline:
                    break
            counts[side] += count
            spent[side] += now - start
    return counts[0] / spent[0], counts[1] / spent[1]
