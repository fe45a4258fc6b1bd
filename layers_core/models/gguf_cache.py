"""A disk cache of dequantized GGUF models, stored as safetensors checkpoints.

Dequantizing a GGUF file through transformers is slow (14.5 s for SmolLM2, 36 s
for Gemma-3-270M on 2 cores); reloading the same weights saved as safetensors
takes 2.7 s and 4.7 s. An entry lives in
``<cache root>/gguf/<sha256 of the GGUF file>/<dtype>/`` and holds what
``save_pretrained`` writes for the model and the tokenizer, plus
``manifest.json``, which is written last, inside a temporary folder that is then
renamed into place, so a half-written entry is never visible under its name.

An entry is trusted only when its manifest parses, every file it lists has its
recorded size, and every safetensors header accounts for its file's length.
That check is cheap (no re-hash of hundreds of MB on every load) and catches
what interruption and disk trouble produce: missing files, truncation, a broken
manifest. ``entry_problem(full=True)`` also re-checks each file's sha256.

The cache root is ``$TINYCAVE_CACHE`` when set, else the platform's user cache
folder (``~/Library/Caches/tinycave`` on macOS, ``$XDG_CACHE_HOME/tinycave`` or
``~/.cache/tinycave`` elsewhere, ``%LOCALAPPDATA%\\tinycave`` on Windows).

Hash memo: hashing a 2 GB GGUF file takes seconds, so each file's sha256 is
remembered in ``gguf/sha256-memo.json`` under its absolute path together with
its size, mtime (ns) and inode, and re-used while all three are unchanged. A
file rewritten in place with the same size whose mtime was then set back would
be missed; nothing a user does by accident does that.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from pathlib import Path
from typing import Any

CACHE_ENV = "TINYCAVE_CACHE"
CACHE_FORMAT = 1
MANIFEST = "manifest.json"
_CHUNK = 4 * 2**20
_STALE_TEMP_SECONDS = 24 * 3600
# Every dtype an entry may be stored in, most precise first.
ENTRY_DTYPES = ("float32", "bfloat16", "float16")


def cache_root() -> Path:
    """The tinycave user cache folder (not created here)."""
    override = os.environ.get(CACHE_ENV)
    if override:
        return Path(override).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "tinycave"
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "tinycave"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "tinycave"


def gguf_cache_dir() -> Path:
    """Folder holding one sub-folder per GGUF file (by sha256)."""
    return cache_root() / "gguf"


def sha256_of(path: Path) -> str:
    """sha256 of a file, read in chunks so a large file never sits in memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def file_sha256(path: Path) -> str:
    """sha256 of ``path``, re-used from the memo while size, mtime and inode are unchanged."""
    path = Path(os.path.abspath(path))
    stat = path.stat()
    fingerprint = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "inode": stat.st_ino}
    memo_path = gguf_cache_dir() / "sha256-memo.json"
    memo = _read_json(memo_path) or {}
    known = memo.get(str(path))
    if isinstance(known, dict) and all(known.get(k) == v for k, v in fingerprint.items()):
        return str(known["sha256"])
    digest = sha256_of(path)
    memo = {p: v for p, v in memo.items() if os.path.exists(p)}  # forget files that are gone
    memo[str(path)] = {**fingerprint, "sha256": digest}
    try:
        _write_json_atomic(memo_path, memo)
    except OSError:
        pass  # the memo only saves time; a read-only cache must not stop the load
    return digest


def entry_dir(sha256: str, dtype: str) -> Path:
    """Where the entry for a GGUF file (by sha256) stored in ``dtype`` lives."""
    return gguf_cache_dir() / sha256 / dtype


def find_entry(sha256: str, dtype: str) -> tuple[Path | None, list[str]]:
    """A verified entry usable for ``dtype``: stored in ``dtype``, else in float32 (cast on load).

    Damaged entries met on the way are deleted so the caller rebuilds them.

    Returns:
        The entry folder or None, and one line per damaged entry discarded.
    """
    discarded: list[str] = []
    for candidate in dict.fromkeys((dtype, "float32")):
        folder = entry_dir(sha256, candidate)
        if not folder.exists():
            continue
        problem = entry_problem(folder)
        if problem is None:
            return folder, discarded
        discarded.append(f"{folder}: {problem}")
        shutil.rmtree(folder, ignore_errors=True)
    return None, discarded


def any_entry(sha256: str) -> Path | None:
    """Any verified entry of the GGUF file, whatever its dtype (for reading its config)."""
    for dtype in ENTRY_DTYPES:
        folder = entry_dir(sha256, dtype)
        if folder.exists() and entry_problem(folder) is None:
            return folder
    return None


def entry_problem(folder: Path, *, full: bool = False) -> str | None:
    """Why the entry in ``folder`` cannot be trusted, or None when it verifies.

    Args:
        folder: An entry folder.
        full: Also compare each file's sha256 with the manifest (slow: reads every byte).
    """
    manifest = _read_json(folder / MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != CACHE_FORMAT:
        return "manifest missing, unreadable or of another format"
    files = manifest.get("files")
    if not isinstance(files, dict) or "config.json" not in files:
        return "manifest lists no files"
    if not any(name.endswith(".safetensors") for name in files):
        return "manifest lists no safetensors weights"
    for name, recorded in files.items():
        problem = _file_problem(folder / name, recorded, full)
        if problem:
            return f"{name}: {problem}"
    return None


def _file_problem(path: Path, recorded: Any, full: bool) -> str | None:
    if not isinstance(recorded, dict) or not path.is_file():
        return "missing"
    size = path.stat().st_size
    if size != recorded.get("size"):
        return f"{size} bytes, manifest says {recorded.get('size')}"
    if path.suffix == ".safetensors":
        problem = safetensors_problem(path)
        if problem:
            return problem
    if full and sha256_of(path) != recorded.get("sha256"):
        return "sha256 differs from the manifest"
    return None


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a complete safetensors file, judged from its header alone."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        prefix = handle.read(8)
        if len(prefix) < 8:
            return "truncated before its header"
        header_len = int.from_bytes(prefix, "little")
        if header_len > size - 8:
            return "header longer than the file"
        try:
            header = json.loads(handle.read(header_len))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "header is not valid JSON"
    try:
        data_end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    except (AttributeError, KeyError, IndexError, TypeError):
        return "header has no valid tensor offsets"
    expected = 8 + header_len + data_end
    return None if expected == size else f"{size} bytes, its header accounts for {expected}"


def write_entry(sha256: str, source: Path, model: Any, tokenizer: Any, dtype: str) -> Path:
    """Save ``model`` and ``tokenizer`` as the entry for (sha256, dtype); return its folder.

    The model must already be savable (no GGUF quantizer attached). Files go to a
    temporary sibling folder, the manifest last, and the folder is then renamed
    into place. If a valid entry appeared meanwhile (another process), it is kept.
    """
    final = entry_dir(sha256, dtype)
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(final.parent)
    temp = final.parent / f".tmp-{dtype}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        model.save_pretrained(temp)
        tokenizer.save_pretrained(temp)
        files = {
            p.name: {"size": p.stat().st_size, "sha256": sha256_of(p)} for p in sorted(temp.iterdir()) if p.is_file()
        }
        manifest = {
            "format": CACHE_FORMAT,
            "source_sha256": sha256,
            "source_name": source.name,
            "source_size": source.stat().st_size,
            "dtype": dtype,
            "transformers_version": _transformers_version(),
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "files": files,
        }
        _write_json_atomic(temp / MANIFEST, manifest)
        _publish(temp, final)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return final


def _publish(temp: Path, final: Path) -> None:
    """Rename ``temp`` to ``final``, replacing a damaged ``final`` but keeping a valid one."""
    try:
        os.rename(temp, final)
        return
    except OSError:
        if final.exists() and entry_problem(final) is None:
            return  # another process published a good entry first
    trash = final.parent / f".trash-{uuid.uuid4().hex[:8]}"
    os.rename(final, trash)
    os.rename(temp, final)
    shutil.rmtree(trash, ignore_errors=True)


def _remove_stale_temps(parent: Path) -> None:
    """Delete temporary folders left by runs killed more than a day ago."""
    cutoff = time.time() - _STALE_TEMP_SECONDS
    for leftover in parent.glob(".t*-*"):
        if leftover.name.startswith((".tmp-", ".trash-")) and leftover.stat().st_mtime < cutoff:
            shutil.rmtree(leftover, ignore_errors=True)


def _transformers_version() -> str:
    import transformers

    return transformers.__version__


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None


def _write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
    temp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(temp, path)
