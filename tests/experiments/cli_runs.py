"""Running an experiment's ``run.py`` as the user does: a subprocess, its exit code, stderr and run folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# CSV floats are written with 6 decimals (layers_core.runs.artefacts.FLOAT_FORMAT): off by up to half of 1e-6.
CSV_ROUNDING = 0.5e-6


def run_script(script: Path, *args: str, cwd: Path = ROOT, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``script`` with ``args`` in a fresh interpreter and capture its output."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, env=os.environ.copy(),
    )


def load_json(run_dir: Path, name: str) -> dict:
    """A model's ``output-<name>.json`` from a run folder."""
    return json.loads((run_dir / f"output-{name}.json").read_text(encoding="utf-8"))


def interruptible() -> None:
    """``preexec_fn`` for a child that a test interrupts: Ctrl-C's default action, whatever the test inherited.

    A shell starts its background jobs with SIGINT ignored, and a Python started that way
    never raises KeyboardInterrupt; a test run in the background would then test nothing.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)
