"""Decode captured residuals at every layer and measure each layer's prediction.

- ``sweep_last_positions``: a batch of prompts (the fact battery, or one prompt
  when only its answer position is needed), the last position of each.
- ``position_records``: one prompt, every layer x position, entropy and top-k.
- ``sweep_prompt``: both for one prompt from one pass over the unembedding.

All three decode through ``VocabTiles``: the lens's head on one slice of the
vocabulary at a time, for all rows, so the unembedding is read once per sweep
and no ``[rows, V]`` block of logits is ever held, only a cache-sized tile.
``TileStats`` / ``AnswerTileStats`` reduce each tile while it is in cache.

Every number is defined by ``layers_core.metrics``; the fused statistics
compute the same quantities, and any row they cannot settle exactly (ties at
the k-th logit, non-finite logits) is decoded again and measured with the
``metrics`` functions. Results become Python lists with one transfer per
tensor, never one per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from layers_core import metrics
from layers_core.lens.lens import Lens
from layers_core.lens.logit_stats import AnswerStats, AnswerTileStats, RowStats, Scratch, TileStats
from layers_core.lens.vocab_tiles import FEW_ROWS_TILE_BYTES, TilePlan, VocabTiles, plan_for

ANSWER_TOP_K = 20
RECORD_TOP_K = 5
# The records pass holds one logits tile and one scratch tile of the same size; each is capped
# at this share of one layer's [T, V] logits, so together with the normalised rows the whole
# decode stays below one layer's logits however short the prompt.
RECORDS_TILE_SHARE = 4


@dataclass
class AnswerSweep:
    """Per-layer measurements at the answer position of one prompt (lists of length L+1)."""

    entropy_bits: list[float]
    top_ids: list[list[int]]
    top_probs: list[list[float]]
    kl_to_final_bits: list[float]
    cosine_to_final: list[float]
    p_answer: list[float] | None
    answer_rank: list[int] | None


@dataclass
class PositionRecords:
    """Per layer and position: entropy and the top-k (lists indexed [layer][pos])."""

    entropy_bits: list[list[float]]
    top_ids: list[list[list[int]]]
    top_probs: list[list[list[float]]]


@dataclass
class PromptSweep:
    """The result of ``sweep_prompt``: the answer position in full, every position in brief."""

    answer: AnswerSweep
    records: PositionRecords
    final_logits: Tensor  # [V] fp32: the lens at layer L, answer position


def _normalised_rows(tiles: VocabTiles, resid: Tensor) -> Tensor:
    """``[(L+1) * N, d]``: each layer's ``[N, d]`` residuals after that layer's lens norm, layer-major."""
    return tiles.lens.normalise_stack(resid).reshape(-1, resid.shape[-1])


def _answer_first(tiles: VocabTiles, answer_ids: Tensor) -> list[int]:
    """Slice indices with the slices holding answer ids first, so ``AnswerTileStats`` holds nothing back."""
    width = tiles.plan.width
    first = sorted({int(a) // width for a in answer_ids.tolist()})
    return first + [i for i in range(len(tiles.slices)) if i not in first]


def _id_tensor(answer_ids: Sequence[int | None]) -> Tensor:
    """Answer ids as a tensor, -1 where there is none."""
    return torch.tensor([-1 if a is None else int(a) for a in answer_ids], dtype=torch.long)


def _answer_measures(stats: AnswerStats, resid: Tensor) -> dict[str, Tensor]:
    """``[L+1, B, ...]`` tensors of every answer-position measure."""
    layers, batch = stats.rank.shape
    return {
        "entropy": stats.rows.entropy_bits.view(layers, batch),
        "ids": stats.rows.top_ids.view(layers, batch, -1),
        "probs": stats.rows.top_probs.view(layers, batch, -1),
        "kl": stats.kl_bits,
        "cos": metrics.cosine_similarity(resid, resid[-1].unsqueeze(0)),
        "p": (stats.answer_logit - stats.rows.log_normaliser.view(layers, batch)).exp(),
        "rank": stats.rank,
    }


def _redo_unsettled(lens: Lens, stats: AnswerStats, resid: Tensor, answer_ids: Tensor, k: int,
                    measures: dict[str, Tensor]) -> None:
    """Measure with the plain ``metrics`` the rows the fused pass could not settle (rare: ties, inf)."""
    n_layers = resid.shape[0] - 1
    unsettled = ~(stats.rows.exact.view(stats.rank.shape) & torch.isfinite(stats.kl_bits))
    for layer, row in torch.nonzero(unsettled).tolist():
        logits = lens.logits(resid[layer, row], layer)
        final = lens.logits(resid[n_layers, row], n_layers)
        probs, ids = metrics.top_k(logits, k)
        answer_id = int(answer_ids[row])
        measures["entropy"][layer, row] = metrics.entropy_bits(logits)
        measures["ids"][layer, row], measures["probs"][layer, row] = ids, probs
        measures["kl"][layer, row] = metrics.kl_bits(final, logits)
        measures["p"][layer, row] = torch.softmax(logits, dim=-1)[answer_id]
        measures["rank"][layer, row] = metrics.token_rank(logits, answer_id)


def _to_sweeps(measures: dict[str, Tensor], answer_ids: Sequence[int | None]) -> list[AnswerSweep]:
    """One ``AnswerSweep`` per prompt from ``[L+1, B, ...]`` tensors (one transfer per tensor)."""
    lists = {name: value.transpose(0, 1).cpu().tolist() for name, value in measures.items()}
    return [
        AnswerSweep(
            entropy_bits=lists["entropy"][b], top_ids=lists["ids"][b], top_probs=lists["probs"][b],
            kl_to_final_bits=lists["kl"][b], cosine_to_final=lists["cos"][b],
            p_answer=lists["p"][b] if answer_id is not None else None,
            answer_rank=lists["rank"][b] if answer_id is not None else None,
        )
        for b, answer_id in enumerate(answer_ids)
    ]


def _finish_answers(lens: Lens, stats: AnswerStats, resid: Tensor, answer_ids: Sequence[int | None],
                    safe_ids: Tensor, k: int) -> list[AnswerSweep]:
    measures = _answer_measures(stats, resid)
    _redo_unsettled(lens, stats, resid, safe_ids, k, measures)
    return _to_sweeps(measures, answer_ids)


def sweep_last_positions(
    lens: Lens, resid: Tensor, answer_ids: Sequence[int | None], answer_k: int = ANSWER_TOP_K,
    plan: TilePlan | None = None,
) -> list[AnswerSweep]:
    """Decode the last position of a batch of prompts at every layer.

    Args:
        lens: The lens to decode with.
        resid: ``[L+1, B, d]`` residuals at each row's last position.
        answer_ids: Gold answer id per row (None where unaligned).
        answer_k: Top-k kept per layer.
        plan: Tile sizes (default: ``plan_tiles`` for the lens's device); the slices
            widen so that one tile of all ``(L+1) x B`` rows stays the planned size.
    """
    n_layers, batch = resid.shape[0] - 1, resid.shape[1]
    if len(answer_ids) != batch:
        raise ValueError(f"{len(answer_ids)} answer ids for a batch of {batch}")
    plan = plan or plan_for(lens)
    n_rows = (n_layers + 1) * batch
    width = plan.width_for(n_rows, lens.parts.vocab_size, FEW_ROWS_TILE_BYTES)
    tiles = VocabTiles(lens, TilePlan(width=width, row_block=n_rows))
    safe_ids = _id_tensor(answer_ids).clamp_min(0).to(resid.device)
    rows = _normalised_rows(tiles, resid)
    stats = AnswerTileStats(n_layers + 1, batch, tiles.vocab_size, answer_k, safe_ids)
    for index in _answer_first(tiles, safe_ids):
        stats.add(tiles.logits(rows, index), tiles.slices[index][0])
    return _finish_answers(lens, stats.finish(), resid, answer_ids, safe_ids, answer_k)


def _records(stats: list[RowStats], lens: Lens, resid: Tensor, k: int) -> PositionRecords:
    """Assemble per-layer records; rows the tiles left unsettled are measured per layer with ``metrics``."""
    shape = resid.shape[:2]
    entropy = torch.cat([s.entropy_bits for s in stats]).view(shape)
    ids = torch.cat([s.top_ids for s in stats]).view(*shape, -1)
    probs = torch.cat([s.top_probs for s in stats]).view(*shape, -1)
    unsettled = ~torch.cat([s.exact for s in stats]).view(shape)
    for layer in torch.nonzero(unsettled.any(-1)).flatten().tolist():
        positions = torch.nonzero(unsettled[layer]).flatten()
        logits = lens.logits(resid[layer, positions], layer)
        entropy[layer, positions] = metrics.entropy_bits(logits)
        probs[layer, positions], ids[layer, positions] = metrics.top_k(logits, k)
    return PositionRecords(
        entropy_bits=entropy.cpu().tolist(), top_ids=ids.cpu().tolist(), top_probs=probs.cpu().tolist()
    )


class _RecordsPass:
    """One pass over the vocabulary for every row of a prompt, in row blocks; optionally copies
    the answer rows of each slice out before the records statistics overwrite the tile."""

    def __init__(self, tiles: VocabTiles, resid: Tensor, k: int, answer_rows: Tensor | None) -> None:
        self.tiles = tiles
        self.rows = _normalised_rows(tiles, resid)
        seq_len = resid.shape[1]
        layer_share = seq_len * tiles.vocab_size // (RECORDS_TILE_SHARE * tiles.plan.width)
        block = max(1, min(tiles.plan.row_block, layer_share))
        self.bounds = [(a, min(a + block, self.rows.shape[0])) for a in range(0, self.rows.shape[0], block)]
        self.scratch = Scratch()
        self.stats = [TileStats(b - a, tiles.vocab_size, k, self.scratch) for a, b in self.bounds]
        self.answer_rows = answer_rows
        self.picks = None if answer_rows is None else [
            torch.nonzero((answer_rows >= a) & (answer_rows < b)).flatten() for a, b in self.bounds
        ]

    def run_slice(self, index: int) -> Tensor | None:
        """Decode slice ``index`` for every block; return the answer rows' logits ``[A, W]`` if asked."""
        start, stop = self.tiles.slices[index]
        rows, picks = self.answer_rows, self.picks
        answer = None if rows is None else torch.empty((rows.numel(), stop - start), device=self.rows.device)
        for block, ((a, b), stats) in enumerate(zip(self.bounds, self.stats, strict=True)):
            tile = self.tiles.logits(self.rows[a:b], index)
            if answer is not None and rows is not None and picks is not None and picks[block].numel():
                picked = picks[block]
                answer[picked] = tile[rows[picked] - a]  # before add() shifts the tile
            stats.add(tile, start)
            del tile  # else the next block's tile is allocated while this one is still held
        return answer

    def finish(self) -> list[RowStats]:
        """Every block's statistics, the scratch buffer released first."""
        self.scratch.release()
        return [stats.finish() for stats in self.stats]


def position_records(lens: Lens, resid: Tensor, k: int = RECORD_TOP_K, plan: TilePlan | None = None) -> PositionRecords:
    """Entropy and top-k at every layer and position of one prompt.

    Args:
        lens: The lens to decode with.
        resid: ``[L+1, T, d]`` residuals of one prompt.
        k: Top-k kept per position.
        plan: Tile sizes (default: ``plan_tiles`` for the lens's device).
    """
    records = _RecordsPass(VocabTiles(lens, plan), resid, k, None)
    for index in range(len(records.tiles.slices)):
        records.run_slice(index)
    return _records(records.finish(), lens, resid, k)


def sweep_prompt(
    lens: Lens, resid: Tensor, answer_id: int | None,
    answer_k: int = ANSWER_TOP_K, record_k: int = RECORD_TOP_K, plan: TilePlan | None = None,
) -> PromptSweep:
    """Decode every layer at every position of one prompt, the unembedding read once.

    Args:
        lens: The lens to decode with.
        resid: ``[L+1, T, d]`` residuals of one prompt (``capture_residuals(...,
            positions="all")[0][:, 0]``); the answer position is the last.
        answer_id: Gold answer token id, or None when the answer could not be aligned.
        answer_k: Top-k kept at the answer position.
        record_k: Top-k kept at every position.
        plan: Tile sizes (default: ``plan_tiles`` for the lens's device).
    """
    n_layers, seq_len = resid.shape[0] - 1, resid.shape[1]
    tiles = VocabTiles(lens, plan)
    answer_rows = torch.arange(n_layers + 1, device=resid.device) * seq_len + (seq_len - 1)
    records = _RecordsPass(tiles, resid, record_k, answer_rows)
    safe_ids = _id_tensor([answer_id]).clamp_min(0).to(resid.device)
    answer = AnswerTileStats(n_layers + 1, 1, tiles.vocab_size, answer_k, safe_ids, records.scratch)
    final_logits = torch.empty(tiles.vocab_size, device=resid.device)
    for index in _answer_first(tiles, safe_ids):
        answer_tile = records.run_slice(index)
        if answer_tile is None:  # cannot happen: this pass was built with answer_rows
            raise RuntimeError("the records pass returned no answer rows")
        start, stop = tiles.slices[index]
        final_logits[start:stop] = answer_tile[n_layers]
        answer.add(answer_tile, start)
        del answer_tile  # before the next slice's copy is allocated
    row_stats = records.finish()
    sweep = _finish_answers(lens, answer.finish(), resid[:, -1:], [answer_id], safe_ids, answer_k)[0]
    return PromptSweep(
        answer=sweep, records=_records(row_stats, lens, resid, record_k),
        final_logits=final_logits,
    )
