"""Fitting lenses: the linear shortcut's closed form, the tuned lens's training, and what both must keep.

Tiny random-weight models of several families: llama (RMSNorm), gemma3 ((1 + w) RMSNorm and
a final-logit softcap), phi (LayerNorm with bias and an unembedding bias) and gpt2
(LayerNorm with bias, tied embeddings). The tiny gpt2's tied, 40x-scaled embedding
dwarfs its blocks, so every lens is already at ~0 KL there: it is used for the
identity, round-trip and determinism checks, phi for "the fit lowers the KL".
"""

from __future__ import annotations

import functools

import pytest
import torch

from layers_core.hooks.capture import capture_residuals
from layers_core.lens.lens import Lens
from layers_core.lens.lens_divergence import kl_by_layer
from layers_core.lens.linear_shortcut import ShortcutSums, fit_linear_shortcut, shortcut_from_sums
from layers_core.lens.translators import LensIdentity, LensMaps, LensMismatchError
from layers_core.lens.tuned_fit import TunedRecipe, fit_tuned_lens, tuned_recipe_dict
from layers_core.metrics import kl_bits
from tests.tiny_models import shared_model

KL_LIMIT_BITS = 1e-6
LOWERING_FAMILIES = ("llama", "gemma3", "phi")
FAMILIES = (*LOWERING_FAMILIES, "gpt2")
RECIPE = TunedRecipe(positions=512, steps=30, batch_size=64, lr=3e-3, init="identity", forward_batch=4)
WARM_RECIPE = TunedRecipe(positions=512, steps=30, batch_size=64, lr=1e-3, init="linear", forward_batch=4)


@pytest.fixture(autouse=True)
def _deterministic():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(previous)


def _windows(seed: int = 0) -> torch.Tensor:
    return torch.randint(3, 320, (16, 24), generator=torch.Generator().manual_seed(seed))


def _identity(family: str, kind: str, recipe: dict | None = None) -> LensIdentity:
    _, parts = shared_model(family)
    return LensIdentity(kind, f"tiny-{family}", "corpus-0", recipe or {"windows": 16}, parts.n_layers, parts.d_model)


@functools.cache
def _linear(family: str) -> LensMaps:
    model, parts = shared_model(family)
    return fit_linear_shortcut(model, parts, _windows(), _identity(family, "linear"), batch_size=4)


def _fit_tuned(family: str, recipe: TunedRecipe, trace: list[float] | None = None) -> LensMaps:
    model, parts = shared_model(family)
    init = _linear(family) if recipe.init == "linear" else None
    identity = _identity(family, "tuned", tuned_recipe_dict(recipe, init))
    return fit_tuned_lens(model, parts, _windows(), identity, recipe, init=init, trace=trace)


@functools.cache
def _tuned(family: str) -> LensMaps:
    return _fit_tuned(family, RECIPE)


def _mean_kl(family: str, lens: Lens, windows: torch.Tensor) -> float:
    model, parts = shared_model(family)
    per_layer = kl_by_layer(model, parts, lens, windows, batch_size=8)
    return sum(per_layer[:-1]) / parts.n_layers


def test_shortcut_recovers_an_exact_linear_map() -> None:
    generator = torch.Generator().manual_seed(0)
    d, n = 8, 400
    first = torch.randn(n, d, dtype=torch.float64, generator=generator) * torch.linspace(0.1, 10.0, d,
                                                                                         dtype=torch.float64)
    mix = torch.randn(d, d, dtype=torch.float64, generator=generator) + 3 * torch.eye(d, dtype=torch.float64)
    second = first @ mix.T + 5.0  # a second layer, itself an exact affine image of the first
    weight = torch.randn(d, d, dtype=torch.float64, generator=generator)
    bias = torch.randn(d, dtype=torch.float64, generator=generator)
    target = first @ weight.T + bias
    sums = ShortcutSums(2, d)
    for rows in torch.split(torch.arange(n), 150):  # several batches sum to the whole
        sums.add(torch.stack([first[rows], second[rows]]), target[rows])
    fitted_weight, fitted_bias = shortcut_from_sums(sums, ridge=0.0)
    predicted = torch.einsum("lnd,led->lne", torch.stack([first, second]), fitted_weight) + fitted_bias[:, None]
    assert torch.allclose(fitted_weight[0], weight, atol=1e-9)
    assert torch.allclose(fitted_bias[0], bias, atol=1e-8)
    assert torch.allclose(predicted, target.expand(2, n, d), atol=1e-8)
    ridged_weight, _ = shortcut_from_sums(sums)  # the default ridge barely shrinks a well-posed fit
    assert torch.allclose(ridged_weight[0], weight, atol=1e-2)


def test_shortcut_solves_model_sized_layers_on_two_threads() -> None:
    # torch 2.13's batched LU on MKL failed for a stack like SmolLM2's (30 layers of 576) on two threads.
    generator = torch.Generator().manual_seed(0)
    n_layers, d, n = 30, 576, 1200
    inputs = torch.randn(n_layers, n, d, generator=generator, dtype=torch.float64)
    target = inputs[-1] * 2.0 - 1.0
    sums = ShortcutSums(n_layers, d)
    sums.add(inputs, target)
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        weight, bias = shortcut_from_sums(sums, ridge=0.0)
    finally:
        torch.set_num_threads(threads)
    assert torch.allclose(weight[-1], 2.0 * torch.eye(d, dtype=torch.float64), atol=1e-9)
    assert torch.allclose(bias[-1], torch.full((d,), -1.0, dtype=torch.float64), atol=1e-9)


def test_shortcut_needs_positions() -> None:
    with pytest.raises(ValueError, match="at least one"):
        shortcut_from_sums(ShortcutSums(1, 4))


@pytest.mark.parametrize("family", LOWERING_FAMILIES)
def test_linear_shortcut_lowers_the_training_kl(family: str) -> None:
    _, parts = shared_model(family)
    norm = _mean_kl(family, Lens(parts), _windows())
    linear = _mean_kl(family, Lens(parts, "linear", maps=_linear(family)), _windows())
    assert linear < 0.8 * norm, (family, linear, norm)


@pytest.mark.parametrize("family", LOWERING_FAMILIES)
def test_tuned_lens_lowers_the_training_kl_from_its_start(family: str) -> None:
    _, parts = shared_model(family)
    norm = _mean_kl(family, Lens(parts), _windows())  # the identity start is the norm lens
    tuned = _mean_kl(family, Lens(parts, "tuned", maps=_tuned(family)), _windows())
    assert tuned < 0.9 * norm, (family, tuned, norm)


def test_warm_started_tuned_lens_lowers_the_linear_shortcuts_kl() -> None:
    _, parts = shared_model("llama")
    trace: list[float] = []
    tuned = _fit_tuned("llama", WARM_RECIPE, trace)
    linear = _mean_kl("llama", Lens(parts, "linear", maps=_linear("llama")), _windows())
    assert _mean_kl("llama", Lens(parts, "tuned", maps=tuned), _windows()) < linear
    assert len(trace) == WARM_RECIPE.steps


@pytest.mark.parametrize("family", FAMILIES)
def test_last_layer_stays_the_identity(family: str) -> None:
    model, parts = shared_model(family)
    resid, logits = capture_residuals(model, parts, _windows(1)[:4], positions="all", logits_at="all")
    for kind, maps in (("linear", _linear(family)), ("tuned", _tuned(family))):
        lens = Lens(parts, kind, maps=maps)
        decoded = lens.logits(resid[parts.n_layers], parts.n_layers)
        assert float(kl_bits(logits, decoded).max()) < KL_LIMIT_BITS, (family, kind)
        per_layer = kl_by_layer(model, parts, lens, _windows(1)[:4], batch_size=2)
        assert per_layer[-1] < KL_LIMIT_BITS, (family, kind, per_layer)


@pytest.mark.parametrize("family", ("gemma3", "gpt2"))
def test_fitted_maps_reload_bit_identically(family: str, tmp_path) -> None:
    for maps in (_linear(family), _tuned(family)):
        path = tmp_path / f"{maps.identity.kind}.safetensors"
        maps.save(path)
        loaded = LensMaps.load(path, maps.identity)
        assert torch.equal(loaded.weight, maps.weight) and torch.equal(loaded.bias, maps.bias)
        assert loaded.identity == maps.identity


@pytest.mark.parametrize("family", ("gemma3", "gpt2"))
def test_fitting_twice_gives_identical_maps(family: str) -> None:
    model, parts = shared_model(family)
    again = fit_linear_shortcut(model, parts, _windows(), _identity(family, "linear"), batch_size=4)
    assert torch.equal(again.weight, _linear(family).weight) and torch.equal(again.bias, _linear(family).bias)
    tuned = _fit_tuned(family, RECIPE)
    assert torch.equal(tuned.weight, _tuned(family).weight) and torch.equal(tuned.bias, _tuned(family).bias)


def test_fitting_leaves_the_model_without_gradients() -> None:
    model, _ = shared_model("llama")
    _tuned("llama")
    assert all(param.grad is None for param in model.parameters())


@pytest.mark.parametrize("field, value", [("model", "tiny-other"), ("corpus", "corpus-1"),
                                          ("recipe", {"windows": 17}), ("kind", "tuned")])
def test_a_lens_for_another_model_corpus_or_recipe_is_refused(field: str, value, tmp_path) -> None:
    maps = _linear("llama")
    path = tmp_path / "linear.safetensors"
    maps.save(path)
    fields = {name: getattr(maps.identity, name) for name in ("kind", "model", "corpus", "recipe", "n_layers",
                                                               "d_model")}
    with pytest.raises(LensMismatchError, match=field):
        LensMaps.load(path, LensIdentity(**{**fields, field: value}))


def test_tuned_fit_refuses_an_identity_that_does_not_name_its_recipe() -> None:
    model, parts = shared_model("llama")
    identity = _identity("llama", "tuned", {"steps": 1})
    with pytest.raises(ValueError, match="recipe"):
        fit_tuned_lens(model, parts, _windows(), identity, RECIPE)
    with pytest.raises(ValueError, match="init"):
        fit_tuned_lens(model, parts, _windows(), _identity("llama", "tuned", tuned_recipe_dict(WARM_RECIPE, None)),
                       WARM_RECIPE)
