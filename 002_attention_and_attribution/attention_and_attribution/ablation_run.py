"""The ablation check over a set of measured prompts: top-k heads by attribution vs random heads.

Rows follow the ablation CSV's schema: one per prompt and one ``battery`` row
(means and the share flipped) per k, selection and seed.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from tqdm import tqdm

from attention_and_attribution.answer_position_pass import Measured
from attention_and_attribution.artefact_schema import BATTERY_ROW
from attention_and_attribution.head_ablation import (
    KS,
    SEEDS,
    AblationTarget,
    HeadId,
    Outcome,
    ablate,
    head_means,
    random_heads,
)
from layers_core.models.loading import LoadedModel
from layers_core.prompts.batching import pad_token_id
from layers_core.reports.formats import head_label


@dataclass(frozen=True)
class Selection:
    """One set of heads to ablate: ``top`` (seed None) or ``random`` with its seed."""

    k: int
    kind: str
    seed: int | None
    heads: list[HeadId]

    @property
    def label(self) -> str:
        """The heads as ``L<layer>H<head>``, space-separated."""
        return " ".join(head_label(layer, head) for layer, head in self.heads)


def selections(ranked: Sequence[HeadId], n_layers: int, n_heads: int, ks: Sequence[int] = KS,
               seeds: Sequence[int] = SEEDS) -> list[Selection]:
    """For each k that leaves room for a random draw (2k heads at most), the top k and each seed's random k."""
    found = []
    for k in ks:
        if 2 * k > len(ranked):
            continue
        top = list(ranked[:k])
        found.append(Selection(k, "top", None, top))
        found += [Selection(k, "random", seed, random_heads(top, n_layers, n_heads, seed)) for seed in seeds]
    return found


def run_ablation(
    loaded: LoadedModel, measured: Sequence[Measured], ranked: Sequence[HeadId], label: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ablate each selection on every measured prompt.

    Returns:
        The CSV rows, and the JSON summary entries (one per selection).
    """
    parts = loaded.parts
    targets = [
        AblationTarget(m.item.ids, m.item.answer_id, m.item.foil.token_id) for m in measured if m.item.foil is not None
    ]
    means = head_means(torch.stack([m.z for m in measured]))
    pad_id = pad_token_id(loaded.tokenizer)
    chosen = selections(ranked, parts.n_layers, parts.n_heads)
    rows: list[dict[str, Any]] = []
    summary: list[dict[str, Any]] = []
    with tqdm(total=len(chosen) + 1, desc=f"{label} ablation", unit="set", file=sys.stderr) as bar:
        clean = ablate(loaded.model, parts, targets, [], means, pad_id)
        bar.update(1)
        for selection in chosen:
            ablated = ablate(loaded.model, parts, targets, selection.heads, means, pad_id)
            new_rows = _rows(measured, selection, clean, ablated)
            rows += new_rows
            summary.append(_summary(selection, new_rows[-1]))
            bar.update(1)
    return rows, summary


def _rows(measured: Sequence[Measured], selection: Selection, clean: Sequence[Outcome],
          ablated: Sequence[Outcome]) -> list[dict[str, Any]]:
    base = {"k": selection.k, "selection": selection.kind, "seed": selection.seed, "heads": selection.label}
    rows: list[dict[str, Any]] = [
        {
            "prompt_id": m.item.case.prompt_id, **base, "logit_diff_clean": before.logit_diff,
            "logit_diff_ablated": after.logit_diff, "logit_diff_drop": before.logit_diff - after.logit_diff,
            "top1_flipped": int(before.top1_id != after.top1_id),
        }
        for m, before, after in zip(measured, clean, ablated, strict=True)
    ]
    means = {
        key: sum(float(row[key]) for row in rows) / len(rows)
        for key in ("logit_diff_clean", "logit_diff_ablated", "logit_diff_drop", "top1_flipped")
    }
    rows.append({"prompt_id": BATTERY_ROW, **base, **means})
    return rows


def _summary(selection: Selection, battery_row: dict[str, Any]) -> dict[str, Any]:
    return {
        "k": selection.k, "selection": selection.kind, "seed": selection.seed, "heads": selection.label,
        "mean_logit_diff_drop": battery_row["logit_diff_drop"], "share_top1_flipped": battery_row["top1_flipped"],
    }
