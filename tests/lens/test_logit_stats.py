"""Tiled entropy and top-k against the plain metrics functions, on hand-made logits.

Both sides read the very same logits, so ids and ranks (exact comparisons of equal
values) are identical; sums are taken in another order, so entropies, KLs,
normalisers and probabilities agree to fp32 rounding: ``tests.tolerances.log_prob_tol``
of the logits, relative for probabilities.
"""

from __future__ import annotations

import math

import pytest
import torch

from layers_core import metrics
from layers_core.lens import logit_stats
from layers_core.lens.logit_stats import AnswerTileStats, Scratch, TileStats, row_stats
from tests.tolerances import bits, fp32_tol, log_prob_scale, log_prob_tol, max_abs


def _logits(rows: int, vocab: int, seed: int = 0, scale: float = 4.0) -> torch.Tensor:
    return scale * torch.randn(rows, vocab, generator=torch.Generator().manual_seed(seed))


# 16 and 24 make 64 and 43 tiles: several compactions, the last one ragged.
@pytest.mark.parametrize("width", [16, 24, 64, 128, 320, 1024])
def test_row_stats_match_metrics(width):
    logits = _logits(7, 1024)
    stats = row_stats(logits, 5, width)
    probs, ids = metrics.top_k(logits, 5)
    tol = log_prob_tol(logits)
    assert stats.exact.all()
    assert torch.equal(stats.top_ids, ids)
    torch.testing.assert_close(stats.top_probs, probs, rtol=tol, atol=0)
    # Compared with fp64: the tiled sums are at least as accurate as one fp32 log_softmax.
    entropy64 = metrics.entropy_bits(logits.double())
    torch.testing.assert_close(stats.entropy_bits.double(), entropy64, rtol=0, atol=bits(tol))
    # logsumexp = max + log(sum): rounded at the largest logit, plus the sum's own rounding.
    lse_tol = fp32_tol(max_abs(logits)) + tol
    torch.testing.assert_close(stats.log_normaliser, torch.logsumexp(logits, -1), rtol=0, atol=lse_tol)


def test_tiles_in_any_order_give_the_same_result():
    logits = _logits(3, 512, seed=1)
    forward, backward = TileStats(3, 512, 4), TileStats(3, 512, 4)
    starts = list(range(0, 512, 128))
    for start in starts:
        forward.add(logits[:, start:start + 128].clone(), start)
    for start in reversed(starts):
        backward.add(logits[:, start:start + 128].clone(), start)
    a, b = forward.finish(), backward.finish()
    assert torch.equal(a.top_ids, b.top_ids)
    # The tiles' sums are combined in the other order.
    torch.testing.assert_close(a.entropy_bits, b.entropy_bits, rtol=0, atol=bits(log_prob_tol(logits)))


def test_ties_are_ordered_by_id_or_flagged():
    # Every logit takes one of 4 values: the top-5 is full of ties across tiles.
    logits = (torch.arange(1024) % 4).float().repeat(2, 1)
    logits[1, 700] = 10.0  # row 1 has a unique winner, then ties again
    stats = row_stats(logits, 5, 256)
    probs, ids = metrics.top_k(logits, 5)
    resolved = stats.exact
    # A row the groups cannot settle is flagged, never silently wrong.
    assert torch.equal(stats.top_ids[resolved], ids[resolved])
    assert not resolved.all()


def test_parts_are_compacted_and_ties_across_compactions_keep_id_order():
    logits = _logits(2, 1024, seed=4, scale=1.0)
    logits[:, [5, 300, 900]] = 9.0  # a three-way tie for first, in tiles that compact separately
    stats = TileStats(2, 1024, 4)
    for start in range(0, 1024, 32):
        stats.add(logits[:, start:start + 32].clone(), start)
        assert len(stats._parts["values"]) < logit_stats.COMPACT_AFTER
    result = stats.finish()
    probs, ids = metrics.top_k(logits, 4)
    assert result.exact.all()
    assert result.top_ids[:, :3].tolist() == [[5, 300, 900]] * 2
    assert torch.equal(result.top_ids, ids)
    torch.testing.assert_close(result.top_probs, probs, rtol=log_prob_tol(logits), atol=0)


def test_ties_above_the_kth_place_are_exact():
    logits = torch.full((1, 256), -5.0)
    logits[0, [3, 9, 130]] = 2.0  # three tied winners in two tiles, nothing tied with the 3rd
    stats = row_stats(logits, 3, 128)
    assert stats.exact.all()
    assert stats.top_ids.tolist() == [[3, 9, 130]]


def test_minus_inf_logits_count_as_probability_zero():
    logits = _logits(3, 256)
    logits[0, :10] = -math.inf
    logits[2] = -math.inf  # no distribution at all
    stats = row_stats(logits, 3, 64)
    probs, ids = metrics.top_k(logits[:2], 3)
    assert stats.exact.tolist() == [True, True, False]
    tol = bits(log_prob_tol(logits[:2]))
    torch.testing.assert_close(stats.entropy_bits[:2], metrics.entropy_bits(logits[:2]), rtol=0, atol=tol)
    assert torch.equal(stats.top_ids[:2], ids)


def test_very_negative_logits_lose_nothing():
    # Shifted logits far below exp's normal range (as at layer 0) are clamped before exp.
    logits = torch.cat([torch.tensor([[0.0, -1.0]]), torch.full((1, 254), -500.0)], dim=1)
    stats = row_stats(logits, 2, 64)
    # e**-500 is 0 in fp32 (and its clamped e**-87 adds under 1e-36): only the two live tokens
    # carry probability, so they set the scale; the sum still runs over all 256 terms.
    live = logits[:, :2]
    tol = fp32_tol(log_prob_scale(live), n_terms=logits.shape[-1])
    torch.testing.assert_close(stats.entropy_bits, metrics.entropy_bits(logits.double()).float(), rtol=0,
                               atol=bits(tol))
    torch.testing.assert_close(stats.top_probs, metrics.top_k(logits, 2)[0], rtol=tol, atol=0)


def test_k_larger_than_some_tiles():
    logits = _logits(2, 320)
    stats = row_stats(logits, 20, 16)  # tiles narrower than the 20 wanted
    probs, ids = metrics.top_k(logits, 20)
    assert stats.exact.all()
    assert torch.equal(stats.top_ids, ids)


def test_missing_tiles_are_refused():
    stats = TileStats(1, 256, 2)
    stats.add(torch.zeros(1, 128), 0)
    with pytest.raises(ValueError, match="covered 128 of 256"):
        stats.finish()


@pytest.mark.parametrize("reverse", [False, True], ids=["answers-first", "answers-last"])
def test_answer_tile_stats_match_metrics(reverse):
    layers, batch, vocab = 4, 3, 512
    logits = _logits(layers * batch, vocab, seed=2).view(layers, batch, vocab)
    answer_ids = torch.tensor([5, 300, 511])
    stats = AnswerTileStats(layers, batch, vocab, 6, answer_ids)
    starts = list(range(0, vocab, 128))
    for start in reversed(starts) if reverse else starts:  # answers-last: tiles wait for the answer logits
        stats.add(logits[..., start:start + 128].reshape(layers * batch, -1).clone(), start)
    result = stats.finish()
    for layer in range(layers):
        for row in range(batch):
            x = logits[layer, row]
            assert int(result.rank[layer, row]) == int(metrics.token_rank(x, int(answer_ids[row])))
            kl = float(metrics.kl_bits(logits[-1, row].double(), x.double()))
            tol = bits(log_prob_tol(logits[-1, row], x))
            assert float(result.kl_bits[layer, row]) == pytest.approx(kl, abs=tol)
    assert torch.equal(result.kl_bits[-1], torch.zeros(batch))  # exactly: the last layer is the reference
    probs, ids = metrics.top_k(logits.reshape(-1, vocab), 6)
    assert torch.equal(result.rows.top_ids, ids)


def test_answer_tile_stats_refuse_a_missing_answer_tile():
    stats = AnswerTileStats(2, 1, 256, 3, torch.tensor([200]))
    stats.add(torch.zeros(2, 128), 0)
    with pytest.raises(ValueError, match="answer"):
        stats.finish()


def test_scratch_is_one_buffer_reused_for_any_shape():
    scratch = Scratch()
    big = scratch.like(torch.empty(4, 8))
    small = scratch.like(torch.empty(2, 3))
    assert small.shape == (2, 3) and small.untyped_storage().data_ptr() == big.untyped_storage().data_ptr()
    wider = scratch.like(torch.empty(5, 8))
    assert wider.shape == (5, 8)
    scratch.release()
    assert scratch.like(torch.empty(1, dtype=torch.float64)).dtype == torch.float64


def test_statistics_sharing_a_scratch_equal_private_ones():
    logits = torch.randn(6, 300, generator=torch.Generator().manual_seed(3))
    shared = Scratch()
    first, second = TileStats(3, 300, 4, shared), TileStats(3, 300, 4, shared)
    for start in range(0, 300, 64):
        first.add(logits[:3, start:start + 64].clone(), start)
        second.add(logits[3:, start:start + 64].clone(), start)
    for rows, stats in ((logits[:3], first), (logits[3:], second)):
        expected = row_stats(rows, 4, 300)  # one 300-wide tile against five 64-wide ones
        got = stats.finish()
        assert torch.equal(got.top_ids, expected.top_ids)
        tol = bits(log_prob_tol(rows))
        torch.testing.assert_close(got.entropy_bits, expected.entropy_bits, rtol=0, atol=tol)
