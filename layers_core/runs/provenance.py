"""What produced a run: package versions, Python, platform, git commit, start time.

Deliberately never reads environment variables: the Hugging Face token lives
there and must not reach an artefact.
"""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Sequence
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

TRACKED_PACKAGES = ("torch", "transformers", "transformer_lens", "huggingface_hub", "numpy", "pandas")
NOT_INSTALLED = "not installed"
_GIT_TIMEOUT_S = 10


def package_versions(packages: Sequence[str] = TRACKED_PACKAGES) -> dict[str, str]:
    """Installed version of each package, or "not installed"."""
    versions = {}
    for name in packages:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = NOT_INSTALLED
    return versions


def _git(repo_root: Path, *args: str) -> str | None:
    """stdout of a git command in ``repo_root``, or None when git or the repository is unavailable."""
    try:
        result = subprocess.run(
            ["git", "-C", str(repo_root), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        # No git binary, not a repository, or an unsafe-ownership refusal: provenance just says null.
        return None
    return result.stdout.strip()


def git_commit(repo_root: Path) -> str | None:
    """The checked-out commit's full hash, or None outside a git repository."""
    return _git(repo_root, "rev-parse", "--verify", "HEAD") or None


def git_dirty(repo_root: Path) -> bool | None:
    """True when tracked files differ from the commit (untracked files ignored); None outside git."""
    status = _git(repo_root, "status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def utc_now_iso() -> str:
    """Current UTC time to the second, e.g. ``2026-11-21T07:00:00Z``."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_provenance(
    repo_root: Path, argv: Sequence[str] = (), started_at: str | None = None
) -> dict[str, Any]:
    """The provenance block every 001 artefact carries (device and timing fields are added by the run).

    Args:
        repo_root: the tinycave checkout, for the git commit.
        argv: the command-line arguments the run was given.
        started_at: ISO UTC start time; now when None.

    Returns:
        ``packages``, ``python``, ``platform``, ``git_commit``, ``git_dirty``,
        ``started_at`` and ``argv``; no environment variables.
    """
    return {
        "packages": package_versions(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "git_commit": git_commit(repo_root),
        "git_dirty": git_dirty(repo_root),
        "started_at": started_at or utc_now_iso(),
        "argv": list(argv),
    }
