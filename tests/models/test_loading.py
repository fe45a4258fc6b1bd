"""load_model on real models: the bundled SmolLM2 (alias, GGUF path, cache), tiny checkpoints of
every family, the bridge, and every bad input's one-line error."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import weakref
from pathlib import Path

import pytest
import torch

from layers_core.errors import (
    GatedModelError,
    InvalidModelFileError,
    ModelNotFoundError,
    UnsupportedArchitectureError,
)
from layers_core.models.architecture import model_parts
from layers_core.models.bundled import bundled_gguf_path
from layers_core.models.gguf_cache import entry_problem, gguf_cache_dir, sha256_of
from layers_core.models.loading import check_bridge_support, explain_hub_error, free_model, load_model, read_config
from layers_core.models.model_spec import parse_model_spec
from tests.tiny_models import FAMILIES, build_model, build_tokenizer
from tests.tolerances import fp32_tol, max_abs

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "The capital of Germany is"
TOKEN = "hf_SENTINELtokenNEVERprinted0123456789"
CPU = {"device": "cpu", "dtype": "float32"}
TINY_IDS = torch.tensor([[1, 5, 9, 42, 7, 100, 3]])


def _forward_noise(model, logits: torch.Tensor) -> float:
    """How far two fp32 forward passes of the same weights may differ when their kernels differ
    (eager against sdpa attention): each of the L+1 stages re-rounds d_model-term sums in
    another order, at the scale of the logits. Bit-identical reruns are compared exactly instead."""
    config = model.config
    return fp32_tol(max_abs(logits), n_terms=config.hidden_size * (config.num_hidden_layers + 1))


def _logits(loaded, text: str = PROMPT) -> torch.Tensor:
    ids = loaded.tokenizer(text, return_tensors="pt").input_ids
    with torch.no_grad():
        return loaded.model(ids).logits


# --- the bundled SmolLM2 -------------------------------------------------------------------------


@pytest.mark.slow
def test_smollm2_by_alias(smollm2):
    assert smollm2.spec.kind == "bundled" and smollm2.spec.name == "smollm2-135m"
    assert smollm2.source["cache"] in ("hit", "built")
    assert smollm2.source["gguf_sha256"] == sha256_of(bundled_gguf_path("smollm2-135m"))
    assert (smollm2.plan.device, smollm2.plan.dtype) == ("cpu", "float32")
    assert next(smollm2.model.parameters()).dtype == torch.float32
    assert not smollm2.model.training
    assert smollm2.model.config.architectures == ["LlamaForCausalLM"]
    assert smollm2.tokenizer.decode(_logits(smollm2)[0, -1].argmax()) == " Berlin"


@pytest.mark.slow
def test_smollm2_by_gguf_path_hits_the_cache(smollm2):
    path = bundled_gguf_path("smollm2-135m")
    loaded = load_model(str(path), **CPU)
    assert (loaded.spec.kind, loaded.spec.name) == ("gguf", "SmolLM2-135M-Instruct.Q4_1")
    assert loaded.source["cache"] == "hit"
    assert loaded.source["cache_entry"] == smollm2.source["cache_entry"]
    assert torch.equal(_logits(loaded), _logits(smollm2))
    assert loaded.tokenizer.chat_template == smollm2.tokenizer.chat_template
    free_model(loaded)


@pytest.mark.slow
def test_smollm2_alias_again_hits_the_cache(smollm2):
    loaded = load_model("smollm2-135m", **CPU)
    assert loaded.source["cache"] == "hit"
    assert torch.equal(_logits(loaded), _logits(smollm2))
    assert read_config(parse_model_spec("smollm2-135m")).num_hidden_layers == 30
    free_model(loaded)


@pytest.mark.slow
def test_damaged_entry_is_rebuilt_identically_and_no_token_is_written(smollm2, tmp_path, monkeypatch, capfd):
    entry = Path(smollm2.source["cache_entry"])
    private = tmp_path / "cache"
    copy = private / "gguf" / entry.relative_to(gguf_cache_dir())
    shutil.copytree(entry, copy)
    weights = copy / "model.safetensors"
    with open(weights, "r+b") as handle:
        handle.truncate(weights.stat().st_size // 2)
    monkeypatch.setenv("TINYCAVE_CACHE", str(private))
    monkeypatch.setenv("HF_TOKEN", TOKEN)

    rebuilt = load_model("smollm2-135m", **CPU)
    assert rebuilt.source["cache"] == "built"
    assert "model.safetensors" in rebuilt.source["cache_discarded"][0]
    assert rebuilt.source["cache_entry"] == str(copy)
    assert entry_problem(copy, full=True) is None
    assert torch.equal(_logits(rebuilt), _logits(smollm2))  # dequantized in memory == reloaded from cache
    again = load_model("smollm2-135m", **CPU)
    assert again.source["cache"] == "hit"
    assert torch.equal(_logits(again), _logits(rebuilt))
    # The last position alone is a single-row product, whose result depends on memory alignment.
    ids = rebuilt.tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(again.model(ids, logits_to_keep=1).logits, rebuilt.model(ids, logits_to_keep=1).logits)
    for loaded in (rebuilt, again):
        assert all(p.data_ptr() % 64 == 0 for p in loaded.model.parameters())
        assert loaded.model.lm_head.weight is loaded.model.model.embed_tokens.weight  # still tied

    printed = capfd.readouterr()
    assert "damaged cache entry" in printed.err
    assert TOKEN not in printed.out + printed.err
    for path in private.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    free_model(rebuilt)
    free_model(again)


@pytest.mark.slow
def test_bridge_boots_offline_on_smollm2_on_a_copy_and_leaves_the_model_as_it_was():
    loaded = load_model("smollm2-135m", **CPU)
    before = _logits(loaded)
    ids_before = loaded.tokenizer(PROMPT).input_ids
    pad_before = loaded.tokenizer.pad_token
    attention_before = loaded.model.config._attn_implementation
    bridge = loaded.bridge()
    assert loaded.bridge() is bridge
    ids = loaded.tokenizer(PROMPT, return_tensors="pt").input_ids
    with torch.no_grad():
        # The bridge runs eager attention on its copy; the model keeps sdpa: equal up to kernel noise.
        assert (bridge(ids) - loaded.model(ids).logits).abs().max() <= _forward_noise(loaded.model, before)
    # The hook path's model is untouched: its own modules, its attention, its exact logits.
    assert type(loaded.model.model.layers[0]).__name__ == "LlamaDecoderLayer"
    assert loaded.model.config._attn_implementation == attention_before
    assert torch.equal(_logits(loaded), before)
    assert model_parts(loaded.model).n_layers == 30
    assert loaded.tokenizer(PROMPT).input_ids == ids_before and loaded.tokenizer.pad_token == pad_before
    free_model(loaded)


@pytest.mark.slow
@pytest.mark.skipif(
    not os.environ.get("TINYCAVE_SLOW_TESTS"), reason="dequantizing Gemma takes ~40 s; set TINYCAVE_SLOW_TESTS=1"
)
def test_gemma_by_alias():
    loaded = load_model("gemma3-270m", **CPU)
    assert loaded.model.config.architectures == ["Gemma3ForCausalLM"]
    assert loaded.tokenizer.decode(_logits(loaded, "Berlin is the capital of")[0, -1].argmax()) == " Germany"
    free_model(loaded)


# --- tiny checkpoints of every family ------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_checkpoint_by_path_matches_in_memory_model(family, tiny_checkpoints):
    loaded = load_model(str(tiny_checkpoints(family)), **CPU)
    assert (loaded.spec.kind, loaded.spec.name, loaded.source["cache"]) == ("folder", family, None)
    assert loaded.model.config.architectures == [type(loaded.model).__name__]
    with torch.no_grad():
        assert torch.equal(loaded.model(TINY_IDS).logits, build_model(family)(TINY_IDS).logits)
    assert loaded.tokenizer(PROMPT).input_ids == build_tokenizer()(PROMPT).input_ids
    bridge = loaded.bridge()
    with torch.no_grad():
        logits = loaded.model(TINY_IDS).logits
        assert (bridge(TINY_IDS) - logits).abs().max() <= _forward_noise(loaded.model, logits)
    free_model(loaded)


def test_free_model_releases_weights_even_if_a_module_is_still_held(tiny_checkpoints):
    loaded = load_model(str(tiny_checkpoints("llama")), **CPU)
    model_ref = weakref.ref(loaded.model)
    held = loaded.model.lm_head
    free_model(loaded)
    assert loaded.model is None and model_ref() is None
    assert held.weight.device.type == "meta"


# --- bad inputs ----------------------------------------------------------------------------------


def _message(error_type, spec, **kwargs) -> str:
    with pytest.raises(error_type) as caught:
        load_model(spec, **CPU, **kwargs)
    assert "\n" not in caught.value.message
    return caught.value.message


def test_unknown_hub_id_offline_says_not_found_or_no_network():
    message = _message(ModelNotFoundError, "nobody-xyz/not-a-model-123")
    assert "not found" in message and "cannot be reached" in message and "HF_HUB_OFFLINE" in message
    assert "smollm2-135m" in message and "gemma3-270m" in message


def test_misspelt_alias_is_tried_on_the_hub_and_suggests_the_alias():
    assert "did you mean smollm2-135m" in _message(ModelNotFoundError, "smollm-135m")


def test_missing_path_is_not_found(tmp_path):
    assert "no such file or folder" in _message(ModelNotFoundError, str(tmp_path / "nope"))


def test_text_file_named_gguf(tmp_path):
    fake = tmp_path / "x.gguf"
    fake.write_text("hello")
    assert "not a GGUF file" in _message(InvalidModelFileError, str(fake))


def test_truncated_gguf(tmp_path):
    truncated = tmp_path / "cut.gguf"
    with open(bundled_gguf_path("smollm2-135m"), "rb") as handle:
        truncated.write_bytes(handle.read(2 * 2**20))
    assert "could not be read as a GGUF model" in _message(InvalidModelFileError, str(truncated))


def test_empty_folder(tmp_path):
    assert "no config.json" in _message(InvalidModelFileError, str(tmp_path))


def test_folder_of_gguf_files_points_at_the_file(tmp_path):
    (tmp_path / "m.Q4.gguf").write_bytes(b"GGUF")
    assert str(tmp_path / "m.Q4.gguf") in _message(InvalidModelFileError, str(tmp_path))


def test_pickled_weights_are_refused_with_the_reason(tmp_path):
    model = build_model("llama")
    model.config.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    message = _message(InvalidModelFileError, str(tmp_path))
    assert "pickled" in message and "arbitrary code" in message and "safetensors" in message


def test_config_without_weights(tmp_path):
    build_model("llama").config.save_pretrained(tmp_path)
    assert "no *.safetensors" in _message(InvalidModelFileError, str(tmp_path))


def test_truncated_safetensors_in_folder(tmp_path, tiny_checkpoints):
    folder = tmp_path / "llama"
    shutil.copytree(tiny_checkpoints("llama"), folder)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:1000])
    assert "could not be loaded" in _message(InvalidModelFileError, str(folder))


def test_folder_without_tokenizer(tmp_path):
    build_model("llama").save_pretrained(tmp_path)
    assert "tokenizer" in _message(InvalidModelFileError, str(tmp_path))


def test_unknown_model_type(tmp_path):
    (tmp_path / "config.json").write_text('{"model_type": "nonsense_arch"}')
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert "nonsense_arch" in _message(UnsupportedArchitectureError, str(tmp_path))


def test_architecture_the_lens_cannot_handle_is_named(tmp_path):
    from transformers import BioGptConfig, BioGptForCausalLM

    config = BioGptConfig(vocab_size=320, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                          intermediate_size=64, max_position_embeddings=64)
    BioGptForCausalLM(config).save_pretrained(tmp_path)
    build_tokenizer().save_pretrained(tmp_path)
    assert "BioGptForCausalLM" in _message(UnsupportedArchitectureError, str(tmp_path))


def test_unsupported_architecture_is_refused_before_weights_load(tmp_path):
    from transformers import BioGptConfig

    BioGptConfig(vocab_size=320, hidden_size=32, num_hidden_layers=2, num_attention_heads=4).save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not weights: reading them would fail differently")
    assert "BioGptForCausalLM" in _message(UnsupportedArchitectureError, str(tmp_path))


def test_bridge_check_names_a_class_it_has_no_adapter_for():
    from transformers import BioGptConfig, BioGptForCausalLM

    model = BioGptForCausalLM(BioGptConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1,
                                           num_attention_heads=2, intermediate_size=32))
    with pytest.raises(UnsupportedArchitectureError, match="BioGptForCausalLM.*TransformerLens bridge"):
        check_bridge_support(model)
    assert check_bridge_support(build_model("llama")) == "LlamaForCausalLM"


REMOTE_CONFIG = """from transformers import LlamaConfig
class TinyRemoteConfig(LlamaConfig):
    model_type = "tiny_remote"
"""
REMOTE_MODEL = """from transformers import LlamaForCausalLM
from .configuration_tiny import TinyRemoteConfig
class TinyRemoteForCausalLM(LlamaForCausalLM):
    config_class = TinyRemoteConfig
"""


def _remote_code_folder(folder: Path) -> Path:
    import json

    build_model("llama").save_pretrained(folder)
    build_tokenizer().save_pretrained(folder)
    (folder / "configuration_tiny.py").write_text(REMOTE_CONFIG)
    (folder / "modeling_tiny.py").write_text(REMOTE_MODEL)
    config = json.loads((folder / "config.json").read_text())
    config.update(model_type="tiny_remote", auto_map={
        "AutoConfig": "configuration_tiny.TinyRemoteConfig",
        "AutoModelForCausalLM": "modeling_tiny.TinyRemoteForCausalLM",
    })
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_remote_code_runs_only_when_asked(tmp_path):
    folder = _remote_code_folder(tmp_path / "remote")
    assert "--trust-remote-code" in _message(UnsupportedArchitectureError, str(folder))
    # With the flag the code runs and loads; the lens then refuses the non-transformers class by name.
    message = _message(UnsupportedArchitectureError, str(folder), trust_remote_code=True)
    assert "TinyRemoteForCausalLM" in message


# --- hub errors, from real huggingface_hub exception instances --------------------------------


def _hub_error(cls, status: int):
    import httpx2

    response = httpx2.Response(status, request=httpx2.Request("GET", "https://huggingface.co/api/models/x"))
    return cls(f"{status} Client Error", response=response)


def _wrapped(cause: BaseException, text: str) -> OSError:
    """An OSError raised from ``cause``, as transformers wraps hub errors."""
    try:
        raise OSError(text) from cause
    except OSError as err:
        return err


def test_gated_repo_says_login_token_and_licence():
    from huggingface_hub.errors import GatedRepoError

    err = _wrapped(_hub_error(GatedRepoError, 401), "You are trying to access a gated repo.\nMake sure ...")
    explained = explain_hub_error(err, "meta-llama/Meta-Llama-3-8B")
    assert isinstance(explained, GatedModelError)
    page = "https://huggingface.co/meta-llama/Meta-Llama-3-8B"
    for needed in ("hf auth login", "HF_TOKEN", "licence", page):
        assert needed in explained.message


def test_repo_not_found_lists_bundled_aliases():
    from huggingface_hub.errors import RepositoryNotFoundError

    explained = explain_hub_error(_hub_error(RepositoryNotFoundError, 404), "someone/nothing")
    assert isinstance(explained, ModelNotFoundError)
    assert "not found on the Hugging Face hub" in explained.message and "smollm2-135m" in explained.message


def test_revision_and_connection_errors():
    from huggingface_hub.errors import LocalEntryNotFoundError, RevisionNotFoundError

    assert "revision" in explain_hub_error(_hub_error(RevisionNotFoundError, 404), "a/b").message
    offline = explain_hub_error(_wrapped(LocalEntryNotFoundError("not cached"), "We couldn't connect"), "a/b")
    assert isinstance(offline, ModelNotFoundError) and "cannot be reached" in offline.message
    assert "cannot be reached" in explain_hub_error(ConnectionError("reset"), "a/b").message


def test_hub_repo_with_only_pickles():
    err = OSError("a/b does not appear to have a file named model.safetensors or model.safetensors.index.json "
                  "and thus cannot be loaded with `safetensors`. Please do not set `use_safetensors=True`.")
    explained = explain_hub_error(err, "a/b")
    assert isinstance(explained, InvalidModelFileError) and "pickled" in explained.message


def test_unexpected_hub_text_is_scrubbed_of_the_token(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    explained = explain_hub_error(OSError(f"odd failure, header Bearer {TOKEN}"), "a/b")
    assert TOKEN not in explained.message and "odd failure" in explained.message


# --- through a real process, as a run.py would ---------------------------------------------------

CLI = ("import sys; from layers_core.cli import run_main; from layers_core.models.loading import load_model; "
       "run_main(lambda argv: load_model(sys.argv[1], device='cpu') and 0)")


@pytest.mark.parametrize("case", ["text file as gguf", "unknown hub id"])
def test_cli_prints_one_line_exit_2_no_traceback(case, tmp_path):
    if case == "text file as gguf":
        arg, expected = tmp_path / "x.gguf", "not a GGUF file"
        arg.write_text("hello")
    else:
        arg, expected = "nobody-xyz/not-a-model-123", "cannot be reached"
    env = {**os.environ, "HF_TOKEN": TOKEN, "HF_HUB_OFFLINE": "1", "TINYCAVE_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-c", CLI, str(arg)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and expected in errors[0]
    assert TOKEN not in proc.stdout + proc.stderr
