"""002's measurements as CSV rows and JSON entries (schema: ``artefact_schema``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from attention_and_attribution.answer_position_pass import Measured
from attention_and_attribution.artefact_schema import ATTN_COLUMNS
from attention_and_attribution.battery_summary import HeadArrays
from attention_and_attribution.prompt_items import PromptItem
from layers_core import metrics
from layers_core.attribution.direct_attribution import Attribution
from layers_core.prompts.token_text import TokenText

TOP_HEADS_LISTED = 5


def _depth(layer: int | None, n_layers: int, component: str) -> float | None:
    if layer is None:
        return 0.0 if component == "embed" else None
    return metrics.rel_depth(layer + 1, n_layers)


def heads_rows(measured: Measured, n_layers: int) -> list[dict[str, Any]]:
    """One row per layer and head (schema: heads CSV)."""
    answer = measured.attributions["answer"].rows("head")
    diff = measured.attributions["logit_diff"].rows("head")
    rows = []
    for a, d, attention in zip(answer, diff, measured.heads, strict=True):
        rows.append({
            "prompt_id": measured.item.case.prompt_id, "layer": attention.layer, "head": attention.head,
            "rel_depth": _depth(attention.layer, n_layers, "head"), "hook": a.hook,
            "dla_answer": a.value, "dla_logit_diff": d.value,
            **{column: getattr(attention, column) for column in ATTN_COLUMNS},
            "attn_entropy_bits": attention.attn_entropy_bits,
        })
    return rows


def components_rows(measured: Measured, n_layers: int) -> list[dict[str, Any]]:
    """One row per component (schema: components CSV)."""
    answer, diff = measured.attributions["answer"], measured.attributions["logit_diff"]
    return [
        {
            "prompt_id": measured.item.case.prompt_id, "component": a.component, "layer": a.layer, "head": a.head,
            "rel_depth": _depth(a.layer, n_layers, a.component), "hook": a.hook,
            "dla_answer": a.value, "dla_logit_diff": d.value,
        }
        for a, d in zip(answer.components, diff.components, strict=True)
    ]


def _per_layer(attribution: Attribution, n_layers: int) -> tuple[list[float], list[float]]:
    """Per layer: the attention's contribution (heads and output bias) and the MLP's."""
    attn, mlp = [0.0] * n_layers, [0.0] * n_layers
    for row in attribution.components:
        if row.layer is None:
            continue
        if row.component in ("attn", "bias"):
            attn[row.layer] += row.value
        elif row.component == "mlp":
            mlp[row.layer] += row.value
    return attn, mlp


def layers_rows(measured: Measured, n_layers: int) -> list[dict[str, Any]]:
    """One row per layer (schema: layers CSV)."""
    attn_answer, mlp_answer = _per_layer(measured.attributions["answer"], n_layers)
    attn_diff, mlp_diff = _per_layer(measured.attributions["logit_diff"], n_layers)
    lens = measured.lens
    if lens is None:
        raise ValueError("the layers CSV needs the lens: measure with a Lens")
    return [
        {
            "prompt_id": measured.item.case.prompt_id, "layer": layer, "rel_depth": _depth(layer, n_layers, "layer"),
            "attn_dla_answer": attn_answer[layer], "mlp_dla_answer": mlp_answer[layer],
            "attn_dla_logit_diff": attn_diff[layer], "mlp_dla_logit_diff": mlp_diff[layer],
            "p_answer": None if lens.p_answer is None else lens.p_answer[layer + 1],
            "answer_rank": None if lens.answer_rank is None else lens.answer_rank[layer + 1],
        }
        for layer in range(n_layers)
    ]


def attention_rows(measured: Measured, text: TokenText) -> list[dict[str, Any]]:
    """The answer row of every head over the prompt's tokens (schema: attention CSV)."""
    tokens = text.many(measured.item.ids)
    weights = measured.pattern_rows.tolist()  # [L][H][T]
    return [
        {
            "prompt_id": measured.item.case.prompt_id, "layer": layer, "head": head, "pos": pos,
            "token": tokens[pos], "role": measured.item.roles[pos], "weight": weight,
        }
        for layer, by_head in enumerate(weights)
        for head, row in enumerate(by_head)
        for pos, weight in enumerate(row)
    ]


def head_arrays(measured: Sequence[Measured], n_layers: int, n_heads: int) -> HeadArrays:
    """The per-head arrays ``battery_summary`` reads, ``[N, L, H]`` and ``[N, L, H, R]``."""
    shape = (len(measured), n_layers, n_heads)

    def values(name: str) -> np.ndarray:
        return np.array([[row.value for row in m.attributions[name].rows("head")] for m in measured]).reshape(shape)

    attention = np.array([
        [[getattr(h, column) for column in ATTN_COLUMNS] for h in m.heads] for m in measured
    ]).reshape(*shape, len(ATTN_COLUMNS))
    return HeadArrays(values("logit_diff"), values("answer"), attention)


def layer_arrays(measured: Sequence[Measured], n_layers: int) -> tuple[np.ndarray, np.ndarray]:
    """``[N, L]`` attention (heads and bias) and MLP ``dla_logit_diff``."""
    pairs = [_per_layer(m.attributions["logit_diff"], n_layers) for m in measured]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def unused_entry(item: PromptItem, with_tokens: bool, text: TokenText) -> dict[str, Any]:
    """The JSON entry of a prompt that was not measured."""
    case = item.case
    entry: dict[str, Any] = {
        "prompt_id": case.prompt_id, "prompt": case.prompt, "role": case.role, "subject": case.subject,
        "answer": case.answer, "used": False, "reason": item.alignment.reason,
    }
    if with_tokens:
        entry.update(tokens=text.many(item.ids), roles=list(item.roles))
    return entry


def prompt_entry(measured: Measured, with_tokens: bool, text: TokenText) -> dict[str, Any]:
    """The JSON entry of a measured prompt (tokens and roles only for the prompts, not battery facts)."""
    item, foil = measured.item, measured.item.foil
    answer, diff = measured.attributions["answer"], measured.attributions["logit_diff"]
    heads = sorted(diff.rows("head"), key=lambda row: (-row.value, row.layer, row.head))[:TOP_HEADS_LISTED]
    entry = unused_entry(item, with_tokens, text)
    entry.update({
        "used": True, "reason": None,
        "answer_token": text(item.answer_id), "answer_token_id": item.answer_id,
        "foil": None if foil is None else foil.text, "foil_token": None if foil is None else text(foil.token_id),
        "foil_token_id": None if foil is None else foil.token_id, "foil_source": None if foil is None else foil.source,
        "model_logit_answer": answer.model_value, "model_logit_diff": diff.model_value,
        "sum_error_answer": answer.error, "sum_error_logit_diff": diff.error,
        "softcap_applied_after": diff.softcap_applied_after,
        "final_top1": text(measured.top1_id), "final_top1_is_answer": measured.top1_id == item.answer_id,
        "top_heads": [{"layer": h.layer, "head": h.head, "dla_logit_diff": h.value} for h in heads],
    })
    return entry
