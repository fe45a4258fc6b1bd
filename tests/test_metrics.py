"""Metrics checked against numbers worked out by hand.

The metrics compute in fp32 (fp64 for fp64 input), so they equal the hand-worked
values to that dtype's rounding at the magnitude of the log-probabilities
(``tests.tolerances.log_prob_tol``); probabilities relative to themselves.
Milestones, ranks, ids and rounded summaries are exact.
"""

from __future__ import annotations

import math

import pytest
import torch

from layers_core import metrics
from layers_core.metrics import Milestone
from tests.tolerances import bits, fp32_tol, log_prob_tol


def test_entropy_of_uniform_over_four_tokens_is_two_bits():
    logits = torch.zeros(4)
    assert metrics.entropy_bits(logits).item() == pytest.approx(2.0, abs=bits(log_prob_tol(logits)))


def test_entropy_of_two_point_distribution():
    # p = (0.25, 0.75): H = -(0.25 log2 0.25 + 0.75 log2 0.75) = 0.811278 bits.
    logits = torch.log(torch.tensor([0.25, 0.75], dtype=torch.float64))
    assert metrics.entropy_bits(logits).item() == pytest.approx(0.8112781244591328, abs=bits(log_prob_tol(logits)))


def test_entropy_with_minus_inf_logits_has_no_nan():
    logits = torch.tensor([[0.0, 0.0, -math.inf, -math.inf], [5.0, -math.inf, -math.inf, -math.inf]])
    result = metrics.entropy_bits(logits)
    assert not torch.isnan(result).any()
    assert result.tolist() == pytest.approx([1.0, 0.0], abs=bits(log_prob_tol(logits)))


def test_entropy_upcasts_half_precision():
    logits = torch.zeros(2, 8, dtype=torch.bfloat16)
    result = metrics.entropy_bits(logits)
    assert result.dtype == torch.float32
    assert result.tolist() == pytest.approx([3.0, 3.0], abs=bits(log_prob_tol(logits.float())))


def test_kl_of_identical_distributions_is_zero():
    logits = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))
    result = metrics.kl_bits(logits, logits.clone())
    assert (result >= 0).all()
    assert result.max().item() <= bits(log_prob_tol(logits))


def test_kl_matches_closed_form():
    # P = (1/2, 1/2), Q = (1/4, 3/4): KL = 1/2 log2(2) + 1/2 log2(2/3) = 1 - 1/2 log2 3.
    p = torch.log(torch.tensor([0.5, 0.5], dtype=torch.float64))
    q = torch.log(torch.tensor([0.25, 0.75], dtype=torch.float64))
    expected = 1.0 - 0.5 * math.log2(3.0)
    assert metrics.kl_bits(p, q).item() == pytest.approx(expected, abs=bits(log_prob_tol(p, q)))


def test_kl_is_asymmetric_with_reference_first():
    # P = (1, 0) has KL(P||Q) = -log2 Q(0) = 1 bit for Q uniform over 2; KL(Q||P) is infinite.
    p = torch.tensor([0.0, -math.inf])
    q = torch.tensor([0.0, 0.0])
    assert metrics.kl_bits(p, q).item() == pytest.approx(1.0, abs=bits(log_prob_tol(p, q)))
    assert math.isinf(metrics.kl_bits(q, p).item())


def test_top_k_descending_with_probabilities():
    logits = torch.log(torch.tensor([0.1, 0.6, 0.3]))
    probs, ids = metrics.top_k(logits, 2)
    assert ids.tolist() == [1, 2]
    assert probs.tolist() == pytest.approx([0.6, 0.3], rel=log_prob_tol(logits))


def test_top_k_ties_put_lower_id_first():
    logits = torch.tensor([[1.0, 3.0, 3.0, 0.0, 3.0, 2.0]])
    _, ids = metrics.top_k(logits, 4)
    assert ids.tolist() == [[1, 2, 4, 5]]


def test_top_k_tie_at_the_cut_keeps_lowest_ids():
    # 100 equal logits: torch.topk on CPU returns ids 67, 66, 65 here; the rule says 0, 1, 2.
    logits = torch.zeros(2, 100)
    probs, ids = metrics.top_k(logits, 3)
    assert ids.tolist() == [[0, 1, 2], [0, 1, 2]]
    assert probs.flatten().tolist() == pytest.approx([0.01] * 6, rel=log_prob_tol(logits))


def test_top_k_clamps_k_to_vocabulary():
    logits = torch.tensor([0.0, 1.0])
    probs, ids = metrics.top_k(logits, 5)
    assert ids.tolist() == [1, 0]
    # Each probability is off by log_prob_tol relative to itself; they add up to 1.
    assert probs.sum().item() == pytest.approx(1.0, abs=log_prob_tol(logits) + fp32_tol(1.0))


def test_top_k_keeps_batch_shape():
    probs, ids = metrics.top_k(torch.randn(2, 3, 10), 4)
    assert probs.shape == ids.shape == (2, 3, 4)


def test_token_rank_counts_strictly_greater_logits():
    logits = torch.tensor([0.5, 2.0, 2.0, 1.0])
    assert metrics.token_rank(logits, 1).item() == 1
    assert metrics.token_rank(logits, 2).item() == 1  # tied for first: both rank 1
    assert metrics.token_rank(logits, 3).item() == 3
    assert metrics.token_rank(logits, 0).item() == 4


def test_token_rank_over_layers():
    logits = torch.tensor([[3.0, 1.0, 2.0], [0.0, 5.0, 1.0]])
    assert metrics.token_rank(logits, 2).tolist() == [2, 2]
    assert metrics.token_rank(logits, torch.tensor([0, 1])).tolist() == [1, 1]


def test_cosine_similarity_hand_values():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [2.0, 0.0]], dtype=torch.float16)
    b = torch.tensor([[0.0, 3.0], [2.0, 2.0], [-1.0, 0.0]], dtype=torch.float16)
    result = metrics.cosine_similarity(a, b)
    assert result.dtype == torch.float32
    # |a . b| <= |a| |b|: a 2-term dot product rounded at magnitude 1, then normalised.
    assert result.tolist() == pytest.approx([0.0, 1.0, -1.0], abs=fp32_tol(1.0, n_terms=a.shape[-1]))


def test_milestones_first_layer_where_each_condition_holds():
    ranks = [900, 40, 8, 3, 1, 1, 1]
    p_answer = [0.0, 0.01, 0.1, 0.3, 0.6, 0.7, 0.8]
    kl = [9.0, 7.0, 3.0, 1.0, 0.99, 0.2, 0.0]
    result = metrics.milestones(ranks, p_answer, kl, n_layers=6)
    assert result["first_rank_le_10"] == Milestone(2, 0.333333)
    assert result["first_rank_le_5"] == Milestone(3, 0.5)
    assert result["first_rank1"] == Milestone(4, 0.666667)
    assert result["first_p_answer_gt_0_5"] == Milestone(4, 0.666667)
    assert result["first_kl_below_1_bit"] == Milestone(4, 0.666667)  # 1.0 is not below 1
    assert tuple(result) == metrics.MILESTONE_KEYS


def test_milestones_never_reached_and_without_answer():
    kl = torch.tensor([5.0, 4.0, 3.0])
    result = metrics.milestones(None, None, kl, n_layers=2)
    assert all(m == Milestone(None, None) for m in result.values())
    reached = metrics.milestones([3, 2, 1], [0.1, 0.2, 0.9], [2.0, 1.0, 0.0], n_layers=2)
    assert reached["first_rank_le_10"].as_dict() == {"layer": 0, "rel_depth": 0.0}
    assert reached["first_kl_below_1_bit"].as_dict() == {"layer": 2, "rel_depth": 1.0}


def test_milestones_rejects_wrong_length():
    with pytest.raises(ValueError, match="n_layers \\+ 1"):
        metrics.milestones([1, 1], [0.9, 0.9], [0.0, 0.0], n_layers=2)


def test_copy_collapse_flags():
    flags = metrics.copy_collapse_flags(
        top1_ids=[7, 7, 9, 3], p_top1=[0.95, 0.9, 0.99, 0.97], prompt_ids=[3, 7, 11]
    )
    assert flags == [True, False, False, True]  # 0.9 is not above 0.9; 9 is not in the prompt


def test_key_layers():
    assert metrics.key_layers(30) == [0, 5, 10, 15, 20, 25, 30]
    assert metrics.key_layers(18) == [0, 3, 6, 9, 12, 15, 18]
    assert metrics.key_layers(3) == [0, 1, 2, 3]
    assert metrics.key_layers(1) == [0, 1]
    with pytest.raises(ValueError):
        metrics.key_layers(0)


def test_temperature_exploration_sharpens_and_flattens():
    p = (0.5, 0.25, 0.25)
    logits = torch.log(torch.tensor(p))
    results = metrics.temperature_exploration(logits, temperatures=(1.0, 1e-3, 1e3), k=2)
    at_one, cold, hot = results
    assert at_one["temperature"] == 1.0
    tol = log_prob_tol(logits)
    assert at_one["entropy_bits"] == pytest.approx(1.5, abs=bits(tol))
    assert at_one["top_ids"] == [0, 1]
    assert at_one["top_probs"] == pytest.approx([0.5, 0.25], rel=tol)
    # At T = 1e-3 the others get 2**-1000 of the top token's weight: 0 in fp32, so one live
    # token whose log-probability is 0; the entropy is 0 up to the rounding of magnitude 1.
    assert cold["entropy_bits"] == pytest.approx(0.0, abs=bits(fp32_tol(1.0, n_terms=len(p))))
    assert cold["top_probs"][0] == pytest.approx(1.0, rel=fp32_tol(1.0, n_terms=len(p)))
    # At T = 1e3 softmax(log p / T) is proportional to p ** (1 / T): close to uniform, not equal.
    weights = [x ** (1 / 1e3) for x in p]
    hot_probs = [w / sum(weights) for w in weights]
    hot_entropy = -sum(q * math.log2(q) for q in hot_probs)
    assert hot["entropy_bits"] == pytest.approx(hot_entropy, abs=bits(log_prob_tol(logits / 1e3)))


def test_temperature_exploration_defaults_and_validation():
    results = metrics.temperature_exploration(torch.randn(50))
    assert [r["temperature"] for r in results] == [0.1, 0.5, 1.0, 2.0]
    assert all(len(r["top_ids"]) == 5 for r in results)
    with pytest.raises(ValueError):
        metrics.temperature_exploration(torch.randn(5), temperatures=(0.0,))


def test_distribution_summary_linear_quartiles():
    summary = metrics.distribution_summary([0.1, None, 0.2, 0.3, 0.4, None])
    # numpy linear percentiles of (0.1, 0.2, 0.3, 0.4): q1 = 0.175, median = 0.25, q3 = 0.325.
    assert summary == {"median": 0.25, "q1": 0.175, "q3": 0.325, "n": 6, "n_reached": 4}


def test_distribution_summary_nothing_reached():
    summary = metrics.distribution_summary([None, None])
    assert summary == {"median": None, "q1": None, "q3": None, "n": 2, "n_reached": 0}
