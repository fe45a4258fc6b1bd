"""Decode captured residuals layer by layer and measure each layer's prediction.

Two sweeps share one per-layer measurement:

- ``sweep_prompt``: one prompt, every position (records) and the answer
  position in full (pure next-token rows). It holds one layer's ``[T, V]``
  logits at a time, never the whole ``[L+1, T, V]`` stack.
- ``sweep_last_positions``: a batch of prompts (the fact battery), only the
  last position of each, decoded in layer chunks whose logits fit a budget.

Every number comes from ``layers_core.metrics``; this module only decides
which rows are decoded and keeps the results as plain Python lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from layers_core import metrics
from layers_core.lens import Lens

ANSWER_TOP_K = 20
RECORD_TOP_K = 5
# Largest block of fp32 logits decoded at once in the batched sweep.
LOGITS_BUDGET_BYTES = 256 * 2**20


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


class _AnswerAccumulator:
    """Collects answer-position metrics for a batch of rows, one layer block at a time."""

    def __init__(self, final_logits: Tensor, final_resid: Tensor, answer_ids: Sequence[int | None], k: int):
        self.final_logits = final_logits  # [B, V]
        self.final_resid = final_resid  # [B, d]
        self.answer_ids = list(answer_ids)
        self.k = k
        self.rows: list[dict[str, list]] = [
            {"entropy": [], "ids": [], "probs": [], "kl": [], "cos": [], "p": [], "rank": []}
            for _ in self.answer_ids
        ]

    def add(self, logits: Tensor, resid: Tensor) -> None:
        """Measure ``logits`` [C, B, V] decoded from ``resid`` [C, B, d] (C consecutive layers)."""
        entropy = metrics.entropy_bits(logits)
        probs, ids = metrics.top_k(logits, self.k)
        kl = metrics.kl_bits(self.final_logits.unsqueeze(0), logits)
        cos = metrics.cosine_similarity(resid.float(), self.final_resid.float().unsqueeze(0))
        log_probs = torch.log_softmax(logits, dim=-1)
        for b, answer_id in enumerate(self.answer_ids):
            row = self.rows[b]
            row["entropy"] += entropy[:, b].tolist()
            row["ids"] += ids[:, b].tolist()
            row["probs"] += probs[:, b].tolist()
            row["kl"] += kl[:, b].tolist()
            row["cos"] += cos[:, b].tolist()
            if answer_id is not None:
                row["p"] += log_probs[:, b, answer_id].exp().tolist()
                row["rank"] += metrics.token_rank(logits[:, b], answer_id).tolist()

    def results(self) -> list[AnswerSweep]:
        """One ``AnswerSweep`` per batch row."""
        return [
            AnswerSweep(
                entropy_bits=row["entropy"], top_ids=row["ids"], top_probs=row["probs"],
                kl_to_final_bits=row["kl"], cosine_to_final=row["cos"],
                p_answer=row["p"] if answer_id is not None else None,
                answer_rank=[int(r) for r in row["rank"]] if answer_id is not None else None,
            )
            for row, answer_id in zip(self.rows, self.answer_ids)
        ]


def sweep_prompt(
    lens: Lens, resid: Tensor, answer_id: int | None,
    answer_k: int = ANSWER_TOP_K, record_k: int = RECORD_TOP_K,
) -> PromptSweep:
    """Decode every layer at every position of one prompt.

    Args:
        lens: The lens to decode with.
        resid: ``[L+1, T, d]`` residuals of one prompt (``capture_residuals(...,
            positions="all")[0][:, 0]``); the answer position is the last.
        answer_id: Gold answer token id, or None when the answer could not be aligned.
        answer_k: Top-k kept at the answer position.
        record_k: Top-k kept at every position.
    """
    n_layers = resid.shape[0] - 1
    final_logits = lens.logits(resid[n_layers, -1:], n_layers)  # [1, V]
    answer = _AnswerAccumulator(final_logits, resid[n_layers, -1:], [answer_id], answer_k)
    records = PositionRecords([], [], [])
    for layer in range(n_layers + 1):
        logits = lens.logits(resid[layer], layer)  # [T, V]: the only layer held
        answer.add(logits[-1:].unsqueeze(0), resid[layer, -1:].unsqueeze(0))
        probs, ids = metrics.top_k(logits, record_k)
        records.entropy_bits.append(metrics.entropy_bits(logits).tolist())
        records.top_ids.append(ids.tolist())
        records.top_probs.append(probs.tolist())
    return PromptSweep(answer=answer.results()[0], records=records, final_logits=final_logits[0])


def sweep_last_positions(
    lens: Lens, resid: Tensor, answer_ids: Sequence[int | None], answer_k: int = ANSWER_TOP_K,
) -> list[AnswerSweep]:
    """Decode the last position of a batch of prompts at every layer.

    Args:
        lens: The lens to decode with.
        resid: ``[L+1, B, d]`` residuals at each row's last position.
        answer_ids: Gold answer id per row (None where unaligned).
        answer_k: Top-k kept per layer.
    """
    n_layers, batch = resid.shape[0] - 1, resid.shape[1]
    if len(answer_ids) != batch:
        raise ValueError(f"{len(answer_ids)} answer ids for a batch of {batch}")
    final_logits = lens.logits(resid[n_layers], n_layers)  # [B, V]
    answer = _AnswerAccumulator(final_logits, resid[n_layers], answer_ids, answer_k)
    row_bytes = batch * lens.parts.vocab_size * 4
    chunk = max(1, LOGITS_BUDGET_BYTES // max(row_bytes, 1))
    for start in range(0, n_layers + 1, chunk):
        stop = min(start + chunk, n_layers + 1)
        logits = torch.stack([lens.logits(resid[layer], layer) for layer in range(start, stop)])
        answer.add(logits, resid[start:stop])
    return answer.results()
