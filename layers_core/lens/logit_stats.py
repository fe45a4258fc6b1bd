"""Entropy and exact top-k of logit rows, accumulated one vocabulary tile at a time.

The all-position sweep decodes ``(L+1) x T`` rows of ``V`` logits; holding a
layer's ``[T, V]`` block and running ``log_softmax``, ``entropy`` and ``top_k``
over it costs several passes through main memory (35% of the sweep on
Gemma-3-270M, more than the forward pass). ``TileStats`` takes the logits in
tiles small enough to stay in the CPU cache and keeps per row and tile only

- the tile's maximum ``m``, ``Z = sum exp(x - m)`` and ``S = sum exp(x - m) (x - m)``,
  from which entropy (nats) is ``log Z - S / Z`` and ``log_normaliser = m + log Z``
  once the tiles are rescaled to the row's maximum;
- the tile's ``k`` largest logits with their ids, and its (k+1)-th largest logit.

Every ``COMPACT_AFTER`` tiles, and in ``finish``, the kept results are merged
into one part, so memory does not grow with the number of tiles. The merge
orders the kept candidates by (logit desc, id asc), exactly as
``metrics.top_k`` does. Every logit left out is at most the largest (k+1)-th
value of any tile or merge, so the result is exact when that bound is below
the k-th kept logit; a row where it is not (a tie at the k-th place) or whose
statistics are not finite gets ``exact=False``, and the caller measures it with
``layers_core.metrics``.

Accuracy: sums run within tiles and are then combined, which is closer to an
fp64 computation than one fp32 ``log_softmax`` over 262k tokens (2e-6 against
4e-4 bits on Gemma-3-270M).

Speed and memory: each tile is reduced in place plus one ``Scratch`` buffer,
shared by every ``TileStats`` of a sweep. A fresh multi-megabyte tensor per
operation made glibc map and fault in new pages every time (a third of the
sweep on SmolLM2 at 512 tokens); one buffer per row block held 27 tiles'
worth of memory at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

LN2 = math.log(2.0)
# exp() of anything below this is a subnormal float, which x86 computes several times slower
# (early layers put most of the vocabulary there). Such a token adds under 1e-36 to any sum
# here, so shifted logits are clamped to it first: the results are unchanged in fp32.
EXP_FLOOR = -87.0
# Tiles whose per-row results are kept before they are merged into one part.
COMPACT_AFTER = 8


class Scratch:
    """One reusable buffer, handed out as a tensor of any shape that fits in it.

    A tile's statistics need one tile-sized temporary (``exp`` of the shifted
    logits, or the gap to the last layer). Every ``TileStats`` of one sweep
    shares a ``Scratch``, so the sweep holds one such temporary, not one per row
    block. A buffer is valid until the next call of ``like``.
    """

    def __init__(self) -> None:
        self._flat: Tensor | None = None

    def like(self, tensor: Tensor) -> Tensor:
        """A contiguous tensor with the shape, dtype and device of ``tensor`` (contents undefined)."""
        need = tensor.numel()
        flat = self._flat
        if flat is None or flat.numel() < need or flat.dtype != tensor.dtype or flat.device != tensor.device:
            flat = self._flat = torch.empty(need, dtype=tensor.dtype, device=tensor.device)
        return flat[:need].view(tensor.shape)

    def release(self) -> None:
        """Drop the buffer (the next ``like`` allocates again)."""
        self._flat = None


@dataclass
class RowStats:
    """Per-row results of ``TileStats.finish``.

    Attributes:
        entropy_bits: ``[R]`` Shannon entropy of softmax(row).
        log_normaliser: ``[R]`` logsumexp of the row (natural log).
        top_ids: ``[R, k]`` int64, by logit desc then id asc.
        top_logits: ``[R, k]`` the logits of ``top_ids``.
        top_probs: ``[R, k]`` softmax probabilities of ``top_ids``.
        exact: ``[R]`` bool; False where the row must be recomputed from full logits.
    """

    entropy_bits: Tensor
    log_normaliser: Tensor
    top_ids: Tensor
    top_logits: Tensor
    top_probs: Tensor
    exact: Tensor


class TileStats:
    """Accumulates ``RowStats`` for a fixed set of rows from vocabulary tiles.

    Each tile is reduced on arrival to a few numbers per row; tiles are combined
    once, in ``finish``. Tiles may come in any order and of any width, each id
    exactly once.
    """

    def __init__(self, n_rows: int, vocab_size: int, k: int, scratch: Scratch | None = None) -> None:
        """Empty statistics for ``n_rows`` rows over a ``vocab_size`` vocabulary.

        Args:
            n_rows: Rows that every tile carries.
            vocab_size: Total vocabulary.
            k: How many top tokens to keep (clamped to the vocabulary).
            scratch: Temporary buffer shared with other statistics of the same sweep
                (default: a private one, released by ``finish``).
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.n_rows = n_rows
        self.k = min(k, vocab_size)
        self.vocab_size = vocab_size
        self.seen = 0
        self.scratch = scratch or Scratch()
        self._owns_scratch = scratch is None
        self._parts: dict[str, list[Tensor]] = {name: [] for name in ("max", "z", "s", "values", "ids", "bound")}

    def add(self, tile: Tensor, start: int) -> None:
        """Fold in ``tile`` ``[R, W]`` fp32: the logits of ids ``start .. start + W - 1``.

        The tile is overwritten (shifted by its row maxima): pass a copy to keep it.
        """
        rows, width = tile.shape
        if rows != self.n_rows:
            raise ValueError(f"tile has {rows} rows, expected {self.n_rows}")
        take = min(self.k + 1, width)
        values, where = torch.topk(tile, take, dim=-1)
        tile_max = values[:, 0]
        kept = min(self.k, width)
        self._parts["values"].append(values[:, :kept])
        self._parts["ids"].append(where[:, :kept] + start)
        self._parts["bound"].append(values[:, kept] if take > kept else torch.full_like(tile_max, -math.inf))
        shifted = tile.sub_(tile_max.unsqueeze(-1)).clamp_(min=EXP_FLOOR)
        weights = torch.exp(shifted, out=self.scratch.like(shifted))
        self._parts["max"].append(tile_max)
        self._parts["z"].append(weights.sum(-1))
        self._parts["s"].append(weights.mul_(shifted).sum(-1))
        self.seen += width
        if len(self._parts["max"]) >= COMPACT_AFTER:
            self._compact()

    def finish(self) -> RowStats:
        """Entropy, normaliser and ordered top-k of every row, with the rows that need a recompute."""
        if self.seen != self.vocab_size:
            raise ValueError(f"tiles covered {self.seen} of {self.vocab_size} ids")
        if self._owns_scratch:
            self.scratch.release()
        self._compact()
        (row_max,), (sum_exp,), (sum_exp_shift,) = (self._parts[name] for name in ("max", "z", "s"))
        (top_ids,), (top_logits,), (bound,) = (self._parts[name] for name in ("ids", "values", "bound"))
        log_z = sum_exp.log()
        entropy = (log_z - sum_exp_shift / sum_exp) / LN2
        log_normaliser = row_max + log_z
        exact = (bound < top_logits[:, -1]) & torch.isfinite(entropy) & torch.isfinite(log_normaliser)
        top_probs = (top_logits - log_normaliser.unsqueeze(-1)).exp()
        return RowStats(entropy, log_normaliser, top_ids, top_logits, top_probs, exact)

    def _compact(self) -> None:
        """Fold every tile's part into one: the sums rescaled to the rows' maximum, the top ``k`` merged.

        Called every ``COMPACT_AFTER`` tiles, so the parts held never grow with the
        number of vocabulary slices (251 of them for Llama-3-8B on the cpu).
        """
        if len(self._parts["max"]) == 1:
            return
        tile_max, z, s = (torch.stack(self._parts[name]) for name in ("max", "z", "s"))
        row_max = tile_max.amax(0)
        # Rescale each tile's sums to the row maximum: exp(x - M) = exp(x - m) * exp(m - M).
        scale, offset = (tile_max - row_max).exp(), tile_max - row_max
        sum_exp = (scale * z).sum(0)
        sum_exp_shift = (scale * (s + z * offset)).sum(0)
        top_ids, top_logits, bound = self._merge_top()
        self._parts = {"max": [row_max], "z": [sum_exp], "s": [sum_exp_shift],
                       "values": [top_logits], "ids": [top_ids], "bound": [bound]}

    def _merge_top(self) -> tuple[Tensor, Tensor, Tensor]:
        """Top ``k`` over all tiles, ordered by (logit desc, id asc), and the bound on the rest."""
        values = torch.cat(self._parts["values"], dim=1)
        ids = torch.cat(self._parts["ids"], dim=1)
        bound = torch.stack(self._parts["bound"]).amax(0)
        # Id order first, then a stable sort by logit: equal logits keep the lower id first.
        ids, by_id = torch.sort(ids, dim=-1)
        values = values.gather(1, by_id)
        order = torch.sort(values, dim=-1, descending=True, stable=True).indices
        if order.shape[1] > self.k:
            bound = torch.maximum(bound, values.gather(1, order[:, self.k:self.k + 1]).squeeze(1))
        order = order[:, : self.k]
        return ids.gather(1, order), values.gather(1, order), bound


def row_stats(logits: Tensor, k: int, tile_width: int) -> RowStats:
    """``RowStats`` of full rows ``[R, V]`` (left unchanged), in tiles of ``tile_width`` ids."""
    rows, vocab = logits.shape
    stats = TileStats(rows, vocab, k)
    width = max(1, tile_width)
    for start in range(0, vocab, width):
        stats.add(logits[:, start:start + width].clone(), start)
    return stats.finish()


@dataclass
class AnswerStats:
    """Per-row statistics of answer-position logits: C layers of B prompts.

    Attributes:
        rows: ``RowStats`` of the ``C * B`` rows, layer-major.
        kl_bits: ``[C, B]`` KL(last layer || row) in bits; not finite where the plain metric must decide.
        rank: ``[C, B]`` 1 + the number of logits strictly above the answer's.
        answer_logit: ``[C, B]`` the answer's logit.
    """

    rows: RowStats
    kl_bits: Tensor
    rank: Tensor
    answer_logit: Tensor


class AnswerTileStats:
    """``TileStats`` plus the answer's rank and the KL to the last layer, from vocabulary tiles.

    Each tile holds every layer (0..C-1, the last one being the reference) of B
    prompts, layer-major. The rank needs the answer's logit before a tile can be
    counted, so tiles arriving before every prompt's answer tile are held; feed
    the answer tiles first and nothing waits. KL(last || row) is
    ``sum_v p_last (x_last - x) - (lse_last - lse)``, with the first sum taken per
    tile against that tile's own maximum of the last layer and rescaled in
    ``finish``; it is exactly 0 for the last layer itself.
    """

    def __init__(self, n_layers: int, batch: int, vocab_size: int, k: int, answer_ids: Tensor,
                 scratch: Scratch | None = None) -> None:
        """Args: n_layers: layers per prompt, last = reference; batch: prompts; vocab_size; k: top-k;
        answer_ids: ``[B]`` int64 ids (any valid id where a prompt has no answer); scratch: as for
        ``TileStats``."""
        self.shape = (n_layers, batch)
        self.stats = TileStats(n_layers * batch, vocab_size, k, scratch)
        self.answer_ids = answer_ids
        self.answer_logit = torch.full(self.shape, math.nan, device=answer_ids.device)
        self.known = torch.zeros(batch, dtype=torch.bool, device=answer_ids.device)
        self.pending: list[tuple[Tensor, int]] = []
        self.above = torch.zeros(self.shape, dtype=torch.long, device=answer_ids.device)
        self._parts: dict[str, list[Tensor]] = {"gap": [], "last_max": [], "last_sum": []}

    def add(self, tile: Tensor, start: int) -> None:
        """Fold in ``tile`` ``[C * B, W]`` (overwritten), the logits of ids ``start .. start + W - 1``."""
        width = tile.shape[1]
        grid = tile.view(*self.shape, width)
        inside = torch.nonzero((self.answer_ids >= start) & (self.answer_ids < start + width)).flatten()
        if inside.numel():
            # Only the answer columns are read, never a copy of the tile.
            self.answer_logit[:, inside] = grid[:, inside, self.answer_ids[inside] - start]
            self.known[inside] = True
        self.pending.append((tile, start))
        if bool(self.known.all()):
            for held, held_start in self.pending:
                self._fold(held, held_start)
            self.pending = []

    def _fold(self, tile: Tensor, start: int) -> None:
        grid = tile.view(*self.shape, tile.shape[1])
        # int32 sums bools without first widening them to int64 (half the time).
        self.above += (grid > self.answer_logit.unsqueeze(-1)).sum(-1, dtype=torch.int32)
        last = grid[-1]
        last_max = last.amax(-1, keepdim=True)
        weights = (last - last_max).clamp_(min=EXP_FLOOR).exp()
        gap = torch.sub(last.unsqueeze(0), grid, out=self.stats.scratch.like(grid))
        if self.shape[1] == 1:
            self._parts["gap"].append(torch.mv(gap.view(self.shape[0], -1), weights[0]).unsqueeze(-1))
        else:
            self._parts["gap"].append(gap.mul_(weights).sum(-1))
        self._parts["last_max"].append(last_max.squeeze(-1))
        self._parts["last_sum"].append(weights.sum(-1))
        self.stats.add(tile, start)

    def finish(self) -> AnswerStats:
        """Every statistic of every row; rows with ``exact=False`` or a non-finite KL need the plain metrics."""
        if self.pending:
            raise ValueError("some prompts' answer ids were never in a tile")
        rows = self.stats.finish()
        log_normaliser = rows.log_normaliser.view(self.shape)
        last_lse = log_normaliser[-1]
        # p_last over tile t = exp(x - m_t) * exp(m_t - lse_last).
        weight = (torch.stack(self._parts["last_max"]) - last_lse).exp()
        expected_gap = (torch.stack(self._parts["gap"]) * weight.unsqueeze(1)).sum(0)
        mass = (torch.stack(self._parts["last_sum"]) * weight).sum(0)
        kl = (expected_gap - (last_lse - log_normaliser) * mass) / LN2
        return AnswerStats(rows=rows, kl_bits=kl.clamp_min(0.0), rank=self.above + 1, answer_logit=self.answer_logit)
