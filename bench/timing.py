"""Medians of interleaved runs, so machine load hits every measured case alike.

Each round runs every case once, the order reversed every other round (A B C,
C B A, ...), so a slow drift of the machine's speed hits every case alike; the
first rounds are a warm-up and are discarded. On a shared machine a burst of
load then slows all cases of one round instead of all repeats of one case,
which keeps the ratios between cases meaningful even when the raw times are not.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Timing:
    """Seconds of the timed runs of one case (warm-up excluded)."""

    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """Median of the samples, in seconds."""
        return statistics.median(self.samples)

    def as_dict(self) -> dict:
        """JSON form: the median and every sample, rounded to microseconds."""
        return {"median": round(self.median, 6), "samples": [round(s, 6) for s in self.samples]}


def synchronise(device: str) -> None:
    """Wait for queued GPU work, so a timer stops when the work is done."""
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elif device == "mps":
        torch.mps.synchronize()


def time_once(run: Callable[[], object], device: str) -> float:
    """Seconds one call of ``run`` takes (its result is dropped before returning)."""
    gc.collect()
    synchronise(device)
    started = time.perf_counter()
    result = run()
    synchronise(device)
    elapsed = time.perf_counter() - started
    del result
    return elapsed


def interleaved(
    cases: dict[str, Callable[[], object]], repeats: int, device: str, warmup: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Timing]:
    """Time every case ``repeats`` times after ``warmup`` rounds, one case after another per round.

    Args:
        cases: Name -> callable, run in dict order in even rounds and reversed in odd ones.
        repeats: Timed rounds (the median is over these).
        device: Device of the work, for synchronisation.
        warmup: Untimed rounds first.
        progress: Called with a short line after each round.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    samples: dict[str, list[float]] = {name: [] for name in cases}
    order = list(cases.items())
    for round_index in range(warmup + repeats):
        for name, run in order if round_index % 2 == 0 else order[::-1]:
            elapsed = time_once(run, device)
            if round_index >= warmup:
                samples[name].append(elapsed)
        if progress is not None:
            label = "warm-up" if round_index < warmup else f"round {round_index - warmup + 1}/{repeats}"
            progress(label)
    return {name: Timing(tuple(values)) for name, values in samples.items()}
