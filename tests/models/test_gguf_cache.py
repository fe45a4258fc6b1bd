"""gguf_cache: entries are written atomically, verified cheaply, and never trusted when damaged.

Entries here hold a tiny random Llama (tests/tiny_models.py): the cache stores any
savable model, so the damage cases need no slow GGUF dequantization. The
end-to-end rebuild from a real GGUF file is in test_loading.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

import pytest
import torch

from layers_core.models import gguf_cache
from tests.tiny_models import build_model, build_tokenizer

SHA = "ab" * 32


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """A private, empty cache root for one test."""
    monkeypatch.setenv(gguf_cache.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def source(tmp_path) -> Path:
    path = tmp_path / "model.gguf"
    path.write_bytes(b"GGUF" + bytes(range(256)) * 64)
    return path


def _write(source: Path, dtype: str = "float32") -> Path:
    return gguf_cache.write_entry(SHA, source, build_model("llama"), build_tokenizer(), dtype)


def test_cache_root_follows_env_then_platform(monkeypatch, tmp_path):
    monkeypatch.setenv("TINYCAVE_CACHE", str(tmp_path / "x"))
    assert gguf_cache.cache_root() == tmp_path / "x"
    monkeypatch.delenv("TINYCAVE_CACHE")
    monkeypatch.setattr(sys, "platform", "darwin")
    assert gguf_cache.cache_root() == Path.home() / "Library" / "Caches" / "tinycave"
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert gguf_cache.cache_root() == tmp_path / "xdg" / "tinycave"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert gguf_cache.cache_root() == Path.home() / ".cache" / "tinycave"


def test_sha256_matches_hashlib_and_memo_is_reused_until_file_changes(cache, source):
    expected = hashlib.sha256(source.read_bytes()).hexdigest()
    assert gguf_cache.file_sha256(source) == expected
    memo_path = cache / "gguf" / "sha256-memo.json"
    memo = json.loads(memo_path.read_text())
    assert memo[str(source)]["sha256"] == expected
    # Prove the memo is what answers: a planted value comes back while the file is unchanged...
    memo[str(source)]["sha256"] = "planted"
    memo_path.write_text(json.dumps(memo))
    assert gguf_cache.file_sha256(source) == "planted"
    # ...and is dropped once the file's mtime moves.
    later = time.time() + 5
    os.utime(source, (later, later))
    assert gguf_cache.file_sha256(source) == expected


def test_written_entry_verifies_and_records_sizes_and_hashes(cache, source):
    folder = _write(source)
    assert folder == cache / "gguf" / SHA / "float32"
    assert gguf_cache.entry_problem(folder) is None
    assert gguf_cache.entry_problem(folder, full=True) is None
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["source_sha256"] == SHA and manifest["dtype"] == "float32"
    assert manifest["source_size"] == source.stat().st_size
    for name, recorded in manifest["files"].items():
        data = (folder / name).read_bytes()
        assert recorded == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(manifest["files"])
    assert [p.name for p in folder.parent.iterdir()] == ["float32"]  # no temporary folder left


def test_rewriting_keeps_a_valid_entry(cache, source):
    first = _write(source)
    stamp = (first / "manifest.json").read_text()
    assert _write(source) == first
    assert (first / "manifest.json").read_text() == stamp
    assert [p.name for p in first.parent.iterdir()] == ["float32"]


def _truncate(folder: Path) -> None:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])


def _truncate_and_fix_manifest(folder: Path) -> None:
    # Sizes alone would now agree; only the safetensors header shows the data is short.
    _truncate(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["model.safetensors"]["size"] -= 100
    (folder / "manifest.json").write_text(json.dumps(manifest))


DAMAGES = {
    "missing weights": lambda f: (f / "model.safetensors").unlink(),
    "missing config": lambda f: (f / "config.json").unlink(),
    "truncated weights": _truncate,
    "truncated weights, manifest agrees": _truncate_and_fix_manifest,
    "manifest not json": lambda f: (f / "manifest.json").write_text("{not json"),
    "manifest missing": lambda f: (f / "manifest.json").unlink(),
    "manifest of another format": lambda f: (f / "manifest.json").write_text('{"format": 999, "files": {}}'),
    "garbage weights": lambda f: (f / "model.safetensors").write_bytes(b"\xff" * 8 + b"x" * 50),
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_entry_is_reported_and_removed(cache, source, damage):
    folder = _write(source)
    DAMAGES[damage](folder)
    assert gguf_cache.entry_problem(folder) is not None
    found, discarded = gguf_cache.find_entry(SHA, "float32")
    assert found is None
    assert len(discarded) == 1 and str(folder) in discarded[0]
    assert not folder.exists()


def test_bit_flip_needs_the_full_check(cache, source):
    folder = _write(source)
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-10] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert gguf_cache.entry_problem(folder) is None  # same size, valid header: the cheap check passes
    assert "sha256" in gguf_cache.entry_problem(folder, full=True)


def test_float32_entry_serves_lower_precision_but_not_the_reverse(cache, source):
    _write(source, "float16")
    assert gguf_cache.find_entry(SHA, "float32") == (None, [])
    assert gguf_cache.find_entry(SHA, "float16")[0] == cache / "gguf" / SHA / "float16"
    _write(source, "float32")
    assert gguf_cache.find_entry(SHA, "bfloat16")[0] == cache / "gguf" / SHA / "float32"
    assert gguf_cache.any_entry(SHA) == cache / "gguf" / SHA / "float32"


def test_entry_reloads_to_identical_logits(cache, source):
    from transformers import AutoModelForCausalLM

    model = build_model("llama")
    folder = gguf_cache.write_entry(SHA, source, model, build_tokenizer(), "float32")
    reloaded = AutoModelForCausalLM.from_pretrained(str(folder), use_safetensors=True).eval()
    saved = model.state_dict()
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, saved[name]), name  # bit for bit: no kernel involved
    # Bit-identical logits need the same kernels on the same memory alignment too: mmapped
    # safetensors sit at file offsets, and MKL's products depend on alignment (see
    # loading._own_aligned_memory, which load_model applies for the same reason).
    with torch.no_grad():
        for param in reloaded.parameters():
            param.data = param.data.clone()
    ids = torch.tensor([[1, 5, 9, 42, 7]])
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reloaded(ids).logits)


def test_stale_temporary_folders_are_cleaned(cache, source):
    parent = cache / "gguf" / SHA
    stale = parent / ".tmp-float32-1-deadbeef"
    fresh = parent / ".tmp-float32-2-cafecafe"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
    old = time.time() - 2 * 24 * 3600
    os.utime(stale, (old, old))
    _write(source)
    assert not stale.exists()
    assert fresh.exists()  # may belong to a run still writing


def test_safetensors_problem_on_real_and_broken_files(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "t.safetensors"
    save_file({"a": torch.zeros(3, 4), "b": torch.ones(2)}, str(path))
    assert gguf_cache.safetensors_problem(path) is None
    path.write_bytes(path.read_bytes() + b"extra")
    assert "accounts for" in gguf_cache.safetensors_problem(path)
    path.write_bytes(b"abc")
    assert "truncated" in gguf_cache.safetensors_problem(path)
