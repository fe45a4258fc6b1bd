"""Decode residuals through a lens one slice of the vocabulary at a time.

A ``[rows, V]`` block of fp32 logits for 512 positions of Gemma-3-270M is
537 MB: writing it to memory and reading it back for each statistic costs more
than computing it. ``VocabTiles`` decodes ``[rows, width]`` tiles small enough
to stay in the CPU cache (about 8 MB each, with an 8 MB slice of the
unembedding), so the statistics in ``logit_stats`` read them from cache. On a
GPU one tile spans the whole vocabulary: launches, not cache, are its cost.

Each tile goes through the lens's own head (``Lens._head``) on a view of its
unembedding rows, so bias, multiplier, softcap and dtype handling are exactly
those of ``Lens.logits``; rows are normalised beforehand with
``Lens.normalise_stack``. ``Lens`` has no public per-slice head yet; this
module is the only place that reaches into it (``_head``, ``_weight``,
``_bias``), so a public ``Lens.head(vocab=)`` would replace three lines here.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import Tensor

from layers_core.lens.lens import Lens

# Slice widths are multiples of this many ids (whole cache lines of fp32 logits).
ALIGN = 64
# Target sizes on the CPU: an unembedding slice and a logits tile that fit in L2/L3 together.
WEIGHT_TILE_BYTES = 8 * 2**20
LOGITS_TILE_BYTES = 8 * 2**20
# Few rows (one prompt's answer position): smaller tiles, so every statistic of a tile runs
# from L2 and the skinny matmul runs as several wide ones (faster than one with MKL).
FEW_ROWS_TILE_BYTES = 2 * 2**20
# Off the CPU one tile covers the vocabulary; rows are blocked so a block stays under this.
DEVICE_BLOCK_BYTES = 256 * 2**20


@dataclass(frozen=True)
class TilePlan:
    """How a sweep is cut: vocabulary slices of ``width`` ids and blocks of ``row_block`` rows."""

    width: int
    row_block: int

    def width_for(self, n_rows: int, vocab_size: int, tile_bytes: int | None = None) -> int:
        """Slice width so that ``n_rows`` rows make a tile of about ``tile_bytes`` (default: the planned tile).

        Never narrower than ``width`` (which keeps the unembedding slice cache-sized),
        never wider than the vocabulary; a multiple of ``ALIGN``.
        """
        target = self.width * self.row_block * 4 if tile_bytes is None else tile_bytes
        wide = target // (4 * max(n_rows, 1)) // ALIGN * ALIGN
        return min(vocab_size, max(self.width, wide))


def plan_tiles(d_model: int, vocab_size: int, device: torch.device | str, weight_bytes: int = 4) -> TilePlan:
    """Tile sizes for decoding on ``device``.

    Args:
        d_model: Width of the residual stream.
        vocab_size: Rows of the unembedding.
        device: Where the lens computes.
        weight_bytes: Bytes per element of the unembedding (4 for fp32).
    """
    if torch.device(device).type != "cpu":
        return TilePlan(width=vocab_size, row_block=max(1, DEVICE_BLOCK_BYTES // (vocab_size * 4)))
    width = WEIGHT_TILE_BYTES // (d_model * weight_bytes) // ALIGN * ALIGN
    width = min(vocab_size, max(ALIGN, width))
    return TilePlan(width=width, row_block=max(1, LOGITS_TILE_BYTES // (width * 4)))


def plan_for(lens: Lens) -> TilePlan:
    """``plan_tiles`` for the lens's unembedding (its width, vocabulary, device and dtype)."""
    weight: Tensor = lens._weight
    return plan_tiles(weight.shape[1], weight.shape[0], weight.device, weight.element_size())


class VocabTiles:
    """The lens's head restricted to consecutive vocabulary slices."""

    def __init__(self, lens: Lens, plan: TilePlan | None = None) -> None:
        """Prepare one head per slice (views of the unembedding, nothing copied).

        Args:
            lens: The lens whose norm and head are used.
            plan: Tile sizes; ``plan_tiles`` for the lens's device when None.
        """
        self.lens = lens
        vocab = lens._weight.shape[0]
        self.plan = plan or plan_for(lens)
        self.slices = [(start, min(start + self.plan.width, vocab)) for start in range(0, vocab, self.plan.width)]
        self._heads = [self._slice_head(start, stop) for start, stop in self.slices]

    def _slice_head(self, start: int, stop: int) -> Lens:
        head = copy.copy(self.lens)
        head._weight = self.lens._weight[start:stop]
        head._bias = None if self.lens._bias is None else self.lens._bias[start:stop]
        return head

    @property
    def vocab_size(self) -> int:
        """Ids covered by all slices together."""
        return self.slices[-1][1]

    @torch.no_grad()
    def logits(self, normed: Tensor, index: int) -> Tensor:
        """fp32 logits ``[..., width]`` of slice ``index`` for rows already normalised."""
        return self._heads[index]._head(normed)
