"""Residuals at every layer for fitting and evaluating lenses, from token windows.

Every position of a window but the first is used. Position 0 is left out because its
residual is an attention-sink outlier in most models (norms tens to hundreds of times
the others', whatever the token): a least-squares fit or a KL average that kept it would
be dominated by a position no prompt reading ever decodes.

Residuals come from ``hooks.capture.capture_residuals`` (layer 0 = block 0's input,
layer l = block l-1's output, layer L = the final residual before the final norm) and
are returned in float32.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor, nn

from layers_core.hooks.capture import capture_residuals
from layers_core.lens.fit_progress import Progress, report
from layers_core.lens.translators import LensIdentity
from layers_core.models.architecture import ModelParts


def check_windows(windows: Tensor) -> None:
    """Refuse anything but a ``[N, T]`` integer tensor with ``T >= 2`` (position 0 is never used).

    Raises:
        ValueError: With the shape or dtype that is wrong.
    """
    if windows.ndim != 2 or windows.shape[0] < 1 or windows.shape[1] < 2:
        raise ValueError(f"windows must be [N >= 1, T >= 2] token ids, got shape {tuple(windows.shape)}")
    if windows.dtype not in (torch.long, torch.int32, torch.int64):
        raise ValueError(f"windows must hold integer token ids, got {windows.dtype}")


def check_fit_identity(identity: LensIdentity, parts: ModelParts, kind: str) -> None:
    """Refuse to fit maps of ``kind`` under an identity of another kind or shape.

    Raises:
        ValueError: Naming the kind or shape that differs.
    """
    if identity.kind != kind:
        raise ValueError(f"fitting a {kind} lens, but the identity says {identity.kind}")
    if (identity.n_layers, identity.d_model) != (parts.n_layers, parts.d_model):
        raise ValueError(f"the identity is for {identity.n_layers} x {identity.d_model}, the model is "
                         f"{parts.n_layers} x {parts.d_model}")


def window_residuals(
    model: nn.Module, parts: ModelParts, windows: Tensor, *, batch_size: int, progress: Progress | None = None,
    stage: str = "residuals",
) -> Iterator[Tensor]:
    """The residuals of ``windows`` at every layer, one batch of windows at a time.

    Args:
        model: The model ``parts`` was taken from (frozen; run without grad).
        parts: Its parts.
        windows: ``[N, T]`` token ids with no padding.
        batch_size: Windows per forward pass.
        progress: Called with ``(stage, windows done, N)`` after each batch.
        stage: The name given to ``progress``.

    Yields:
        ``[L+1, B * (T-1), d_model]`` float32: each window's positions 1..T-1, window-major.
    """
    check_windows(windows)
    count, width = int(windows.shape[0]), int(windows.shape[1])
    for start in range(0, count, batch_size):
        batch = windows[start:start + batch_size]
        resid, _ = capture_residuals(model, parts, batch, positions="all", logits_at="last")
        yield resid[:, :, 1:].float().reshape(parts.n_layers + 1, batch.shape[0] * (width - 1), -1)
        report(progress, stage, min(start + batch_size, count), count)


def sampled_residuals(
    model: nn.Module, parts: ModelParts, windows: Tensor, count: int, seed: int, *, batch_size: int,
    progress: Progress | None = None,
) -> Tensor:
    """The residuals at ``count`` positions drawn without replacement from positions 1..T-1 of ``windows``.

    The draw depends only on ``seed`` and the windows' shape; only windows holding a drawn
    position are run. When ``count`` is at least the number of positions, all are taken.

    Returns:
        ``[L+1, count', d_model]`` float32, ``count' = min(count, N * (T-1))``, in the draw's order.
    """
    check_windows(windows)
    n_windows, width = int(windows.shape[0]), int(windows.shape[1])
    available = n_windows * (width - 1)
    generator = torch.Generator().manual_seed(seed)
    drawn = torch.randperm(available, generator=generator)[:min(count, available)]
    rows = torch.unique(drawn // (width - 1))  # sorted windows that hold a drawn position
    where = {int(row): slot for slot, row in enumerate(rows.tolist())}
    pool = torch.empty((parts.n_layers + 1, drawn.numel(), parts.d_model), dtype=torch.float32)
    # Flat index of each drawn position among the kept windows' positions 1..T-1.
    kept_index = torch.tensor([where[int(i) // (width - 1)] * (width - 1) + int(i) % (width - 1)
                               for i in drawn.tolist()], dtype=torch.long)
    offset = 0
    for resid in window_residuals(model, parts, windows[rows], batch_size=batch_size, progress=progress,
                                  stage="sampling residuals"):
        inside = (kept_index >= offset) & (kept_index < offset + resid.shape[1])
        pool[:, inside] = resid[:, kept_index[inside] - offset]
        offset += resid.shape[1]
    return pool
