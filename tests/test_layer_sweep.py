"""The tiled, fused sweeps against a straightforward reference built from the plain metrics.

The reference decodes each layer with ``Lens.logits`` and measures it with
``layers_core.metrics`` one function at a time, as the first version of the
sweep did. Top ids and ranks must be identical; probabilities, entropies, KL
and cosines equal to fp32 rounding.
"""

from __future__ import annotations

import pytest
import torch

import tiny_models
from layers_core import layer_sweep, metrics
from layers_core import lens as lens_module
from layers_core.architecture import model_parts
from layers_core.capture import capture_residuals
from layers_core.lens import Lens
from layers_core.logit_stats import row_stats
from layers_core.vocab_tiles import TilePlan, VocabTiles, plan_tiles

TOL = 1e-5
# Many small tiles and ragged row blocks, so every merge path runs on a 320-token vocabulary.
SMALL_TILES = TilePlan(width=64, row_block=5)


def _setup(family: str, seq_len: int = 9, batch: int = 1, seed: int = 0):
    model = tiny_models.build_model(family)
    parts = model_parts(model)
    ids = torch.randint(3, tiny_models.VOCAB_SIZE, (batch, seq_len), generator=torch.Generator().manual_seed(seed))
    return model, parts, Lens(parts), ids


def _reference_answer(lens: Lens, resid: torch.Tensor, answer_id: int | None, k: int) -> dict:
    """Per-layer answer measures of one prompt's last position, one metrics call at a time."""
    n_layers = resid.shape[0] - 1
    final = lens.logits(resid[n_layers], n_layers)
    out = {"entropy": [], "ids": [], "probs": [], "kl": [], "cos": [], "p": [], "rank": []}
    for layer in range(n_layers + 1):
        logits = lens.logits(resid[layer], layer)
        probs, ids = metrics.top_k(logits, k)
        out["entropy"].append(float(metrics.entropy_bits(logits)))
        out["ids"].append(ids.tolist())
        out["probs"].append(probs.tolist())
        out["kl"].append(float(metrics.kl_bits(final, logits)))
        out["cos"].append(float(metrics.cosine_similarity(resid[layer], resid[n_layers])))
        if answer_id is not None:
            out["p"].append(float(torch.softmax(logits, -1)[answer_id]))
            out["rank"].append(int(metrics.token_rank(logits, answer_id)))
    return out


def _assert_answer_matches(sweep: layer_sweep.AnswerSweep, ref: dict, answer_id: int | None) -> None:
    assert sweep.top_ids == ref["ids"]
    assert sweep.entropy_bits == pytest.approx(ref["entropy"], abs=TOL)
    assert sweep.top_probs == [pytest.approx(p, abs=TOL) for p in ref["probs"]]
    assert sweep.kl_to_final_bits == pytest.approx(ref["kl"], abs=TOL)
    assert sweep.cosine_to_final == pytest.approx(ref["cos"], abs=1e-6)
    if answer_id is None:
        assert sweep.p_answer is None and sweep.answer_rank is None
    else:
        assert sweep.answer_rank == ref["rank"]
        assert sweep.p_answer == pytest.approx(ref["p"], abs=TOL)
        assert all(isinstance(r, int) for r in sweep.answer_rank)


def _assert_records_match(records: layer_sweep.PositionRecords, lens: Lens, resid: torch.Tensor, k: int) -> None:
    for layer in range(resid.shape[0]):
        logits = lens.logits(resid[layer], layer)
        probs, ids = metrics.top_k(logits, k)
        assert records.top_ids[layer] == ids.tolist()
        assert records.entropy_bits[layer] == pytest.approx(metrics.entropy_bits(logits).tolist(), abs=TOL)
        for got, want in zip(records.top_probs[layer], probs.tolist()):
            assert got == pytest.approx(want, abs=TOL)


@pytest.mark.parametrize("family", tiny_models.FAMILIES)
@pytest.mark.parametrize("plan", [None, SMALL_TILES], ids=["default-tiles", "small-tiles"])
def test_sweep_prompt_equals_reference(family, plan):
    model, parts, lens, ids = _setup(family)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    resid = resid[:, 0]
    answer_id = 42
    sweep = layer_sweep.sweep_prompt(lens, resid, answer_id, answer_k=20, record_k=5, plan=plan)
    _assert_answer_matches(sweep.answer, _reference_answer(lens, resid[:, -1], answer_id, 20), answer_id)
    _assert_records_match(sweep.records, lens, resid, 5)
    final = lens.logits(resid[-1, -1], parts.n_layers)
    assert torch.allclose(sweep.final_logits, final, atol=1e-5)
    assert sweep.answer.kl_to_final_bits[-1] == 0.0


@pytest.mark.parametrize("mode", ["raw", "next-block"])
def test_other_lens_modes_equal_reference(mode):
    model, parts, _, ids = _setup("gemma2")
    lens = Lens(parts, mode=mode)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    resid = resid[:, 0]
    sweep = layer_sweep.sweep_prompt(lens, resid, 7, plan=SMALL_TILES)
    _assert_answer_matches(sweep.answer, _reference_answer(lens, resid[:, -1], 7, 20), 7)
    _assert_records_match(sweep.records, lens, resid, 5)


def test_records_answer_row_matches_answer_sweep():
    model, parts, lens, ids = _setup("llama", seq_len=12)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    sweep = layer_sweep.sweep_prompt(lens, resid[:, 0], None, plan=SMALL_TILES)
    last = [row[-1] for row in sweep.records.entropy_bits]
    assert last == pytest.approx(sweep.answer.entropy_bits, abs=1e-6)  # same logits, same arithmetic
    assert [row[-1] for row in sweep.records.top_ids] == [ids[:5] for ids in sweep.answer.top_ids]


@pytest.mark.parametrize("family", ["llama", "gemma3", "gpt2"])
def test_sweep_last_positions_batch_equals_reference(family):
    model, parts, lens, ids = _setup(family, seq_len=6, batch=3, seed=1)
    mask = torch.ones_like(ids)
    mask[0, :2] = 0  # a left-padded row
    resid, _ = capture_residuals(model, parts, ids, attention_mask=mask, positions="last")
    resid = resid[:, :, 0]
    answer_ids = [5, None, 300]
    sweeps = layer_sweep.sweep_last_positions(lens, resid, answer_ids)
    for row, (sweep, answer_id) in enumerate(zip(sweeps, answer_ids)):
        _assert_answer_matches(sweep, _reference_answer(lens, resid[:, row], answer_id, 20), answer_id)


@pytest.mark.parametrize("plan", [SMALL_TILES, TilePlan(width=320, row_block=1)], ids=["many-slices", "one-slice"])
def test_tile_sizes_do_not_change_the_numbers(plan):
    model, parts, lens, ids = _setup("qwen2", seq_len=5, batch=2)
    resid, _ = capture_residuals(model, parts, ids, positions="last")
    resid = resid[:, :, 0]
    default = layer_sweep.sweep_last_positions(lens, resid, [4, 300])
    tiled = layer_sweep.sweep_last_positions(lens, resid, [4, 300], plan=plan)
    for a, b in zip(default, tiled):
        assert a.top_ids == b.top_ids and a.answer_rank == b.answer_rank
        assert a.entropy_bits == pytest.approx(b.entropy_bits, abs=TOL)
        assert a.kl_to_final_bits == pytest.approx(b.kl_to_final_bits, abs=TOL)
        assert a.p_answer == pytest.approx(b.p_answer, abs=TOL)


def test_tied_logits_fall_back_to_the_plain_metrics():
    # Unembedding rows repeated every 7 tokens: every logit ties with dozens of others.
    model, parts, lens, ids = _setup("mistral")
    with torch.no_grad():
        head = parts.unembed.weight
        head.copy_(head[torch.arange(head.shape[0]) % 7])
    lens = Lens(parts)
    resid, _ = capture_residuals(model, parts, ids, positions="all")
    resid = resid[:, 0]
    # The tiles cannot settle these rows on their own: the fallback really runs.
    assert not row_stats(lens.logits(resid[-1], parts.n_layers), 5, SMALL_TILES.width).exact.all()
    sweep = layer_sweep.sweep_prompt(lens, resid, 3, plan=SMALL_TILES)
    _assert_records_match(sweep.records, lens, resid, 5)
    _assert_answer_matches(sweep.answer, _reference_answer(lens, resid[:, -1], 3, 20), 3)


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
