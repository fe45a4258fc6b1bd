"""Progress reports of the long loops that fit and evaluate lenses.

A loop calls ``progress(stage, done, total)`` after each unit of work (a batch of
windows, an optimiser step). ``stderr_progress()`` turns those calls into one tqdm
bar per stage on stderr; tests and quiet callers pass ``None`` and nothing is shown.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]


def report(progress: Progress | None, stage: str, done: int, total: int) -> None:
    """Call ``progress`` when there is one."""
    if progress is not None:
        progress(stage, done, total)


def stderr_progress() -> Progress:
    """A ``Progress`` that draws one tqdm bar per stage on stderr, closing it when the stage completes."""
    from tqdm import tqdm

    bars: dict[str, tqdm] = {}

    def update(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, leave=True, dynamic_ncols=True)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            del bars[stage]

    return update
