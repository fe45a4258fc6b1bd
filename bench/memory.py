"""Peak memory that a piece of work allocates above what was already live.

- cpu: torch's own allocation trace (``torch.profiler`` with ``profile_memory``):
  every allocation and free of a CPU tensor, in order, so the peak of their
  running sum is exactly the most tensor memory the work held at once. It does
  not see memory outside tensors (Python objects, MKL/oneDNN scratch buffers,
  allocator slack), and process RSS cannot stand in for it: glibc keeps freed
  blocks, so RSS after a warm-up hardly moves.
- cuda: ``torch.cuda.max_memory_allocated`` above the allocation at the start.
- mps: ``torch.mps.current_allocated_memory`` sampled every millisecond from a
  thread: a lower bound, since a peak shorter than a millisecond can be missed.
The profiler slows the work down, so peaks are measured in separate, untimed runs.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator

import torch
from torch import nn
from torch._C._autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

METHODS = {
    "cpu": "torch.profiler allocation trace: peak of live CPU tensor bytes above the start",
    "cuda": "torch.cuda.max_memory_allocated above the start",
    "mps": "torch.mps.current_allocated_memory sampled every 1 ms (lower bound)",
}


def weights_bytes(model: nn.Module) -> int:
    """Bytes of the model's parameters and buffers, each storage counted once (tied weights once)."""
    seen: dict[int, int] = {}
    for tensor in [*model.parameters(), *model.buffers()]:
        storage = tensor.untyped_storage()
        seen[storage.data_ptr()] = storage.nbytes()
    return sum(seen.values())


def peak_bytes(run: Callable[[], object], device: str) -> int:
    """Most bytes ``run`` holds at once above what was allocated when it started.

    Args:
        run: The work; its result is dropped inside the measurement.
        device: "cpu", "cuda..." or "mps" (see the module docstring for each method).
    """
    if device.startswith("cuda"):
        return _peak_cuda(run)
    if device == "mps":
        return _peak_mps(run)
    return _peak_cpu(run)


@contextlib.contextmanager
def _without_kineto_notices() -> Iterator[None]:
    """Drop the ``USDT: ... profiler_start/stop`` lines kineto's C++ side writes to stderr.

    torch 2.13 prints two per profile, with no switch to turn them off. stderr
    is captured at the file-descriptor level and every other line is passed on.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            kept = [line for line in captured.read().splitlines(keepends=True) if not line.startswith(b"USDT:")]
            if kept:
                os.write(2, b"".join(kept))


def _peak_cpu(run: Callable[[], object]) -> int:
    with _without_kineto_notices(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        result = run()
        del result
    # The kineto result keeps each allocation (+bytes) and free (-bytes) with its start time.
    events = [
        e for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.device_type() == DeviceType.CPU
    ]
    events.sort(key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return peak


def _peak_cuda(run: Callable[[], object]) -> int:
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    start = torch.cuda.memory_allocated()
    result = run()
    del result
    torch.cuda.synchronize()
    return max(0, torch.cuda.max_memory_allocated() - start)


def _peak_mps(run: Callable[[], object]) -> int:
    torch.mps.synchronize()
    start = torch.mps.current_allocated_memory()
    peak = [start]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], torch.mps.current_allocated_memory())
            time.sleep(0.001)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run()
        del result
        torch.mps.synchronize()
    finally:
        done.set()
        sampler.join()
    return max(0, max(peak[0], torch.mps.current_allocated_memory()) - start)


def memory_peaks(model: nn.Module, device: str, runs: dict[str, Callable[[], object]]) -> dict:
    """The model's weight bytes, ``<name>_peak_bytes`` of each run (untimed, ``peak_bytes``) and the method used."""
    return {
        "weights_bytes": weights_bytes(model),
        **{f"{name}_peak_bytes": peak_bytes(run, device) for name, run in runs.items()},
        "method": METHODS["cpu" if device == "cpu" else device.split(":")[0]],
    }
