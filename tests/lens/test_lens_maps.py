"""Fitted lens maps in the lens and in the cache: identity at the last layer, safetensors round trips, refusals.

The fitting itself is ``test_lens_fitting.py``'s; here the maps are made by hand (identity, random)
so that what is tested is how the lens applies them and how the cache keeps them.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from layers_core import metrics
from layers_core.lens import lens_cache
from layers_core.lens.lens import Lens
from layers_core.lens.translators import LensIdentity, LensMaps, LensMismatchError
from layers_core.models.loading import load_model
from tests import tiny_models

IDS = torch.tensor([[5, 17, 9, 23, 11, 7]])
SPEC_KL_BITS = 1e-6  # the last layer must reproduce the model (the brief), in fp32


def _identity(parts, kind: str = "tuned", **changes) -> LensIdentity:
    fields = {"kind": kind, "model": "test-model", "corpus": "test-corpus", "recipe": {"steps": 3, "lr": 0.01},
              "n_layers": parts.n_layers, "d_model": parts.d_model, **changes}
    return LensIdentity(**fields)


def _random_maps(parts, kind: str = "tuned", seed: int = 0) -> LensMaps:
    generator = torch.Generator().manual_seed(seed)
    n, d = parts.n_layers, parts.d_model
    weight = torch.eye(d).repeat(n, 1, 1) + 0.1 * torch.randn(n, d, d, generator=generator)
    return LensMaps(_identity(parts, kind), weight, 0.1 * torch.randn(n, d, generator=generator))


def _residuals(model, parts) -> torch.Tensor:
    from layers_core.hooks.capture import capture_residuals

    resid, _ = capture_residuals(model, parts, IDS, positions="last")
    return resid[:, 0]  # [L+1, 1, d]


@pytest.mark.parametrize("family", ["llama", "gemma2", "gemma3", "gpt2"])
def test_the_last_layer_reproduces_the_model_whatever_the_maps(family: str) -> None:
    model, parts = tiny_models.shared_model(family)
    resid = _residuals(model, parts)
    with torch.no_grad():
        own = model(input_ids=IDS).logits[0, -1].float()
    for kind in ("tuned", "linear"):
        lens = Lens(parts, kind, maps=_random_maps(parts, kind))
        last = lens.logits(resid[parts.n_layers], parts.n_layers)[0]
        assert metrics.kl_bits(own, last).item() < SPEC_KL_BITS
        earlier = lens.logits(resid[1], 1)[0]
        assert not torch.allclose(earlier, Lens(parts, "norm").logits(resid[1], 1)[0])  # the maps do act


def test_identity_maps_decode_exactly_as_the_norm_lens() -> None:
    model, parts = tiny_models.shared_model("llama")
    resid = _residuals(model, parts)
    tuned = Lens(parts, "tuned", maps=LensMaps.identity_maps(_identity(parts)))
    norm = Lens(parts, "norm")
    assert torch.equal(tuned.logits_stack(resid), norm.logits_stack(resid))


def test_a_lens_refuses_maps_that_do_not_go_with_it() -> None:
    _, parts = tiny_models.shared_model("llama")
    with pytest.raises(ValueError, match="takes its fitted maps"):
        Lens(parts, "tuned")
    with pytest.raises(ValueError, match="takes no maps"):
        Lens(parts, "norm", maps=_random_maps(parts))
    with pytest.raises(ValueError, match="takes its fitted maps"):
        Lens(parts, "linear", maps=_random_maps(parts, "tuned"))
    _, other = tiny_models.shared_model("gpt2")
    if (other.n_layers, other.d_model) != (parts.n_layers, parts.d_model):
        with pytest.raises(ValueError, match="do not fit"):
            Lens(parts, "tuned", maps=_random_maps(other))


def test_maps_reload_bit_identically_and_refuse_another_identity(tmp_path: Path) -> None:
    _, parts = tiny_models.shared_model("llama")
    maps = _random_maps(parts)
    path = tmp_path / "maps.safetensors"
    maps.save(path)
    again = LensMaps.load(path, maps.identity)
    assert torch.equal(again.weight, maps.weight) and torch.equal(again.bias, maps.bias)
    assert again.identity == maps.identity
    for change, field in (({"model": "another"}, "model"), ({"corpus": "other"}, "corpus"),
                          ({"recipe": {"steps": 4, "lr": 0.01}}, "recipe"), ({"kind": "linear"}, "kind")):
        with pytest.raises(LensMismatchError, match=f"another {field}"):
            LensMaps.load(path, _identity(parts, **change))
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(LensMismatchError, match="not readable"):
        LensMaps.load(path, maps.identity)


def test_the_cache_fits_once_then_hits_and_refits_a_damaged_entry(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINYCAVE_CACHE", str(tmp_path))
    _, parts = tiny_models.shared_model("llama")
    maps = _random_maps(parts)
    calls: list[int] = []

    def fit() -> LensMaps:
        calls.append(1)
        return maps

    first, state = lens_cache.fitted_maps(maps.identity, fit)
    assert state == "fitted" and len(calls) == 1
    second, state = lens_cache.fitted_maps(maps.identity, fit)
    assert state == "hit" and len(calls) == 1 and torch.equal(second.weight, first.weight)
    path = lens_cache.maps_path(maps.identity)
    assert path.parent.parent == tmp_path / "lenses"
    path.write_bytes(b"damaged")
    messages: list[str] = []
    _, state = lens_cache.fitted_maps(maps.identity, fit, status=messages.append)
    assert state == "refitted" and len(calls) == 2 and "not usable" in messages[0]
    other = _identity(parts, recipe={"steps": 9, "lr": 0.01})
    assert lens_cache.maps_path(other) != path


def test_a_local_models_fingerprint_ignores_its_dtype_and_follows_its_weights(tiny_checkpoints) -> None:
    folder = tiny_checkpoints("llama")
    full = load_model(str(folder), device="cpu", dtype="float32", check_bridge=False)
    half = load_model(str(folder), device="cpu", dtype="bfloat16", check_bridge=False)
    assert lens_cache.model_fingerprint(full) == lens_cache.model_fingerprint(half)
    assert lens_cache.model_fingerprint(full).startswith("weights-sample:")
    with torch.no_grad():
        next(full.model.parameters()).add_(1.0)
    assert lens_cache.model_fingerprint(full) != lens_cache.model_fingerprint(half)
