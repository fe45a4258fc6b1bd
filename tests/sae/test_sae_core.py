"""The shared SAE pieces on tiny random-weight models: hooks, training, quality, cache, sources.

The quality checks use SAEs whose answer is known exactly: an SAE that reconstructs its
input perfectly (features ``relu(x)`` and ``relu(-x)``, decoder ``[I; -I]``) must give
explained variance 1 and loss recovered 1, and one whose decoder is zero must give
loss recovered 0 (the spliced run is then the zero-ablated run).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import pytest
import torch

from layers_core.hooks.activations import Patch, run_with_cache, run_with_patches
from layers_core.sae.sae_cache import SaeIdentity, cached_or_trained, load_cached
from layers_core.sae.sae_points import SaeMismatchError, default_layers, residual_hook, residual_of_hook
from layers_core.sae.sae_quality import sae_quality
from layers_core.sae.sae_sources import SaeSourceError, check_fits, load_sae, parse_sae_spec
from layers_core.sae.sae_splice import reconstruction, without_features
from layers_core.sae.sae_training import (
    CENTRE_ABOVE,
    SaeRecipe,
    centred_where_needed,
    collect_residuals,
    mean_shares,
    spread_windows,
    train_on_residuals,
    train_saes,
)
from tests.tiny_models import VOCAB_SIZE, shared_model
from tests.tolerances import fp_tol

RECIPE = SaeRecipe(expansion=4, k=8, tokens=8192, epochs=2, batch_tokens=256, lr=1e-2, window=24, forward_batch=8,
                   norm_batches=2)


@pytest.fixture(autouse=True)
def _deterministic():
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    yield
    torch.use_deterministic_algorithms(previous)


def _windows(count: int, width: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(3, VOCAB_SIZE, (count, width), generator=torch.Generator().manual_seed(seed))


@functools.cache
def _trained(family: str = "llama") -> dict:
    model, parts = shared_model(family)
    return train_saes(model, parts, _windows(RECIPE.windows_needed(), RECIPE.window), [1, 2], RECIPE)


def _exact_sae(d_model: int, hook: str, zero_decoder: bool = False):
    from sae_lens import TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata

    sae = TopKSAE(TopKSAEConfig(d_in=d_model, d_sae=2 * d_model, k=2 * d_model, apply_b_dec_to_input=False,
                                rescale_acts_by_decoder_norm=False, metadata=SAEMetadata(hook_name=hook)))
    eye = torch.eye(d_model)
    with torch.no_grad():
        sae.W_enc.copy_(torch.cat([eye, -eye], dim=1))
        sae.b_enc.zero_()
        sae.W_dec.copy_(torch.zeros(2 * d_model, d_model) if zero_decoder else torch.cat([eye, -eye], dim=0))
        sae.b_dec.zero_()
    return sae


# Hooks and layers


def test_hooks_and_residuals_round_trip() -> None:
    for layer in range(31):
        assert residual_of_hook(residual_hook(layer, 30), 30) == layer
    assert residual_of_hook("blocks.12.hook_resid_post", 18) == 13
    assert residual_hook(30, 30) == "blocks.29.hook_resid_post"


@pytest.mark.parametrize("hook", ["blocks.3.hook_mlp_out", "blocks.30.hook_resid_pre", "resid", ""])
def test_a_hook_that_is_not_a_residual_of_the_model_is_refused(hook: str) -> None:
    with pytest.raises(SaeMismatchError):
        residual_of_hook(hook, 30)


def test_default_layers_are_a_quarter_half_three_quarters_and_nine_tenths_deep() -> None:
    assert default_layers(30) == [8, 15, 22, 27]
    assert default_layers(18) == [4, 9, 14, 16]
    assert default_layers(3) == [1, 2]


# Quality


def test_a_perfect_sae_recovers_everything_and_a_zero_decoder_nothing() -> None:
    model, parts = shared_model("llama")
    hook = residual_hook(1, parts.n_layers)  # zeroing this residual raises the tiny llama's loss by ~0.56 nats
    windows = _windows(6, 16, seed=1)
    perfect = sae_quality(model, parts, {1: _exact_sae(parts.d_model, hook)}, windows, batch_size=4)[0]
    zero = sae_quality(model, parts, {1: _exact_sae(parts.d_model, hook, zero_decoder=True)}, windows, batch_size=4)[0]
    tol = fp_tol(abs(perfect.ce_clean), n_terms=parts.d_model)
    assert perfect.ce_zero > perfect.ce_clean + 0.1
    assert perfect.explained_variance == pytest.approx(1.0, abs=1e-6)
    assert perfect.ce_sae == pytest.approx(perfect.ce_clean, abs=tol)
    assert perfect.ce_loss_recovered == pytest.approx(1.0, abs=1e-4)
    assert zero.ce_sae == pytest.approx(zero.ce_zero, abs=tol)
    assert zero.ce_loss_recovered == pytest.approx(0.0, abs=1e-4)
    assert zero.explained_variance < 0.0  # predicting zero is worse than predicting the mean
    assert perfect.tokens == 6 * 15
    # The perfect SAE's features are relu(x) and relu(-x): each dimension fires on one side unless exactly 0.
    assert perfect.l0 == pytest.approx(parts.d_model, abs=1.0)


def test_loss_recovered_is_undefined_where_zeroing_does_not_raise_the_loss() -> None:
    model, parts = shared_model("llama")
    hook = residual_hook(2, parts.n_layers)  # on random weights zeroing this residual lowers the loss
    found = sae_quality(model, parts, {2: _exact_sae(parts.d_model, hook)}, _windows(6, 16, seed=1), batch_size=4)[0]
    assert found.ce_zero < found.ce_clean and math.isnan(found.ce_loss_recovered)


def test_trained_saes_explain_the_residual_and_are_reproducible() -> None:
    model, parts = shared_model("llama")
    first = _trained()
    again = train_saes(model, parts, _windows(RECIPE.windows_needed(), RECIPE.window), [1, 2], RECIPE)
    for layer in (1, 2):
        assert torch.equal(first[layer].W_enc, again[layer].W_enc)
        assert torch.equal(first[layer].W_dec, again[layer].W_dec)
        assert first[layer].cfg.metadata.hook_name == residual_hook(layer, parts.n_layers)
    quality = sae_quality(model, parts, first, _windows(6, RECIPE.window, seed=2), batch_size=4)
    for q in quality:
        assert q.explained_variance > 0.5, q  # measured 0.80 and 0.79; an untrained SAE is near 0
        # On random weights zeroing a residual can lower the loss, so the recovered ratio is not checked here.
        assert q.dead_frac < 0.5
        assert q.l0 <= RECIPE.k + 1e-9


def test_the_splice_puts_the_reconstruction_in_and_with_the_error_term_gives_the_model_back() -> None:
    model, parts = shared_model("llama")
    sae = _trained()[1]
    hook, windows = sae.cfg.metadata.hook_name, _windows(3, 20, seed=3)
    clean = run_with_cache(model, parts, windows, [hook])
    x = clean.cache[hook]
    rebuilt = reconstruction(sae, x)
    spliced = run_with_patches(model, parts, windows, [Patch(hook, rebuilt)], read=[hook])
    assert torch.equal(spliced.cache[hook], rebuilt)
    assert not torch.allclose(spliced.logits, clean.logits)  # the SAE's error term matters downstream
    # The error term added back the naive way: the model's logits up to rounding.
    naive = run_with_patches(model, parts, windows, [Patch(hook, rebuilt + (x - rebuilt))])
    torch.testing.assert_close(naive.logits, clean.logits, rtol=0,
                               atol=fp_tol(max(1.0, float(clean.logits.abs().max())), n_terms=parts.d_model))
    # Kept exactly: removing nothing, or a feature that never fires here, gives the model's logits bit for bit.
    acts = sae.encode(x.reshape(-1, parts.d_model))
    silent = int((acts.amax(0) <= 0).nonzero()[0])
    firing = int(acts.amax(0).argmax())
    for features in ([], [silent]):
        kept = run_with_patches(model, parts, windows, [Patch(hook, without_features(sae, x, features))])
        assert torch.equal(kept.logits, clean.logits), features
    removed = without_features(sae, x, [firing])
    expected = x - (acts[:, firing, None] * sae.W_dec[firing]).reshape(x.shape)  # its activation times its decoder row
    torch.testing.assert_close(removed, expected, rtol=0, atol=fp_tol(float(x.abs().max()), n_terms=parts.d_model))
    assert not torch.equal(removed, x)


def _offset_store(offset: float) -> dict[str, torch.Tensor]:
    """Residual-like rows: a sparse code through a random dictionary, plus a constant vector times ``offset``."""
    generator = torch.Generator().manual_seed(3)
    d_model, rows = 16, 4096
    dictionary = torch.randn(48, d_model, generator=generator)
    codes = torch.rand(rows, 48, generator=generator) * (torch.rand(rows, 48, generator=generator) < 0.08)
    constant = torch.randn(d_model, generator=generator)
    return {"blocks.1.hook_resid_pre": codes @ dictionary + offset * constant}


def test_a_centred_recipe_trains_the_same_features_whatever_constant_the_residuals_carry() -> None:
    # Gemma 3 270M's residual mean carries 85-91% of its squared norm. A centred recipe
    # starts the decoder bias at the mean and scales by the spread around it, so adding a
    # constant to every row must leave the features and the reconstruction error as they
    # were (up to float rounding at the constant's magnitude); the raw-norm recipe does not.
    recipe = SaeRecipe(expansion=2, k=4, tokens=4096, epochs=2, batch_tokens=256, lr=1e-2, window=24, norm_batches=2)
    hook = "blocks.1.hook_resid_pre"
    plain, shifted = _offset_store(0.0), _offset_store(200.0)
    errors = {}
    for centre in (True, False):
        chosen = dataclasses.replace(recipe, centre=centre)
        for name, store in (("plain", plain), ("shifted", shifted)):
            sae = train_on_residuals(store, 16, chosen)[hook]
            x = store[hook][:512]
            with torch.no_grad():
                errors[centre, name] = float(((sae(x) - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())
                if centre:
                    errors[centre, name, "features"] = sae.encode(x)
    assert torch.allclose(errors[True, "plain", "features"], errors[True, "shifted", "features"], rtol=1e-3,
                          atol=1e-3 * float(errors[True, "plain", "features"].abs().max()))
    assert errors[True, "shifted"] == pytest.approx(errors[True, "plain"], rel=1e-2)
    assert errors[False, "shifted"] > 2 * errors[True, "shifted"]


def test_mean_shares_are_the_mean_s_share_of_the_squared_norm_and_choose_centring() -> None:
    model, parts = shared_model("gemma3")
    windows = _windows(6, 24, seed=5)
    shares = mean_shares(model, parts, windows, [1, 3], batch_size=4)
    store = collect_residuals(model, parts, windows, [1, 3], batch_size=2)
    for layer in (1, 3):
        x = store[residual_hook(layer, parts.n_layers)].double()
        assert shares[layer] == pytest.approx(float(x.mean(0).square().sum() / x.square().sum(1).mean()), rel=1e-6)
        assert 0.0 < shares[layer] <= 1.0
    assert spread_windows(torch.arange(100)[:, None], 8)[:, 0].tolist() == [0, 12, 24, 36, 48, 60, 72, 84]
    assert centred_where_needed(RECIPE, CENTRE_ABOVE + 0.01).centre
    assert centred_where_needed(RECIPE, CENTRE_ABOVE) == RECIPE
    assert "centre" not in RECIPE.as_dict() and centred_where_needed(RECIPE, 0.9).as_dict()["centre"] is True


def test_training_refuses_too_few_windows() -> None:
    model, parts = shared_model("llama")
    with pytest.raises(ValueError, match="reads"):
        train_saes(model, parts, _windows(2, RECIPE.window), [1], RECIPE)


# Cache


def _identity(layer: int, recipe: dict | None = None) -> SaeIdentity:
    _, parts = shared_model("llama")
    return SaeIdentity("tiny-llama", parts.n_layers, parts.d_model, layer, "corpus-0", recipe or RECIPE.as_dict())


def test_cache_trains_once_reloads_identically_and_retrains_a_damaged_entry(tinycave_cache) -> None:
    calls: list[list[int]] = []

    def train(layers: list[int]) -> dict:
        calls.append(layers)
        return {layer: _trained()[layer] for layer in layers}

    identities = [_identity(1), _identity(2)]
    first = cached_or_trained(identities, train, "cpu")
    assert [state for _, state in first.values()] == ["trained", "trained"] and calls == [[1, 2]]
    second = cached_or_trained(identities, train, "cpu")
    assert [state for _, state in second.values()] == ["hit", "hit"] and len(calls) == 1
    for layer in (1, 2):
        assert torch.equal(second[layer][0].W_dec, _trained()[layer].W_dec)
        assert torch.equal(second[layer][0].b_enc, _trained()[layer].b_enc)
    weights = identities[1].folder() / "sae_weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])  # a torn write
    lines: list[str] = []
    third = cached_or_trained(identities, train, "cpu", status=lines.append)
    assert [state for _, state in third.values()] == ["hit", "retrained"] and calls[-1] == [2]
    assert "not usable" in lines[0]
    assert load_cached(identities[1], "cpu")[0] is not None


def test_an_entry_for_another_recipe_is_not_used(tinycave_cache) -> None:
    identity = _identity(1, {**RECIPE.as_dict(), "k": 9})
    cached_or_trained([identity], lambda layers: {1: _trained()[1]}, "cpu")
    stored = identity.folder() / "identity.json"
    data = json.loads(stored.read_text())
    data["layer"] = 2
    stored.write_text(json.dumps(data))
    assert load_cached(identity, "cpu") == (None, "it was trained for something else")


# Sources


def test_train_and_folder_specs(tmp_path) -> None:
    assert parse_sae_spec("train").kind == "train"
    with pytest.raises(SaeSourceError, match="no such folder"):
        parse_sae_spec(str(tmp_path / "nothing"))
    with pytest.raises(SaeSourceError, match="cfg.json"):
        parse_sae_spec(str(tmp_path))
    with pytest.raises(SaeSourceError, match="empty"):
        parse_sae_spec("  ")


def test_unknown_releases_and_ids_name_the_closest(tmp_path) -> None:
    with pytest.raises(SaeSourceError, match="closest: gpt2-small-res-jb"):
        parse_sae_spec("gpt2-small-res-jbb/blocks.6.hook_resid_pre")
    with pytest.raises(SaeSourceError, match="closest: blocks.6.hook_resid_pre"):
        parse_sae_spec("gpt2-small-res-jb/blocks.6.hook_resid_pr")
    source = parse_sae_spec("gemma-scope-2-270m-pt-res/layer_12_width_16k_l0_medium")
    assert (source.release, source.sae_id) == ("gemma-scope-2-270m-pt-res", "layer_12_width_16k_l0_medium")


def test_offline_hub_sae_says_that_trained_saes_work_offline() -> None:
    source = parse_sae_spec("gpt2-small-res-jb/blocks.6.hook_resid_pre")
    with pytest.raises(SaeSourceError, match="--sae train"):
        load_sae(source, "cpu")


def test_a_folder_sae_loads_and_one_of_another_width_is_refused(tmp_path) -> None:
    _, parts = shared_model("llama")
    _trained()[2].save_model(tmp_path / "mine")
    source = parse_sae_spec(str(tmp_path / "mine"))
    assert check_fits(load_sae(source, "cpu"), parts, source) == 2
    _exact_sae(parts.d_model * 2, "blocks.1.hook_resid_pre").save_model(tmp_path / "wide")
    wide = parse_sae_spec(str(tmp_path / "wide"))
    with pytest.raises(SaeMismatchError, match="width 64"):
        check_fits(load_sae(wide, "cpu"), parts, wide)


def test_quality_is_measured_once_per_windows_and_remeasured_when_its_file_is_damaged(tmp_path) -> None:
    from layers_core.sae.quality_cache import cached_quality, quality_key

    model, parts = shared_model("llama")
    saes = _trained()
    windows = _windows(4, 16, seed=5)
    calls: list[list[int]] = []

    def measure(layers):
        calls.append(list(layers))
        return sae_quality(model, parts, {layer: saes[layer] for layer in layers}, windows, batch_size=4)

    folders = {1: tmp_path / "one", 2: None}  # residual 2's SAE was not trained here: always measured
    folders[1].mkdir()
    key = quality_key(windows, "cpu", "float32")
    def rows(found):  # NaN-aware: loss recovered is undefined on this random model
        return [json.dumps({k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in q.as_row().items()})
                for q in found]

    first = cached_quality(folders, key, measure)
    again = cached_quality(folders, key, measure)
    assert calls == [[1, 2], [2]] and rows(again) == rows(first)
    assert quality_key(_windows(4, 16, seed=6), "cpu", "float32") != key != quality_key(windows, "mps", "float32")
    (folders[1] / f"quality-{key}.json").write_text("{", encoding="utf-8")
    assert rows(cached_quality(folders, key, measure)) == rows(first) and calls[-1] == [1, 2]
