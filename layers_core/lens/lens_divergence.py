"""How far a lens is from the model's own output: KL(final || lens) in bits, per layer, and its chunked pieces.

The reference is the model's own next-token distribution at each position; the lens's
distribution at layer l is ``Lens.logits(resid_l, l)``. Full-vocabulary logits are made a
chunk of rows at a time (``rows_per_chunk``) so Gemma's 262k vocabulary fits in memory.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from layers_core.hooks.capture import capture_residuals
from layers_core.lens.fit_progress import Progress, report
from layers_core.lens.lens import Lens
from layers_core.lens.residual_batches import check_windows
from layers_core.metrics import kl_bits
from layers_core.models.architecture import ModelParts

# Bytes of one [rows, V] float32 logits chunk; a chunk's KL holds a few such tensors.
CHUNK_BYTES = 64 * 2**20


def rows_per_chunk(vocab_size: int, chunk_bytes: int = CHUNK_BYTES) -> int:
    """How many rows of ``vocab_size`` float32 logits fit in ``chunk_bytes`` (at least 1)."""
    return max(1, chunk_bytes // (4 * vocab_size))


def kl_nats(target_log_probs: Tensor, logits: Tensor) -> Tensor:
    """KL(P || Q) in nats per row, P given as log-probabilities, Q = softmax(logits); differentiable in ``logits``.

    Args:
        target_log_probs: ``[..., V]`` log P (no grad needed), finite where P > 0.
        logits: ``[..., V]`` float32 logits of Q.
    """
    log_q = torch.log_softmax(logits, dim=-1)
    p = target_log_probs.exp()
    return (p * (target_log_probs - log_q)).sum(-1)


@torch.no_grad()
def kl_by_layer(
    model: nn.Module, parts: ModelParts, lens: Lens, windows: Tensor, *, batch_size: int,
    progress: Progress | None = None,
) -> list[float]:
    """Mean KL(final || lens) in bits at each layer 0..L over every position of ``windows`` but the first.

    The final distribution is the model's own output, so layer L measures the lens's own
    consistency (~0 for every lens, whose layer-L map is the identity).

    Args:
        model: The model ``parts`` and ``lens`` were made from.
        parts: Its parts.
        lens: Any ``Lens`` of this model.
        windows: ``[N, T]`` held-out token ids with no padding.
        batch_size: Windows per forward pass (the model's ``[B, T, V]`` logits are held at once).
        progress: Called with ``("held-out KL (<mode>)", windows done, N)``.

    Returns:
        ``L + 1`` floats (bits).
    """
    check_windows(windows)
    totals = torch.zeros(parts.n_layers + 1, dtype=torch.float64)
    count = 0
    n_windows = int(windows.shape[0])
    chunk = rows_per_chunk(parts.vocab_size)
    for start in range(0, n_windows, batch_size):
        resid, final = capture_residuals(model, parts, windows[start:start + batch_size], positions="all",
                                         logits_at="all")
        resid = resid[:, :, 1:].reshape(parts.n_layers + 1, -1, parts.d_model)
        final = final[:, 1:].reshape(-1, final.shape[-1])
        for row in range(0, final.shape[0], chunk):
            reference = final[row:row + chunk]
            for layer in range(parts.n_layers + 1):
                decoded = lens.logits(resid[layer, row:row + chunk], layer)
                totals[layer] += kl_bits(reference, decoded).double().sum()
        count += final.shape[0]
        report(progress, f"held-out KL ({lens.mode})", min(start + batch_size, n_windows), n_windows)
    return (totals / count).tolist()
