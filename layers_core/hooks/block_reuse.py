"""Start a batched forward pass part-way down: the first blocks return a cached run's outputs instead of computing.

Many patched runs of one base prompt agree with the base run up to the first block
they patch: every block before it sees the same input and writes the same output.
Inside ``reused_blocks(parts, outputs, start, batch)`` blocks ``0 .. start-1``
return ``outputs[l]`` (the base run's ``blocks.{l}.hook_resid_post``, batch of one,
broadcast to ``batch`` rows and copied, so a write at that point cannot reach the
cache) without running; blocks from ``start`` on run as usual on it. The blocks
are still *called*, so hooks at their input and output fire (a write at
``hook_resid_post`` of a skipped block lands on the copy), but no hook inside a
skipped block fires: the caller must not write or read inside blocks before
``start``. The embedding, the final norm and the head run as usual.

The cached outputs must come from the same model on the same ids with the same
writes before ``start`` (``block_output_points`` names what to cache). Every
transformers 5.23 decoder layer returns its hidden states as one tensor; that is
what the skipped blocks return. Each block's own ``forward`` is restored when the
``with`` block ends, however it ends.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from torch import Tensor

from layers_core.models.architecture import ModelParts


def block_output_points(parts: ModelParts) -> list[str]:
    """The points ``reused_blocks`` needs cached: every block's output, ``blocks.{l}.hook_resid_post``."""
    return [f"blocks.{layer}.hook_resid_post" for layer in range(parts.n_layers)]


def _cached_forward(output: Tensor, batch: int) -> Any:
    def forward(*args: Any, **kwargs: Any) -> Tensor:
        return output.expand(batch, *output.shape[1:]).clone()

    return forward


@contextmanager
def reused_blocks(parts: ModelParts, outputs: Sequence[Tensor], start: int, batch: int) -> Iterator[None]:
    """Inside the ``with`` block, blocks ``0 .. start-1`` return ``outputs`` instead of running (module docstring).

    Args:
        parts: The model's parts.
        outputs: At least ``start`` tensors ``[1, T, d_model]``: block ``l``'s output in the base run.
        start: The first block that runs (0: none is skipped; ``n_layers``: all are).
        batch: Rows of the forward pass the outputs are broadcast to.

    Raises:
        ValueError: ``start`` outside ``0 .. n_layers``, or fewer outputs than ``start``.
    """
    if not 0 <= start <= parts.n_layers:
        raise ValueError(f"start must be in 0..{parts.n_layers}, got {start}")
    if len(outputs) < start:
        raise ValueError(f"{len(outputs)} cached block outputs cannot replace {start} blocks")
    replaced = parts.blocks[:start]
    try:
        for layer, block in enumerate(replaced):
            block.forward = _cached_forward(outputs[layer], batch)
        yield
    finally:
        for block in replaced:
            block.__dict__.pop("forward", None)
