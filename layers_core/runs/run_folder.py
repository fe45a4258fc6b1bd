"""Write a run's results into a hidden folder; publish it as run-latest only when the run finishes.

A crash or Ctrl-C half-way leaves the previous run-latest exactly as it was,
and a finished run keeps the previous results under ``run-<its time>``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

TEMP_PREFIX = ".run-tmp-"
LATEST = "run-latest"  # the folder a finished run is published as
_STAMP = "%Y%m%d-%H%M%S"


def _utc_stamp(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime(_STAMP)


def _new_temp_folder(parent: Path) -> Path:
    base = f"{TEMP_PREFIX}{_utc_stamp(datetime.now(timezone.utc))}-{os.getpid()}"
    for attempt in range(1, 1000):
        candidate = parent / (base if attempt == 1 else f"{base}-{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise FileExistsError(f"could not create a fresh temporary folder {base} in {parent}")


def archive_name(folder: Path) -> Path:
    """Where an earlier run folder goes: ``run-<its mtime, UTC, YYYYmmdd-HHMMSS>`` beside it.

    The folder's own modification time is when its last file was written, i.e. when
    that run finished. ``-2``, ``-3``, ... are added when that name is taken.
    """
    stamp = _utc_stamp(datetime.fromtimestamp(folder.stat().st_mtime, tz=timezone.utc))
    candidate = folder.parent / f"run-{stamp}"
    suffix = 2
    while candidate.exists() or candidate.is_symlink():
        candidate = folder.parent / f"run-{stamp}-{suffix}"
        suffix += 1
    return candidate


@contextmanager
def staged_run_folder(parent: Path, name: str = LATEST) -> Iterator[Path]:
    """Yield a fresh hidden folder in ``parent``; on success it becomes ``parent/name``.

    On normal exit an existing ``parent/name`` is first renamed to ``run-<its time>``
    (see ``archive_name``), then the staged folder is renamed to ``parent/name``.
    On any exception, KeyboardInterrupt included, the staged folder is deleted and
    the exception re-raised; nothing else in ``parent`` is touched.

    Args:
        parent: the experiment folder that holds run-latest and older runs (created if missing).
        name: the published folder's name.
    """
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    staging = _new_temp_folder(parent)
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _publish(staging, parent / name)


def _publish(staging: Path, target: Path) -> None:
    """Move ``target`` aside (if present), then ``staging`` into its place."""
    archived = None
    if target.exists() or target.is_symlink():
        archived = archive_name(target)
        target.rename(archived)
    try:
        staging.rename(target)
    except OSError:
        # Put the earlier results back where they were; the new ones stay in `staging`.
        if archived is not None and not target.exists():
            archived.rename(target)
        raise
