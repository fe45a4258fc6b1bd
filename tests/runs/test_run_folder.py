"""Staged run folders: results appear only when a run finishes; earlier ones are never lost."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path

import pytest

from layers_core.runs.run_folder import TEMP_PREFIX, staged_run_folder

# 2026-11-21 07:00:05 UTC, as a POSIX timestamp.
EARLIER = datetime(2026, 11, 21, 7, 0, 5, tzinfo=timezone.utc).timestamp()
EARLIER_NAME = "run-20261121-070005"


def make_previous_run(parent: Path, text: str = "old") -> Path:
    previous = parent / "run-latest"
    previous.mkdir(parents=True)
    (previous / "output.json").write_text(text)
    os.utime(previous, (EARLIER, EARLIER))
    return previous


def listing(parent: Path) -> dict[str, str]:
    """Every file under parent, relative path -> contents."""
    return {str(p.relative_to(parent)): p.read_text() for p in sorted(parent.rglob("*")) if p.is_file()}


def test_first_run_becomes_run_latest(tmp_path):
    parent = tmp_path / "001"
    with staged_run_folder(parent) as folder:
        assert folder.parent == parent
        assert folder.name.startswith(TEMP_PREFIX)
        assert not (parent / "run-latest").exists()  # nothing published while the run is going
        (folder / "output.json").write_text("new")
    assert listing(parent) == {"run-latest/output.json": "new"}


def test_previous_run_is_kept_under_its_own_time(tmp_path):
    make_previous_run(tmp_path)
    with staged_run_folder(tmp_path) as folder:
        (folder / "output.json").write_text("new")
    assert listing(tmp_path) == {
        f"{EARLIER_NAME}/output.json": "old",
        "run-latest/output.json": "new",
    }


def test_name_collision_gets_a_number(tmp_path):
    (tmp_path / EARLIER_NAME).mkdir()
    (tmp_path / f"{EARLIER_NAME}-2").mkdir()
    make_previous_run(tmp_path)
    with staged_run_folder(tmp_path) as folder:
        (folder / "output.json").write_text("new")
    assert (tmp_path / f"{EARLIER_NAME}-3" / "output.json").read_text() == "old"
    assert (tmp_path / "run-latest" / "output.json").read_text() == "new"


@pytest.mark.parametrize("error", [RuntimeError("model failed"), KeyboardInterrupt()])
def test_failure_leaves_earlier_results_exactly_as_they_were(tmp_path, error):
    make_previous_run(tmp_path)
    before = listing(tmp_path)
    mtime_before = (tmp_path / "run-latest").stat().st_mtime
    with pytest.raises(type(error)):
        with staged_run_folder(tmp_path) as folder:
            (folder / "output.json").write_text("half-written")
            raise error
    assert listing(tmp_path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run-latest"]  # no staging folder left
    assert (tmp_path / "run-latest").stat().st_mtime == mtime_before


def test_custom_name_and_two_runs_in_a_row(tmp_path):
    for text in ("first", "second"):
        with staged_run_folder(tmp_path, name="latest") as folder:
            (folder / "out.txt").write_text(text)
    files = listing(tmp_path)
    assert files.pop("latest/out.txt") == "second"
    assert list(files.values()) == ["first"]
    assert next(iter(files)).startswith("run-")
