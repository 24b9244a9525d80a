"""Two sides measured in interleaved pairs (one first in a pair, the other first in the next), so
that a slow spell of the machine falls on both; their ratio per pair is what the benchmarks report."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def interleaved(ours: Callable[[int], float], theirs: Callable[[int], float],
                pairs: int) -> tuple[list[float], list[float]]:
    """``pairs`` measurements of each side (each called with the pair's index)."""
    a, b = [], []
    for i in range(pairs):
        if i % 2 == 0:
            a.append(ours(i))
            b.append(theirs(i))
        else:
            b.append(theirs(i))
            a.append(ours(i))
    return a, b


def spread(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """The per-pair ratios a / b: (min, median, max)."""
    ratios = sorted(x / y for x, y in zip(a, b))
    return ratios[0], statistics.median(ratios), ratios[-1]
