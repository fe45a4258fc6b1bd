"""Pure measurements on logits: entropy, KL, top-k, ranks, milestones.

Every function takes tensors (or plain sequences) and returns numbers; none
touches a model. Half-precision inputs are upcast to fp32 first so fp16/bf16
models get the same arithmetic as fp32 ones; fp64 inputs stay fp64.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor

LN2 = math.log(2.0)

# Key depths the seeds sampled, as fractions of n_layers (numerator, denominator).
_KEY_FRACTIONS = ((0, 1), (1, 6), (1, 3), (1, 2), (2, 3), (5, 6), (1, 1))

MILESTONE_KEYS = (
    "first_rank_le_10",
    "first_rank_le_5",
    "first_rank1",
    "first_p_answer_gt_0_5",
    "first_kl_below_1_bit",
)

DEFAULT_TEMPERATURES = (0.1, 0.5, 1.0, 2.0)
REL_DEPTH_DECIMALS = 6


def _upcast(x: Tensor) -> Tensor:
    """fp16/bf16 (and integer) tensors to fp32; fp32 and fp64 unchanged."""
    if x.dtype in (torch.float32, torch.float64):
        return x
    return x.float()


def entropy_bits(logits: Tensor) -> Tensor:
    """Shannon entropy of softmax(logits) over the last dimension, in bits.

    ``-inf`` logits are tokens with probability 0 and contribute 0 (not NaN);
    a row that is ``-inf`` everywhere is no distribution and gives NaN.

    Args:
        logits: ``[..., V]`` logits of any float dtype.

    Returns:
        ``[...]`` entropies in bits (fp32, or fp64 for fp64 input).
    """
    log_p = torch.log_softmax(_upcast(logits), dim=-1)
    p = log_p.exp()
    # p * log p is 0 * -inf = NaN where p == 0; its limit is 0.
    terms = torch.where(p > 0, p * log_p, torch.zeros_like(p))
    # Never negative; rounding on a one-hot row can give -1e-9 (printed '-0.000000').
    return (-terms.sum(dim=-1) / LN2).clamp_min(0.0)


def kl_bits(p_logits: Tensor, q_logits: Tensor) -> Tensor:
    """KL(P || Q) in bits over the last dimension, P = softmax(p_logits), Q = softmax(q_logits).

    P is the reference (e.g. the final layer), Q the approximation (e.g. an
    earlier layer). Tiny negative values from rounding are clamped to 0. Where
    P puts mass on a token Q gives probability 0, the result is ``inf``.

    Args:
        p_logits: ``[..., V]`` reference logits.
        q_logits: ``[..., V]`` logits broadcastable against ``p_logits``.

    Returns:
        ``[...]`` divergences in bits.
    """
    log_p = torch.log_softmax(_upcast(p_logits), dim=-1)
    log_q = torch.log_softmax(_upcast(q_logits), dim=-1)
    p = log_p.exp()
    terms = torch.where(p > 0, p * (log_p - log_q), torch.zeros_like(p))
    return (terms.sum(dim=-1) / LN2).clamp_min(0.0)


def top_k(logits: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k most likely tokens: probabilities and ids, descending.

    Order is by logit, highest first; equal logits put the lower token id first,
    so the result never depends on how ``torch.topk`` breaks ties on a device.
    ``k`` larger than the vocabulary is clamped to the vocabulary size.

    Args:
        logits: ``[..., V]`` logits.
        k: how many tokens (at least 1).

    Returns:
        ``(probs, ids)``, each ``[..., k]``; probs are softmax probabilities of
        the full distribution (fp32, or fp64 for fp64 input), ids are int64.
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    logits = _upcast(logits)
    vocab = logits.shape[-1]
    k = min(k, vocab)
    flat = logits.reshape(-1, vocab)
    ids = _ordered_top_ids(flat, k)
    # exp(logit - logsumexp) for the k chosen only: no second [N, V] softmax tensor.
    probs = (flat.gather(-1, ids) - torch.logsumexp(flat, dim=-1, keepdim=True)).exp()
    out_shape = (*logits.shape[:-1], k)
    return probs.reshape(out_shape), ids.reshape(out_shape)


def _ordered_top_ids(flat: Tensor, k: int) -> Tensor:
    """Top-k ids of each row of ``flat`` [N, V], by logit desc then id asc."""
    _, candidates = torch.topk(flat, k, dim=-1)
    # Put the candidates in id order, then a stable sort by value keeps lower ids first on ties.
    candidates, _ = torch.sort(candidates, dim=-1)
    values = flat.gather(-1, candidates)
    order = torch.sort(values, dim=-1, descending=True, stable=True).indices
    ids = candidates.gather(-1, order)
    # topk may pick any of several tokens tied at the k-th value; such rows get a full stable sort.
    kth = values.gather(-1, order[:, -1:])
    ambiguous = (flat >= kth).sum(dim=-1) > k
    if bool(ambiguous.any()):
        full = torch.sort(flat[ambiguous], dim=-1, descending=True, stable=True).indices
        ids[ambiguous] = full[:, :k]
    return ids


def token_rank(logits: Tensor, token_id: int | Tensor) -> Tensor:
    """Rank of ``token_id`` in each distribution; 1 = the most likely token.

    rank = 1 + the number of tokens with a strictly greater logit, so tokens tied
    with the target do not push it down (competition ranking "1224"). A token
    tied for first therefore has rank 1 even if ``top_k`` lists a lower id first.

    Args:
        logits: ``[..., V]`` logits.
        token_id: an int, or an integer tensor broadcastable to ``logits.shape[:-1]``.

    Returns:
        ``[...]`` int64 ranks.
    """
    logits = _upcast(logits)
    index = torch.as_tensor(token_id, dtype=torch.long, device=logits.device)
    index = index.expand(logits.shape[:-1]).unsqueeze(-1)
    target = logits.gather(-1, index)
    return (logits > target).sum(dim=-1) + 1


def cosine_similarity(a: Tensor, b: Tensor) -> Tensor:
    """Cosine similarity over the last dimension, computed in fp32 (fp64 stays fp64).

    A zero vector has similarity 0 with anything (torch's eps guard).
    """
    return torch.nn.functional.cosine_similarity(_upcast(a), _upcast(b), dim=-1)


@dataclass(frozen=True)
class Milestone:
    """The first layer where a condition holds; both fields None when it never does."""

    layer: int | None
    rel_depth: float | None

    def as_dict(self) -> dict[str, int | float | None]:
        """``{"layer": ..., "rel_depth": ...}`` for JSON."""
        return asdict(self)


def rel_depth(layer: int, n_layers: int) -> float:
    """``layer / n_layers`` rounded to 6 decimals; layer n_layers (the final block output) is 1.0."""
    return round(layer / n_layers, REL_DEPTH_DECIMALS)


def _as_list(values: Sequence[float] | Tensor) -> list:
    return values.tolist() if isinstance(values, Tensor) else list(values)


def _first(values: list | None, holds: Callable[[float], bool], n_layers: int) -> Milestone:
    if values is None:
        return Milestone(None, None)
    for layer, value in enumerate(values):
        if value is not None and holds(value):
            return Milestone(layer, rel_depth(layer, n_layers))
    return Milestone(None, None)


def milestones(
    answer_ranks: Sequence[int] | Tensor | None,
    p_answer: Sequence[float] | Tensor | None,
    kl_to_final_bits: Sequence[float] | Tensor,
    n_layers: int,
) -> dict[str, Milestone]:
    """First layers where the answer gets close, wins, dominates; and where KL drops below 1 bit.

    Each sequence holds one value per layer 0..n_layers (n_layers + 1 values).
    Answer-based milestones are ``Milestone(None, None)`` when ``answer_ranks`` /
    ``p_answer`` is None (the answer could not be aligned to a token).

    Returns:
        A dict with keys ``MILESTONE_KEYS``: first_rank_le_10, first_rank_le_5,
        first_rank1, first_p_answer_gt_0_5 (p > 0.5), first_kl_below_1_bit (KL < 1).
    """
    ranks = None if answer_ranks is None else _as_list(answer_ranks)
    probs = None if p_answer is None else _as_list(p_answer)
    kl = _as_list(kl_to_final_bits)
    for name, values in (("answer_ranks", ranks), ("p_answer", probs), ("kl_to_final_bits", kl)):
        if values is not None and len(values) != n_layers + 1:
            raise ValueError(f"{name} has {len(values)} values, expected n_layers + 1 = {n_layers + 1}")
    return {
        "first_rank_le_10": _first(ranks, lambda r: r <= 10, n_layers),
        "first_rank_le_5": _first(ranks, lambda r: r <= 5, n_layers),
        "first_rank1": _first(ranks, lambda r: r == 1, n_layers),
        "first_p_answer_gt_0_5": _first(probs, lambda p: p > 0.5, n_layers),
        "first_kl_below_1_bit": _first(kl, lambda d: d < 1.0, n_layers),
    }


def copy_collapse_flags(
    top1_ids: Sequence[int] | Tensor,
    p_top1: Sequence[float] | Tensor,
    prompt_ids: Sequence[int] | Tensor,
    threshold: float = 0.9,
) -> list[bool]:
    """Per layer: does the lens put more than ``threshold`` on a token copied from the prompt?

    A layer is flagged when its top-1 token id occurs among ``prompt_ids`` and its
    probability is strictly greater than ``threshold``.
    """
    prompt_set = set(_as_list(prompt_ids))
    tops, probs = _as_list(top1_ids), _as_list(p_top1)
    if len(tops) != len(probs):
        raise ValueError(f"top1_ids has {len(tops)} values but p_top1 has {len(probs)}")
    return [tid in prompt_set and p > threshold for tid, p in zip(tops, probs, strict=True)]


def key_layers(n_layers: int) -> list[int]:
    """Layers 0, L//6, L//3, L//2, 2L//3, 5L//6 and L, sorted, without duplicates.

    The seeds used L-1 as the last; here layer L is the output of the final block,
    i.e. the layer the model's own head reads.
    """
    if n_layers < 1:
        raise ValueError(f"n_layers must be at least 1, got {n_layers}")
    return sorted({n_layers * num // den for num, den in _KEY_FRACTIONS})


def temperature_exploration(
    logits_1d: Tensor,
    temperatures: Sequence[float] = DEFAULT_TEMPERATURES,
    k: int = 5,
) -> list[dict]:
    """How the next-token distribution sharpens or flattens at several temperatures.

    Args:
        logits_1d: ``[V]`` logits of one position.
        temperatures: positive temperatures; logits are divided by each.
        k: how many top tokens to report.

    Returns:
        One dict per temperature: ``temperature``, ``entropy_bits`` (float),
        ``top_ids`` (list[int]) and ``top_probs`` (list[float]); the caller decodes ids.
    """
    if logits_1d.dim() != 1:
        raise ValueError(f"expected 1-D logits, got shape {tuple(logits_1d.shape)}")
    logits = _upcast(logits_1d)
    results = []
    for temperature in temperatures:
        if not temperature > 0:
            raise ValueError(f"temperatures must be positive, got {temperature}")
        scaled = logits / temperature
        probs, ids = top_k(scaled, k)
        results.append({
            "temperature": float(temperature),
            "entropy_bits": float(entropy_bits(scaled)),
            "top_ids": ids.tolist(),
            "top_probs": probs.tolist(),
        })
    return results


def distribution_summary(values: Sequence[float | None]) -> dict[str, float | int | None]:
    """Median and quartiles of the values that were reached (not None).

    Quartiles use numpy's default linear interpolation. ``n`` counts all values,
    ``n_reached`` the non-None ones; median/q1/q3 are None when none was reached.
    Statistics are rounded to 6 decimals like the rest of the artefacts.
    """
    reached = [float(v) for v in values if v is not None]
    summary: dict[str, float | int | None] = {"median": None, "q1": None, "q3": None}
    if reached:
        q1, median, q3 = np.percentile(np.asarray(reached, dtype=np.float64), [25, 50, 75])
        summary = {
            "median": round(float(median), REL_DEPTH_DECIMALS),
            "q1": round(float(q1), REL_DEPTH_DECIMALS),
            "q3": round(float(q3), REL_DEPTH_DECIMALS),
        }
    summary["n"] = len(values)
    summary["n_reached"] = len(reached)
    return summary
