"""The tiled, fused sweeps against a straightforward reference built from the plain metrics.

The reference decodes each layer with ``Lens.logits`` and measures it with
``layers_core.metrics`` one function at a time, as the first version of the
sweep did. Both sides compute the same numbers in another order and with other
matmul shapes, so they agree to fp32 rounding (``tests.tolerances``): logits to
``lens_logit_tol``; probabilities, entropies and KL to ``log_prob_tol`` of those
logits; cosines to the rounding of a d_model-term dot product. Top ids and ranks
are identical wherever the logits separate the tokens by more than the logits'
tolerance; only the order of near-tied tokens may differ.
"""

from __future__ import annotations

import pytest
import torch

from layers_core import metrics
from layers_core.hooks.capture import capture_residuals
from layers_core.lens import layer_sweep
from layers_core.lens import lens as lens_module
from layers_core.lens.lens import Lens
from layers_core.lens.logit_stats import row_stats
from layers_core.lens.vocab_tiles import TilePlan, VocabTiles, plan_tiles
from layers_core.models.architecture import model_parts
from tests import tiny_models
from tests.tolerances import (
    assert_rank_within,
    assert_same_top_ids,
    bits,
    fp32_tol,
    lens_logit_tol,
    log_prob_tol,
)

# Many small tiles and ragged row blocks, so every merge path runs on a 320-token vocabulary.
SMALL_TILES = TilePlan(width=64, row_block=5)
# The smallest positive fp32: probabilities below it underflow to 0 in either computation.
TINY = torch.finfo(torch.float32).tiny


def _setup(family: str, seq_len: int = 9, batch: int = 1, seed: int = 0):
    model = tiny_models.build_model(family)
    parts = model_parts(model)
    ids = torch.randint(3, tiny_models.VOCAB_SIZE, (batch, seq_len), generator=torch.Generator().manual_seed(seed))
    return model, parts, Lens(parts), ids


def _reference_answer(lens: Lens, resid: torch.Tensor, answer_id: int | None, k: int) -> dict:
    """Per-layer answer measures of one prompt's last position, one metrics call at a time."""
    n_layers = resid.shape[0] - 1
    final = lens.logits(resid[n_layers], n_layers)
    # Ranks are judged on these logits (assert_rank_within), not on one computation's count.
    out = {"entropy": [], "ids": [], "probs": [], "kl": [], "cos": [], "p": [], "logits": [],
           "final": final, "d_model": resid.shape[-1]}
    for layer in range(n_layers + 1):
        logits = lens.logits(resid[layer], layer)
        probs, ids = metrics.top_k(logits, k)
        out["logits"].append(logits)
        out["entropy"].append(float(metrics.entropy_bits(logits)))
        out["ids"].append(ids.tolist())
        out["probs"].append(probs.tolist())
        out["kl"].append(float(metrics.kl_bits(final, logits)))
        out["cos"].append(float(metrics.cosine_similarity(resid[layer], resid[n_layers])))
        if answer_id is not None:
            out["p"].append(float(torch.softmax(logits, -1)[answer_id]))
    return out


def _assert_answer_matches(sweep: layer_sweep.AnswerSweep, ref: dict, answer_id: int | None,
                           logit_err: float) -> None:
    """``sweep`` equals ``ref`` to rounding; ``logit_err``: how far either side's logits may be off."""
    for layer, logits in enumerate(ref["logits"]):
        assert_same_top_ids(sweep.top_ids[layer], ref["ids"][layer], logits, logit_err)
        # log p = x - logsumexp(x): off by the logits' error twice, and by its own rounding.
        row = log_prob_tol(logits, logit_err=logit_err)
        assert sweep.entropy_bits[layer] == pytest.approx(ref["entropy"][layer], abs=bits(row))
        # d p / p = d log p: probabilities are compared relative to themselves.
        assert sweep.top_probs[layer] == pytest.approx(ref["probs"][layer], rel=row, abs=TINY)
        # KL(final || layer) reads the logits of two rows, each off by logit_err.
        kl = log_prob_tol(ref["final"], logits, logit_err=2 * logit_err)
        assert sweep.kl_to_final_bits[layer] == pytest.approx(ref["kl"][layer], abs=bits(kl))
        if answer_id is not None:
            assert sweep.p_answer[layer] == pytest.approx(ref["p"][layer], rel=row, abs=TINY)
            assert_rank_within(sweep.answer_rank[layer], logits, answer_id, logit_err)
    # |a . b| <= |a| |b|: a cosine is a d_model-term dot product rounded at magnitude 1.
    assert sweep.cosine_to_final == pytest.approx(ref["cos"], abs=fp32_tol(1.0, n_terms=ref["d_model"]))
    if answer_id is None:
        assert sweep.p_answer is None and sweep.answer_rank is None
    else:
        assert all(isinstance(r, int) for r in sweep.answer_rank)


def _assert_records_match(records: layer_sweep.PositionRecords, lens: Lens, resid: torch.Tensor, k: int,
                          logit_err: float) -> None:
    for layer in range(resid.shape[0]):
        logits = lens.logits(resid[layer], layer)
        probs, ids = metrics.top_k(logits, k)
        entropy = metrics.entropy_bits(logits).tolist()
        for pos in range(logits.shape[0]):
            row = log_prob_tol(logits[pos], logit_err=logit_err)
            assert_same_top_ids(records.top_ids[layer][pos], ids[pos].tolist(), logits[pos], logit_err)
            assert records.entropy_bits[layer][pos] == pytest.approx(entropy[pos], abs=bits(row))
            assert records.top_probs[layer][pos] == pytest.approx(probs[pos].tolist(), rel=row, abs=TINY)


@pytest.mark.parametrize("family", tiny_models.FAMILIES)
@pytest.mark.parametrize("plan", [None, SMALL_TILES], ids=["default-tiles", "small-tiles"])
def test_sweep_prompt_equals_reference(family, plan):
    model, parts, lens, ids = _setup(family)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    resid = resid[:, 0]
    logit_err = lens_logit_tol(lens, resid)
    answer_id = 42
    sweep = layer_sweep.sweep_prompt(lens, resid, answer_id, answer_k=20, record_k=5, plan=plan)
    ref = _reference_answer(lens, resid[:, -1], answer_id, 20)
    _assert_answer_matches(sweep.answer, ref, answer_id, logit_err)
    _assert_records_match(sweep.records, lens, resid, 5, logit_err)
    torch.testing.assert_close(sweep.final_logits, ref["final"], rtol=0, atol=logit_err)
    assert sweep.answer.kl_to_final_bits[-1] == 0.0  # exactly: the last layer is its own reference


@pytest.mark.parametrize("mode", ["raw", "next-block"])
def test_other_lens_modes_equal_reference(mode):
    model, parts, _, ids = _setup("gemma2")
    lens = Lens(parts, mode=mode)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    resid = resid[:, 0]
    logit_err = lens_logit_tol(lens, resid)
    sweep = layer_sweep.sweep_prompt(lens, resid, 7, plan=SMALL_TILES)
    _assert_answer_matches(sweep.answer, _reference_answer(lens, resid[:, -1], 7, 20), 7, logit_err)
    _assert_records_match(sweep.records, lens, resid, 5, logit_err)


def test_records_answer_row_matches_answer_sweep():
    model, parts, lens, ids = _setup("llama", seq_len=12)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    sweep = layer_sweep.sweep_prompt(lens, resid[:, 0], None, plan=SMALL_TILES)
    # Both read the same logit tiles, so ids are identical and only the entropy's own
    # reduction (other row blocks, so other kernel shapes) may round differently.
    for layer, row in enumerate(sweep.records.entropy_bits):
        logits = lens.logits(resid[layer, 0, -1], layer)
        assert row[-1] == pytest.approx(sweep.answer.entropy_bits[layer], abs=bits(log_prob_tol(logits)))
    assert [row[-1] for row in sweep.records.top_ids] == [ids[:5] for ids in sweep.answer.top_ids]


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_sweep_last_positions_batch_equals_reference(family):
    model, parts, lens, ids = _setup(family, seq_len=6, batch=3, seed=1)
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # a left-padded row
    resid, _ = capture_residuals(model, parts, ids, attention_mask=mask, positions="last")
    resid = resid[:, :, 0]
    logit_err = lens_logit_tol(lens, resid)
    answer_ids = [5, None, 300]
    sweeps = layer_sweep.sweep_last_positions(lens, resid, answer_ids)
    for row, (sweep, answer_id) in enumerate(zip(sweeps, answer_ids, strict=True)):
        ref = _reference_answer(lens, resid[:, row], answer_id, 20)
        _assert_answer_matches(sweep, ref, answer_id, logit_err)


@pytest.mark.parametrize("plan", [SMALL_TILES, TilePlan(width=320, row_block=1)], ids=["many-slices", "one-slice"])
def test_tile_sizes_do_not_change_the_numbers(plan):
    model, parts, lens, ids = _setup("qwen2", seq_len=5, batch=2)
    resid, _ = capture_residuals(model, parts, ids, positions="last")
    resid = resid[:, :, 0]
    logit_err = lens_logit_tol(lens, resid)
    answer_ids = [4, 300]
    default = layer_sweep.sweep_last_positions(lens, resid, answer_ids)
    tiled = layer_sweep.sweep_last_positions(lens, resid, answer_ids, plan=plan)
    for row, (a, b) in enumerate(zip(default, tiled, strict=True)):
        final = lens.logits(resid[-1, row], parts.n_layers)
        for layer in range(parts.n_layers + 1):
            # Other slice widths are other matmul shapes: the logits agree to logit_err,
            # so ids and ranks agree except among tokens that close.
            logits = lens.logits(resid[layer, row], layer)
            assert_same_top_ids(b.top_ids[layer], a.top_ids[layer], logits, logit_err)
            assert_rank_within(a.answer_rank[layer], logits, answer_ids[row], logit_err)
            assert_rank_within(b.answer_rank[layer], logits, answer_ids[row], logit_err)
            tol = log_prob_tol(logits, logit_err=logit_err)
            assert a.entropy_bits[layer] == pytest.approx(b.entropy_bits[layer], abs=bits(tol))
            assert a.p_answer[layer] == pytest.approx(b.p_answer[layer], rel=tol, abs=TINY)
            kl = log_prob_tol(final, logits, logit_err=2 * logit_err)
            assert a.kl_to_final_bits[layer] == pytest.approx(b.kl_to_final_bits[layer], abs=bits(kl))


def test_tied_logits_fall_back_to_the_plain_metrics():
    # Unembedding rows repeated every 7 tokens: every logit ties with dozens of others.
    model, parts, lens, ids = _setup("mistral")
    with torch.no_grad():
        head = parts.unembed.weight
        head.copy_(head[torch.arange(head.shape[0]) % 7])
    lens = Lens(parts)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    resid = resid[:, 0]
    logit_err = lens_logit_tol(lens, resid)
    # The tiles cannot settle these rows on their own: the fallback really runs.
    assert not row_stats(lens.logits(resid[-1], parts.n_layers), 5, SMALL_TILES.width).exact.all()
    sweep = layer_sweep.sweep_prompt(lens, resid, 3, plan=SMALL_TILES)
    _assert_records_match(sweep.records, lens, resid, 5, logit_err)
    _assert_answer_matches(sweep.answer, _reference_answer(lens, resid[:, -1], 3, 20), 3, logit_err)


def test_sweep_is_deterministic():
    model, parts, lens, ids = _setup("phi3")
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    first = layer_sweep.sweep_prompt(lens, resid[:, 0], 11)
    second = layer_sweep.sweep_prompt(lens, resid[:, 0], 11)
    assert first.answer == second.answer
    assert first.records == second.records


def test_answer_ids_must_match_the_batch():
    model, parts, lens, ids = _setup("llama", batch=2)
    resid, _ = capture_residuals(model, parts, ids, positions="last")
    with pytest.raises(ValueError, match="2"):
        layer_sweep.sweep_last_positions(lens, resid[:, :, 0], [1])


def test_cpu_tiles_fit_the_cache_and_other_devices_take_the_whole_vocabulary():
    cpu = plan_tiles(640, 262144, "cpu")
    assert cpu.width % 64 == 0 and cpu.width * 640 * 4 <= 8 * 2**20
    assert cpu.width * cpu.row_block * 4 <= 8 * 2**20
    assert plan_tiles(640, 262144, "cuda").width == 262144


def test_records_tiles_never_hold_more_than_one_layer_of_logits():
    model, parts, lens, ids = _setup("llama", seq_len=4)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    tiles = VocabTiles(lens, TilePlan(width=64, row_block=1000))
    records = layer_sweep._RecordsPass(tiles, resid[:, 0], 5, None)
    largest = max(b - a for a, b in records.bounds) * tiles.plan.width
    # The logits tile and its scratch twin: each at most a quarter of one layer's [T, V].
    assert largest <= 4 * tiny_models.VOCAB_SIZE // layer_sweep.RECORDS_TILE_SHARE
    assert len(records.bounds) > 1
    assert all(stats.scratch is records.scratch for stats in records.stats)


def test_chunked_normalisation_equals_one_call(monkeypatch):
    model, parts, lens, ids = _setup("llama", seq_len=6)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    whole = lens.normalise_stack(resid[:, 0])
    monkeypatch.setattr(lens_module, "NORMALISE_CHUNK_BYTES", resid[0].numel() * 4 * 2)
    chunked = lens.normalise_stack(resid[:, 0])
    assert torch.equal(whole, chunked)
    expected = torch.stack([lens._normalise(resid[layer, 0], layer) for layer in range(resid.shape[0])])
    assert torch.equal(chunked, expected)
