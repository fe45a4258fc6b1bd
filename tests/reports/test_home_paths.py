"""``~`` for the home folder in pasted text: whole paths only, every spelling of the folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from layers_core.reports.home_paths import tilde_home


@pytest.mark.parametrize(("text", "shown"), [
    ("/home/ann/.cache/x", "~/.cache/x"),
    ('"cache": "/home/ann"', '"cache": "~"'),
    ("argv: /home/ann/m.gguf /home/ann/n.gguf", "argv: ~/m.gguf ~/n.gguf"),
    ("/home/anna/x", "/home/anna/x"),
    ("/home/ann.bak/x", "/home/ann.bak/x"),
    ("/mnt/home/ann/x", "/mnt/home/ann/x"),
    ("no path here", "no path here"),
])
def test_whole_home_paths_become_tilde(text: str, shown: str) -> None:
    assert tilde_home(text, Path("/home/ann")) == shown


def test_home_comes_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert tilde_home(f"{tmp_path}/models/x.gguf") == "~/models/x.gguf"


def test_a_symlinked_home_is_caught_in_both_spellings(tmp_path: Path) -> None:
    real = tmp_path / "disk" / "ann"
    real.mkdir(parents=True)
    link = tmp_path / "ann"
    link.symlink_to(real)
    assert tilde_home(f"{link}/a {real}/b", link) == "~/a ~/b"


def test_a_root_home_changes_nothing() -> None:
    assert tilde_home("/usr/lib/x", Path("/")) == "/usr/lib/x"
