"""What holds across many prompts: each head's and each layer's contribution as a distribution.

Inputs are arrays over the prompts summarised (the battery's facts, or the
prompts when there is no battery): ``[N, L, H]`` per head, ``[N, L]`` per layer.
Medians and quartiles are numpy's default (linear) percentiles. A head is named
a factual-retrieval head only when it holds across the prompts (``RETRIEVAL_RULE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from attention_and_attribution.artefact_schema import ATTN_COLUMNS
from layers_core import metrics

TOP_N = 5
MIN_SHARE_TOP = 0.5
RETRIEVAL_RULE = (
    f"median dla_logit_diff > 0, its lower quartile > 0 (positive on at least three quarters of the prompts), "
    f"and among the {TOP_N} largest heads on at least {MIN_SHARE_TOP:.0%} of the prompts"
)


@dataclass(frozen=True)
class HeadArrays:
    """Per prompt, layer and head: the two attributions, and the attention by role ``[N, L, H, R]``."""

    dla_logit_diff: np.ndarray
    dla_answer: np.ndarray
    attention: np.ndarray


def _quartiles(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    q25, median, q75 = np.percentile(values, [25, 50, 75], axis=0)
    return q25, median, q75


def share_in_top(dla: np.ndarray, n: int = TOP_N) -> np.ndarray:
    """``[L, H]``: the share of prompts where the head is among the ``n`` largest (ties to the lower index)."""
    count, layers, heads = dla.shape
    flat = dla.reshape(count, layers * heads)
    order = np.argsort(-flat, axis=1, kind="stable")[:, :n]
    hits = np.zeros(layers * heads)
    np.add.at(hits, order.ravel(), 1.0)
    return (hits / count).reshape(layers, heads)


def head_summary_rows(arrays: HeadArrays, n_layers: int) -> list[dict[str, Any]]:
    """One row per layer and head (schema: head-summary CSV), ranked by median ``dla_logit_diff``."""
    q25, median, q75 = _quartiles(arrays.dla_logit_diff)
    answer = np.median(arrays.dla_answer, axis=0)
    attention = np.median(arrays.attention, axis=0)
    share = share_in_top(arrays.dla_logit_diff)
    layers, heads = median.shape
    order = sorted(((layer, head) for layer in range(layers) for head in range(heads)),
                   key=lambda lh: (-median[lh], lh))
    rank = {lh: position + 1 for position, lh in enumerate(order)}
    return [
        {
            "layer": layer, "head": head, "rel_depth": metrics.rel_depth(layer + 1, n_layers),
            "hook": f"blocks.{layer}.attn.hook_z", "n_prompts": int(arrays.dla_logit_diff.shape[0]),
            "median_dla_logit_diff": float(median[layer, head]), "q25_dla_logit_diff": float(q25[layer, head]),
            "q75_dla_logit_diff": float(q75[layer, head]), "share_top5": float(share[layer, head]),
            "median_dla_answer": float(answer[layer, head]),
            **{f"median_{column}": float(attention[layer, head, r]) for r, column in enumerate(ATTN_COLUMNS)},
            "rank": rank[(layer, head)],
        }
        for layer in range(layers)
        for head in range(heads)
    ]


def retrieval_heads(summary: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The heads meeting ``RETRIEVAL_RULE``, best first (JSON entries)."""
    keep = ("layer", "head", "rel_depth", "median_dla_logit_diff", "q25_dla_logit_diff", "q75_dla_logit_diff",
            "share_top5")
    held = [
        row for row in summary
        if row["median_dla_logit_diff"] > 0 and row["q25_dla_logit_diff"] > 0 and row["share_top5"] >= MIN_SHARE_TOP
    ]
    return [{key: row[key] for key in keep} for row in sorted(held, key=lambda row: row["rank"])]


def layers_summary(attn: np.ndarray, mlp: np.ndarray, n_layers: int) -> list[dict[str, Any]]:
    """Per layer, the quartiles of the attention's (heads and bias) and the MLP's ``dla_logit_diff``."""
    attn_q, mlp_q = _quartiles(attn), _quartiles(mlp)
    rows = []
    for layer in range(n_layers):
        row: dict[str, Any] = {"layer": layer, "rel_depth": metrics.rel_depth(layer + 1, n_layers)}
        for name, (q25, median, q75) in (("attn", attn_q), ("mlp", mlp_q)):
            row[f"median_{name}_dla_logit_diff"] = float(median[layer])
            row[f"q25_{name}_dla_logit_diff"] = float(q25[layer])
            row[f"q75_{name}_dla_logit_diff"] = float(q75[layer])
        rows.append(row)
    return rows
