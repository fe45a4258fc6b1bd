"""Float tolerances for the tests, derived from the dtype's precision and the values' magnitude.

Two computations of one quantity in floating point (a tiled sweep and the plain
metrics, a stacked and a per-layer matmul, or the same code on another machine)
agree only up to rounding, and how they round depends on the kernels torch picks:
vector width (AVX2, AVX-512, NEON on Apple Silicon), FMA or not, BLAS blocking,
memory alignment, thread count. So a tolerance comes from the dtype and the
numbers, never from what one machine printed::

    tol = SAFETY * eps(dtype) * scale * sqrt(n_terms)

- ``eps``: the dtype's machine epsilon, the relative spacing of its numbers
  (fp32 ``2**-23`` = 1.19e-7, fp64 ``2**-52`` = 2.2e-16).
- ``scale``: the magnitude at which the rounding happens, which is not always the
  result's: a KL of 0.01 bits summed from log-probabilities near -30 carries the
  rounding of 30, and a sum (a dot product, a logsumexp, an entropy) is rounded
  at the sum of its terms' magnitudes, whatever the sum itself. ``dot_scale``,
  ``log_prob_scale`` and ``weighted_log_prob_scale`` give them.
- ``sqrt(n_terms)``: a sum of ``n`` rounded terms drifts like ``sqrt(n)`` roundings
  of that scale, as rounding errors do not conspire (the worst-case bound grows
  like ``n`` but real kernels do not approach it; Higham, *Accuracy and
  Stability of Numerical Algorithms*, 2nd ed., section 2.8).
- ``SAFETY = 4``: the quantities here come from short chains of operations (shift,
  exp, sum, log, divide), each rounding once more.

For scale: the tiny models of these tests have a 320-token vocabulary, d_model 32
and logits within +-40, so their logits get a tolerance near 1e-4 and a KL or
entropy comparison one near 1e-3 bits, about 100 times what x86 kernels were seen
to differ by. What the tests guard against moves the numbers by far more: a
dropped softcap or a skipped norm by 1e3 to 1e5 tolerances in test_layer_sweep,
a dropped bias or multiplier by 0.1 bits and more. A single token of probability
p left out of a sum moves an entropy by about p |log p|: caught for p above ~1e-4.

Comparisons of ids and ranks stay exact where the logits separate the tokens by
more than the logits' tolerance; ``assert_same_top_ids`` and ``rank_bounds`` only
allow the order of tokens whose logits are that close to differ.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

SAFETY = 4.0


def eps(dtype: torch.dtype = torch.float32) -> float:
    """Machine epsilon of ``dtype``: fp32 1.19e-7, fp64 2.2e-16, bf16 7.8e-3, fp16 9.8e-4."""
    return torch.finfo(dtype).eps


def fp_tol(scale: float, n_terms: int = 1, dtype: torch.dtype = torch.float32) -> float:
    """Absolute tolerance for values rounded at magnitude ``scale`` by a reduction over ``n_terms``.

    ``SAFETY * eps(dtype) * scale * sqrt(n_terms)``; see the module docstring.
    """
    return SAFETY * eps(dtype) * float(scale) * math.sqrt(max(int(n_terms), 1))


def fp32_tol(scale: float, n_terms: int = 1) -> float:
    """``fp_tol`` for float32."""
    return fp_tol(scale, n_terms, torch.float32)


def max_abs(*values: Tensor | Sequence[float] | float) -> float:
    """Largest finite ``|value|`` over all arguments (tensors, sequences or numbers); 0.0 when none."""
    largest = 0.0
    for value in values:
        tensor = torch.as_tensor(value, dtype=torch.float64)
        finite = tensor[torch.isfinite(tensor)]
        if finite.numel():
            largest = max(largest, float(finite.abs().max()))
    return largest


def log_prob_scale(*logits: Tensor) -> float:
    """Magnitude each log-probability ``x - logsumexp(x)`` of ``logits`` is rounded at (nats).

    The largest finite ``|x|`` or ``|log p|`` over every row of every argument, at
    least 1. Tokens at ``-inf`` have probability 0 in every computation and are left out.
    """
    scale = 1.0
    for rows in logits:
        rows = rows.detach().double()
        scale = max(scale, max_abs(rows), max_abs(torch.log_softmax(rows, dim=-1)))
    return scale


def weighted_log_prob_scale(*logits: Tensor) -> float:
    """Sum of the magnitudes of the terms of a probability-weighted sum over the vocabulary (nats).

    Entropy sums ``p log p``, KL sums ``p (log p - log q)`` and logsumexp sums
    ``exp(x - max) <= 1`` (at least one term is 1): the magnitudes of their terms add
    up to at most ``E_p max |log p_row|`` over the rows' distributions (at least 1).
    That, not the largest ``|log p|``, is the scale such a sum is rounded at.
    """
    log_p = [torch.log_softmax(rows.detach().double(), dim=-1) for rows in logits]
    shape = torch.broadcast_shapes(*(lp.shape for lp in log_p))
    log_p = [lp.expand(shape) for lp in log_p]
    magnitude = torch.stack([lp.abs() for lp in log_p]).nan_to_num(posinf=0.0).amax(0)
    scale = 1.0
    for lp in log_p:
        scale = max(scale, float((lp.exp() * magnitude).sum(-1).max()))
    return scale


def log_prob_tol(*logits: Tensor, logit_err: float = 0.0) -> float:
    """Tolerance (nats) on log-probabilities, entropies and KLs of ``logits`` rows (``[..., V]``).

    Three parts: each ``log p = x - logsumexp(x)`` rounded at ``log_prob_scale``; the
    sums over the ``V`` tokens (logsumexp's, and those of entropy and KL) rounded at
    ``weighted_log_prob_scale``; and twice ``logit_err`` when the logits themselves
    come from two computations (``x`` and ``logsumexp(x)`` may each be off by it).
    As a relative tolerance on probabilities: ``dp / p = d log p``. Rounds in fp64 when
    any of ``logits`` is fp64 (``layers_core.metrics`` keeps fp64), else in fp32 (it
    upcasts fp16 and bf16).
    """
    dtype = torch.float64 if any(rows.dtype == torch.float64 for rows in logits) else torch.float32
    vocab = logits[0].shape[-1]
    own = fp_tol(log_prob_scale(*logits), dtype=dtype)
    own += fp_tol(weighted_log_prob_scale(*logits), n_terms=vocab, dtype=dtype)
    return own + 2.0 * logit_err


def bits(nats: float) -> float:
    """A tolerance in nats expressed in bits."""
    return nats / math.log(2.0)


def dot_scale(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> float:
    """``max |x| @ |weight|.T + |bias|``: the magnitude a ``F.linear`` output is rounded at.

    Its rounding is bounded by the sum of its terms' magnitudes, not by its value
    (terms may cancel), whatever the order a kernel sums them in.
    """
    total = x.detach().double().abs() @ weight.detach().double().abs().T
    if bias is not None:
        total = total + bias.detach().double().abs()
    return float(total.max())


def lens_logit_tol(lens, resid: Tensor, first_layer: int = 0) -> float:
    """Tolerance on logits a ``Lens`` decodes from ``resid`` (``[n, ..., d]``, layers from ``first_layer``).

    The unembedding is a dot product over ``d_model`` terms at ``dot_scale`` of the
    normalised rows (times the logit multiplier); a softcap only shrinks errors
    (``|d tanh| <= 1``), so it is left out. The norm's rounding (a few eps relative
    to each input of the product) adds errors of the same size, within SAFETY.
    Rounds in the lens's compute dtype.
    """
    with torch.no_grad():
        normed = lens.normalise_stack(resid, first_layer).to(lens.compute_dtype)
    unembed = lens.parts.unembed
    scale = dot_scale(normed.reshape(-1, normed.shape[-1]), unembed.weight, getattr(unembed, "bias", None))
    multiplier = lens.parts.logit_multiplier if lens.mode != "raw" else None
    if multiplier is not None:
        scale *= abs(multiplier)
    return fp_tol(scale, n_terms=normed.shape[-1], dtype=lens.compute_dtype)


def rank_bounds(logits: Tensor, token_id: int, logit_err: float) -> tuple[int, int]:
    """The ranks ``1 + #{logits > logits[token_id]}`` a second computation of ``logits`` may give.

    Each logit may be off by ``logit_err`` in either computation, so a gap between
    two logits may shrink or grow by ``2 * logit_err``; tokens no closer than that
    to the target's logit are counted as they are. Returns ``(lowest, highest)``;
    equal whenever no logit is that close to the target's.
    """
    x = logits.detach().double()
    gap = x - x[token_id]
    gap[token_id] = -math.inf  # the token itself never counts
    return 1 + int((gap > 2 * logit_err).sum()), 1 + int((gap + 2 * logit_err > 0).sum())


def assert_rank_within(rank: int, logits: Tensor, token_id: int, logit_err: float) -> None:
    """``rank`` is the token's rank in ``logits`` up to tokens tied within ``2 * logit_err`` (exact otherwise)."""
    low, high = rank_bounds(logits, token_id, logit_err)
    assert low <= rank <= high, f"rank {rank} of token {token_id}, expected {low}..{high} (logit tol {logit_err:.2g})"


def assert_same_top_ids(got: Sequence[int], want: Sequence[int], logits: Tensor, logit_err: float) -> None:
    """Top-k ids of a second computation equal the reference's, except among near-tied logits.

    ``want`` and ``logits`` (``[V]``) are the reference's. At every place the two
    lists may name different tokens only if the reference logits of the two are
    within ``2 * logit_err`` (each computation may be off by ``logit_err``); a
    token ahead of its place by a wider gap, or a missing or repeated one, fails.
    """
    got, want = list(got), list(want)
    assert len(got) == len(want), (got, want)
    if got == want:
        return
    assert len(set(got)) == len(got), f"repeated id in {got}"
    x = logits.detach().double()
    gaps = (x[torch.tensor(got)] - x[torch.tensor(want)]).abs()
    wrong = [i for i, gap in enumerate(gaps.tolist()) if gap > 2 * logit_err]
    assert not wrong, (
        f"top ids {got} != {want} at places {wrong}, where the logits differ by "
        f"{gaps.max().item():.3g} > 2 x {logit_err:.2g}"
    )


def assert_same_top1(got_logits: Tensor, want_logits: Tensor, logit_err: float) -> None:
    """Every row's argmax of ``got_logits`` is that of ``want_logits``, or tied with it within ``2 * logit_err``.

    Both ``[..., V]``; judged on ``want_logits`` (the reference).
    """
    want = want_logits.detach().double()
    picked = want.gather(-1, got_logits.argmax(-1, keepdim=True)).squeeze(-1)
    short = want.amax(-1) - picked
    assert bool((short <= 2 * logit_err).all()), (
        f"top-1 differs where the reference's top logit leads by {short.max().item():.3g} > 2 x {logit_err:.2g}"
    )
