"""What a first ``001 --lens tuned`` costs: fitting the linear shortcut and the tuned lens, time and peak memory.

- seconds: ``fitted_lenses(loaded, "tuned")`` with ``TINYCAVE_CACHE`` pointing at an
  empty folder, so both lenses are fitted exactly as a first run fits them (corpus
  windows, residual extraction, the fits, the safetensors files), each timed once: a
  fit takes minutes, and repeating it would not change what the user waits for.
- peak: the most tensor memory one fit holds at once (``bench.memory.peak_bytes``),
  measured in another empty folder on the same plan with the tuned lens cut to two
  steps. Every step works on a batch of the same size over positions drawn once, so
  the number of steps changes the time, not the peak; the profiler that measures the
  peak would slow a full fit several times over.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

from bench import memory
from bench.loads import cache_folder
from layers_core.lens.fitted_lens import FIT_PLAN, FitPlan, fitted_lenses
from layers_core.models.loading import LoadedModel

PEAK_STEPS = 2


def _peak_plan(plan: FitPlan) -> FitPlan:
    """``plan`` with the tuned lens cut to ``PEAK_STEPS`` steps (same positions, batch and windows)."""
    return dataclasses.replace(
        plan,
        small_head=dataclasses.replace(plan.small_head, steps=PEAK_STEPS),
        large_head=dataclasses.replace(plan.large_head, steps=PEAK_STEPS),
    )


def measure_lens_fit(loaded: LoadedModel, device: str, skip_memory: bool, plan: FitPlan = FIT_PLAN) -> dict:
    """Fit both lenses from an empty cache; seconds of each, the recipe, and the fit's peak bytes."""
    with tempfile.TemporaryDirectory(prefix="tinycave-bench-lens-") as folder, cache_folder(Path(folder)):
        found = fitted_lenses(loaded, "tuned", plan=plan)
    linear, tuned = found["linear"], found["tuned"]
    result = {
        "linear_seconds": round(linear.seconds, 2),
        "tuned_seconds": round(tuned.seconds, 2),
        "seconds": round(linear.seconds + tuned.seconds, 2),
        "tuned_recipe": dataclasses.asdict(plan.tuned_recipe(loaded.parts)),
        "linear_windows": plan.linear_windows,
        "tuned_windows": plan.tuned_window_count(loaded.parts),
        "window": plan.window,
        "peak_bytes": None,
        "peak_steps": PEAK_STEPS,
    }
    if not skip_memory:
        peak_plan = _peak_plan(plan)

        def fit_from_empty() -> None:
            with tempfile.TemporaryDirectory(prefix="tinycave-bench-lens-") as empty, cache_folder(Path(empty)):
                fitted_lenses(loaded, "tuned", plan=peak_plan)

        result["peak_bytes"] = memory.peak_bytes(fit_from_empty, device)
    return result
